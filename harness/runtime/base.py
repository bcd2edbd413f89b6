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
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: `harness --help` imports this module and skips pydantic
    from harness.config.topology import Topology


#: Unix sockets of labs whose run directory is too deep for sun_path (Lab.socket_path);
#: one folder per lab, which every runtime must make reachable to the lab's programs.
SOCKET_DIR = Path("/run/rtc-harness/sockets")


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
class NodeProcess(ABC):
    """A program the lab started inside a node (a host process or a container); the lab
    stops it at tear-down. Callers see the same handle whichever runtime runs it."""

    node: str
    name: str
    argv: list[str]
    log_path: Path
    started: float = field(default_factory=time.time, init=False)
    stopped: bool = field(default=False, init=False)
    """Set by stop(): the harness ended it on purpose (a restart), it did not die."""

    @property
    @abstractmethod
    def pid(self) -> int:
        """A host PID inside the node's network namespace (for /proc/<pid>/net reads)."""

    @property
    @abstractmethod
    def returncode(self) -> int | None: ...

    @abstractmethod
    def alive(self) -> bool: ...

    def died(self) -> bool:
        """Exited without the harness asking: whatever waits on it will never succeed."""
        return not self.stopped and not self.alive()

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """Exit status; raises subprocess.TimeoutExpired like Popen.wait."""

    @abstractmethod
    def send_signal(self, sig: int) -> None: ...

    @abstractmethod
    def stop(self, timeout: float = 3.0, sig: int = signal.SIGTERM) -> int | None:
        """Ask politely, then kill. Returns the exit status."""

    def log_text(self) -> str:
        """The whole log so far ("" if there is none): what a kind that knows its
        program's bugs by their log lines reads (log findings)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

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


@dataclass
class HostProcess(NodeProcess):
    """A host process in the node's namespace, in its own process group."""

    popen: subprocess.Popen[bytes] = field(kw_only=True)

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
        self.stopped = True
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
        image: str | None = None,
        mounts: Sequence[Path] = (),
    ) -> NodeProcess:
        """Start a long-running program inside `node`: a host process, or with `image` a
        container that joins the node's network (only the lab's interfaces inside).

        `cwd` and `mounts` are the same paths inside a container (cwd writable, mounts
        read-only), so config files and recordings need no translation; `env` is the
        whole environment of a container, added to the harness's own for a process.
        """

    @abstractmethod
    def prepare_images(self, wanted: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
        """Before anything starts: check (node, image, program) triples and get their nodes
        ready for containers; {(image, program): error} for the bad ones.

        Raises UnsupportedError where no container engine is available."""

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

    @abstractmethod
    def socket(self, node: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A non-blocking IPv4 socket of the harness itself, inside `node`'s network."""
