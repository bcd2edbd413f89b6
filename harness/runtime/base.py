"""The runtime interface: what the lab needs from a way of isolating nodes.

A runtime builds every node of a topology (network stack, interfaces, addresses,
routes, router rules), runs processes inside a node, and removes it all. The
netns runtime is the first; a Docker runtime plugs in behind the same interface
without touching topologies or scenarios.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.config.topology import Topology


@dataclass(frozen=True)
class LinkRef:
    """The switch-side end of a node interface, where link conditions attach.

    On this end, egress is traffic towards the node and ingress traffic from it.
    """

    netns: str
    ifname: str
    node: str
    iface: str


@dataclass
class NodeProcess:
    """A process the lab started inside a node; the lab kills it at tear-down."""

    node: str
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def send_signal(self, sig: int) -> None:
        """Signal the whole process group: agents and servers may have children.

        Once the leader is reaped its pid is free: with pid_max 32768 and busy labs it comes
        back within minutes, often as another lab's session leader (same number as its
        group). Signal the group then only if no process holds that pid, i.e. while the
        group still has members of ours keeping the number reserved.
        """
        if self.popen.returncode is not None and os.path.exists(f"/proc/{self.popen.pid}"):
            return  # the number belongs to someone else now
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 3.0, sig: int = signal.SIGTERM) -> int | None:
        """Ask politely, then kill. Returns the exit status."""
        if self.alive():
            self.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.popen.wait(5)
        else:
            self.send_signal(signal.SIGKILL)  # leftover children of a dead leader
        return self.popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])


class Runtime(ABC):
    """Builds and removes the nodes of one lab and runs processes in them."""

    name: str

    @abstractmethod
    def up(self, topology: Topology) -> None:
        """Create every node, network and link, with addresses, routes and router rules."""

    @abstractmethod
    def down(self) -> None:
        """Remove everything `up` made and every process `spawn` started. Idempotent."""

    @abstractmethod
    def spawn(
        self,
        node: str,
        argv: Sequence[str],
        *,
        name: str,
        cwd: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> NodeProcess:
        """Start a long-running process inside `node`."""

    @abstractmethod
    def run(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside `node` to completion."""

    @abstractmethod
    def link(self, node: str, iface: str) -> LinkRef:
        """Where the interface `node.iface` meets its network."""
