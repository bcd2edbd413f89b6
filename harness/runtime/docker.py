"""Containers inside lab nodes: a node stays a network namespace, a container joins it.

Docker cannot join a named namespace directly, so each node that runs containers gets
an "adapter" container that `nsenter`s the node's namespace and sleeps; app containers
share its network (`network_mode=container:<adapter>`) and need no privileges. Inside:
`lo` and the lab's interfaces only, no Docker bridge, no route out. The adapter also
carries the node's hostname; the lab's resolv.conf and hosts are mounted into apps.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import LabError
from harness.runtime import engine
from harness.runtime.base import SOCKET_DIR, NodeProcess
from harness.runtime.nsutil import netns_path

#: /dev/shm of a program container: Docker's 64 MB starves Chromium's renderer IPC (a
#: tmpfs limit, not an allocation)
SHM_SIZE = "1g"


#: cgroup v1 + cgroupfs puts every container under /docker, whose CPU weight equals that of
#: ONE host process: on a busy machine all of a lab's containers shared one process's
#: slice while the same programs as host processes got one each (Chromium started 2x
#: slower). Our containers go under /rtc-harness, weighted like a few busy processes
#: (a lab runs a handful), not like one.
CGROUP = "rtc-harness"
CGROUP_CPU_SHARES = 1024 * 4


@functools.cache
def cgroup_parent() -> str | None:
    """The cgroup for lab containers (made once), or None to keep Docker's default."""
    cpu = Path("/sys/fs/cgroup/cpu")
    if not (cpu / "cpu.shares").exists():  # cgroup v2: weights are per container already
        return None
    try:
        (cpu / CGROUP).mkdir(exist_ok=True)
        (cpu / CGROUP / "cpu.shares").write_text(str(CGROUP_CPU_SHARES))
    except OSError:
        return None
    return f"/{CGROUP}"


@dataclass
class ContainerProcess(NodeProcess):
    """A container in a node; its stdout+stderr are copied to `log_path` as they come."""

    container: Any = field(kw_only=True)
    _pid: int = field(default=0, kw_only=True)
    _start_ticks: str = field(default="", kw_only=True)
    _exit: int | None = field(default=None, kw_only=True)
    _follower: threading.Thread | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        self.container.reload()
        self._pid = int(self.container.attrs["State"]["Pid"] or 0)
        self._start_ticks = _start_ticks(self._pid)
        self._follower = threading.Thread(
            target=_follow, args=(self.container, self.log_path), daemon=True
        )
        self._follower.start()

    @property
    def pid(self) -> int:
        return self._pid

    def alive(self) -> bool:
        # /proc is cheaper than the API: ready loops ask every 20 ms
        # (no start time at all: it was gone before we looked, i.e. it exited at once)
        return (
            self._exit is None
            and self._start_ticks != ""
            and _start_ticks(self._pid) == self._start_ticks
        )

    @property
    def returncode(self) -> int | None:
        if self.alive():
            return None
        if self._exit is None:
            # /proc sees the exit before the engine records it: until containerd reports
            # it, State still says Running (a CI run once read "exited with status None").
            # The engine's wait returns once the exit is recorded, bounded here.
            with contextlib.suppress(Exception):
                self._exit = int(self.container.wait(timeout=5)["StatusCode"])
            if self._exit is None:
                with contextlib.suppress(Exception):
                    self.container.reload()
                    state = self.container.attrs["State"]
                    if not state.get("Running"):
                        self._exit = int(state.get("ExitCode", -1))
            if self._follower is not None:
                self._follower.join(2.0)  # its last words are in the log before anyone reads
        return self._exit

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.alive():
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.argv, timeout or 0.0)
            time.sleep(0.01)
        code = self.returncode
        return -1 if code is None else code

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(Exception):
            self.container.kill(signal=int(sig))

    def stop(self, timeout: float = 3.0, sig: int = signal.SIGTERM) -> int | None:
        self.stopped = True
        if self.alive():
            self.send_signal(sig)
            try:
                self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.wait(5)
        # removed with the lab's other containers, side by side, at tear-down
        return self.returncode


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat (start time): tells a live PID from a reused one."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "" if fields[0] == "Z" else fields[19]


