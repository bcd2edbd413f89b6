"""The network-namespace runtime: every node a namespace, every network a bridge.

Layout of a lab named L: node N lives in namespace `rh-L.N`; all networks are
bridges in one switch namespace `rh-L._sw`; each node interface is a veth pair
whose switch end is a bridge port (so link conditions and captures can attach
on either end). Nothing is created in the host namespace, so deleting the
namespaces removes every interface, bridge, route and nft table of the lab.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.topology import Topology
from harness.errors import LabError
from harness.runtime.base import HostProcess, LinkRef, NodeProcess, Runtime
from harness.runtime.netbuild import build
from harness.runtime.nsutil import (
    delete_netns,
    list_netns,
    netns_path,
    netns_pids,
    run_in_netns,
)

if TYPE_CHECKING:
    from harness.runtime.docker import ContainerPlacement

PREFIX = "rh-"
SWITCH = "_sw"

_SPAWN_SCRIPT = (
    'mount --bind "$RH_RESOLV" /etc/resolv.conf && '
    'mount --bind "$RH_HOSTS" /etc/hosts && '
    'unset RH_RESOLV RH_HOSTS && exec "$@"'
)


def netns_name(lab: str, node: str) -> str:
    return f"{PREFIX}{lab}.{node}"


def lab_of_netns(ns: str) -> str | None:
    if not ns.startswith(PREFIX) or "." not in ns:
        return None
    return ns[len(PREFIX) :].rsplit(".", 1)[0]


class NetnsRuntime(Runtime):
    name = "netns"

    def __init__(self, lab: str, etc_dir: Path) -> None:
        self.lab = lab
        self.etc_dir = etc_dir  # holds the lab's resolv.conf and hosts
        self.topology: Topology | None = None
        self.processes: list[HostProcess] = []
        self._links: dict[tuple[str, str], LinkRef] = {}
        self._containers: ContainerPlacement | None = None

    @property
    def containers(self) -> ContainerPlacement:
        """Where programs with an image run (made on first use: no engine needed before)."""
        if self._containers is None:
            from harness.runtime.docker import ContainerPlacement

            self._containers = ContainerPlacement(self.lab, self.netns, self.etc_dir)
        return self._containers

    # ------------------------------------------------------------ naming

    def netns(self, node: str) -> str:
        return netns_name(self.lab, SWITCH if node == "@switch" else node)

    def link(self, node: str, iface: str) -> LinkRef:
        try:
            return self._links[(node, iface)]
        except KeyError:
            raise KeyError(f"no interface {node}.{iface} in lab {self.lab}") from None

    # ------------------------------------------------------------ build

    def up(self, topology: Topology) -> None:
        self.topology = topology
        self._write_etc(topology)
        self.up_links_only(topology)
        try:
            build(topology, self.netns, self._links)
        except OSError as exc:
            raise LabError(f"lab {self.lab}: {exc}") from None

    def up_links_only(self, topology: Topology) -> None:
        """Name the switch end of every interface (also for attaching to a running lab)."""
        sw = self.netns("@switch")
        for ni, node in enumerate(topology.nodes.values()):
            for iface in node.interfaces.values():
                peer = f"n{ni}{iface.name}"[:15]
                self._links[(node.name, iface.name)] = LinkRef(sw, peer, node.name, iface.name)

    def _write_etc(self, topology: Topology) -> None:
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        # nothing answers DNS in a lab: fail fast rather than hang (sofia-sip, Chromium)
        (self.etc_dir / "resolv.conf").write_text(
            "# rtc-harness lab: no name server\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
        )
        lines = ["127.0.0.1 localhost"]
        for node in topology.nodes.values():
            for i, iface in enumerate(node.interfaces.values()):
                names = f"{node.name}-{iface.name}" + (f" {node.name}" if i == 0 else "")
                lines.append(f"{iface.address} {names}")
        (self.etc_dir / "hosts").write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------ processes

    def _nsenter(self, node: str) -> list[str]:
        ns = self.netns(node)
        if not os.path.exists(netns_path(ns)):
            raise LabError(f"lab {self.lab} has no node {node!r} (namespace {ns} is missing)")
        return ["nsenter", f"--net={netns_path(ns)}"]

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
        if image is not None:
            return self.containers.spawn(
                node, image, argv, name=name, cwd=cwd, log_path=log_path, env=env, mounts=mounts
            )
        full = [
            *self._nsenter(node),
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _SPAWN_SCRIPT,
            "sh",
            *argv,
        ]
        penv = dict(os.environ if env is None else env)
        penv["RH_RESOLV"] = str(self.etc_dir / "resolv.conf")
        penv["RH_HOSTS"] = str(self.etc_dir / "hosts")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                full,
                cwd=cwd,
                env=penv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )
        proc = HostProcess(node, name, list(argv), log_path, popen=popen)
        self.processes.append(proc)
        return proc

    def run(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._nsenter(node), *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    def prepare_images(self, wanted: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
        from harness.runtime import engine

        errors = engine.check_images([(image, prog) for _, image, prog in wanted])
        if not errors:
            self.containers.prepare(sorted({node for node, _, _ in wanted}))
        return errors

    def socket(self, node: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """Made in the node's namespace, which its containers share: one way for both."""

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, kind)
            sock.setblocking(False)
            return sock

        self._nsenter(node)  # a clear error for a missing node
        return run_in_netns(self.netns(node), make)

    # ------------------------------------------------------------ tear-down

    def down(self) -> None:
        if self._containers is not None:
            self._containers.down()
        for proc in reversed(self.processes):
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        for proc in self.processes:
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.popen.wait(5)
            else:
                proc.send_signal(signal.SIGKILL)  # children that outlived their leader
        self.processes.clear()
        destroy_lab_namespaces(self.lab)


def destroy_lab_namespaces(lab: str, names: list[str] | None = None) -> list[str]:
    """Remove a lab's containers, kill whatever still runs in its namespaces, then delete
    them. Idempotent; also what `harness lab gc` does for a lab whose owner died."""
    from harness.runtime.engine import remove_lab_containers

    remove_lab_containers(lab)
    names = names if names is not None else [ns for ns in list_netns() if lab_of_netns(ns) == lab]
    names = [ns for ns in names if os.path.exists(netns_path(ns))]
    if not names:
        return []
    killed = False
    for pid in netns_pids(*names):
        try:
            os.kill(pid, signal.SIGKILL)
            killed = True
        except ProcessLookupError:
            pass
    if killed:
        time.sleep(0.05)
    for ns in names:
        with contextlib.suppress(OSError):
            delete_netns(ns)
    left = [ns for ns in names if os.path.exists(netns_path(ns))]
    if left:
        raise LabError(f"could not delete namespaces: {', '.join(left)}")
    return names