def _follow(container: Any, log_path: Path) -> None:
    with contextlib.suppress(Exception), log_path.open("ab") as log:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            log.write(chunk)
            log.flush()


class ContainerPlacement:
    """Runs containers in the nodes of one lab; removes them all at tear-down."""

    def __init__(self, lab: str, netns_of: Any, etc_dir: Path) -> None:
        self.lab = lab
        self.netns_of = netns_of  # node -> namespace name
        self.etc_dir = etc_dir
        self._adapters: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._node_locks: dict[str, threading.Lock] = {}
        self.processes: list[ContainerProcess] = []

    def _labels(self, node: str, role: str) -> dict[str, str]:
        return {engine.LAB_LABEL: self.lab, engine.NODE_LABEL: node, engine.ROLE_LABEL: role}

    def adapter(self, node: str) -> Any:
        """The container holding `node`'s namespace for others to join (made once)."""
        with self._lock:
            lock = self._node_locks.setdefault(node, threading.Lock())
        with lock:
            if node in self._adapters:
                return self._adapters[node]
            ns = self.netns_of(node)
            if not os.path.exists(netns_path(ns)):
                raise LabError(f"lab {self.lab} has no node {node!r} (namespace {ns} is missing)")
            image = engine.ensure_adapter_image()
            cont = _run(
                image,
                ["/usr/bin/nsenter", f"--net={netns_path(ns)}", "/usr/bin/sleep", "infinity"],
                name=f"{ns}",
                hostname=node.lstrip("@_") or "switch",
                network_mode="none",
                cap_add=["SYS_ADMIN"],
                cap_drop=["ALL"],
                volumes={"/run/netns": {"bind": "/run/netns", "mode": "ro"}},
                labels=self._labels(node, "adapter"),
            )
            self._adapters[node] = cont
            return cont

    def prepare(self, nodes: list[str]) -> None:
        """Make the adapters of these nodes side by side (each is a container start)."""
        engine.ensure_adapter_image()
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(nodes)))) as pool:
            list(pool.map(self.adapter, nodes))

    def spawn(
        self,
        node: str,
        image: str,
        argv: Sequence[str],
        *,
        name: str,
        cwd: Path,
        log_path: Path,
        env: dict[str, str] | None,
        mounts: Sequence[Path],
    ) -> ContainerProcess:
        adapter = self.adapter(node)
        volumes = {str(cwd): {"bind": str(cwd), "mode": "rw"}}
        for m in mounts:
            volumes.setdefault(str(m), {"bind": str(m), "mode": "ro"})
        for f in ("resolv.conf", "hosts"):
            volumes[str(self.etc_dir / f)] = {"bind": f"/etc/{f}", "mode": "ro"}
        # sockets that do not fit in a deep workdir's path live in the lab's socket folder
        sockets = SOCKET_DIR / self.lab
        sockets.mkdir(parents=True, exist_ok=True)
        volumes[str(sockets)] = {"bind": str(sockets), "mode": "rw"}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cont = _run(
            image,
            list(argv[1:]),
            entrypoint=list(argv[:1]),
            name=f"{self.netns_of(node)}.{name}",
            network_mode=f"container:{adapter.id}",
            volumes=volumes,
            working_dir=str(cwd),
            environment=env or {},
            init=True,  # signals reach the program; children are reaped
            shm_size=SHM_SIZE,
            cgroup_parent=cgroup_parent(),
            labels=self._labels(node, "app"),
        )
        proc = ContainerProcess(node, name, list(argv), log_path, container=cont)
        self.processes.append(proc)
        return proc

    def down(self) -> None:
        """Remove every container of the lab (also ones a killed owner left)."""
        self.processes.clear()
        self._adapters.clear()
        engine.remove_lab_containers(self.lab)


def _run(image: str, command: list[str], **kw: Any) -> Any:
    """Create and start a detached container; a leftover of the same name is replaced."""
    import docker.errors

    c = engine.client()
    for attempt in (1, 2):
        try:
            return c.containers.run(image, command, detach=True, **kw)
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and attempt == 1:  # name taken by a stopped leftover
                with contextlib.suppress(docker.errors.NotFound):
                    c.containers.get(kw["name"]).remove(force=True)
                continue
            raise LabError(f"container {kw.get('name')}: {exc.explanation or exc}") from None
    raise AssertionError("unreachable")
