"""Lab: a topology made real, owning every namespace, process and capture it made."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.config.topology import Topology, load_topology, parse_topology
from harness.errors import LabError
from harness.lab.registry import SOCKET_DIR, LabState, load_state, process_start
from harness.runtime.base import LinkRef, NodeProcess, Runtime
from harness.runtime.netns import NetnsRuntime

LAB_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
#: Unix socket paths must fit sun_path (108 bytes; Kamailio's ctl takes 104).
MAX_SOCKET_PATH = 100
_live: set[Lab] = set()


def captures_root() -> Path:
    return Path(os.environ.get("HARNESS_CAPTURES", "captures")).absolute()


def default_name(topology: Topology) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", topology.name.lower()).strip("-")[:20] or "lab"
    return f"{base}-{secrets.token_hex(3)}"  # parallel labs: 1 in 16 M to clash


class Lab:
    """Build with `with Lab(topology) as lab:`; everything is removed on exit."""

    SWITCH = "@switch"

    def __init__(
        self,
        topology: Topology | str | Path,
        name: str | None = None,
        *,
        run_dir: Path | None = None,
        detached: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(topology, Topology):
            topology = load_topology(topology)
        self.topology = topology
        self.name = name or default_name(topology)
        if not LAB_NAME.match(self.name) or len(self.name) > 32:
            raise LabError(
                f"lab name {self.name!r}: use lower-case letters, digits and single '-', at most 32"
            )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = (run_dir or captures_root() / f"{stamp}-{self.name}").absolute()
        self.detached = detached
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self.runtime: Runtime = NetnsRuntime(self.name, self.run_dir / "etc")
        self.owned = True
        self.is_up = False
        self._state: LabState | None = None
        self._captures: list[Any] = []
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------ life cycle

    @classmethod
    def attach(cls, name: str) -> Lab:
        """A handle on a lab started elsewhere; leaving it does not tear the lab down."""
        st = load_state(name)
        if st is None:
            raise LabError(f"no lab named {name!r} (see `harness lab list`)")
        lab = cls(
            parse_topology(st.topology_text, st.topology_file),
            name,
            run_dir=Path(st.run_dir),
            seed=st.seed,
        )
        lab.owned = False
        lab.is_up = True
        assert isinstance(lab.runtime, NetnsRuntime)
        lab.runtime.topology = lab.topology
        lab.runtime.up_links_only(lab.topology)
        lab._state = st
        return lab

    def up(self) -> Lab:
        if self.is_up:
            return self
        text = (
            Path(self.topology.source).read_text() if Path(self.topology.source).is_file() else ""
        )
        self._state = LabState(
            name=self.name,
            runtime=self.runtime.name,
            topology_file=self.topology.source,
            topology_text=text,
            run_dir=str(self.run_dir),
            owner_pid=os.getpid(),
            owner_start=process_start(os.getpid()),
            detached=self.detached,
            created=time.time(),
            seed=self.seed,
        )
        try:
            self._state.save(claim=True)  # before anything exists, so gc can always find it
        except FileExistsError:
            self._state = None
            raise LabError(
                f"a lab named {self.name!r} exists already (harness lab down {self.name})"
            ) from None
        _live.add(self)
        _tear_down_on_sigterm()
        t0 = time.perf_counter()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.runtime.up(self.topology)
        except BaseException:
            self.down()
            raise
        self.timings["up"] = time.perf_counter() - t0
        self.is_up = True
        return self

    def down(self) -> None:
        """Stop captures and processes, delete namespaces. Safe to call twice."""
        t0 = time.perf_counter()
        for cap in list(self._captures):
            with contextlib.suppress(Exception):
                cap.stop()
        self._captures.clear()
        if self._state is None:
            # Never claimed the name (or already down): the namespaces of that name, if
            # any, belong to another lab, which a clash or a second down must not delete.
            self.is_up = False
            _live.discard(self)
            return
        try:
            self.runtime.down()
        finally:
            shutil.rmtree(SOCKET_DIR / self.name, ignore_errors=True)
            self._state.remove()
            self._state = None
            self.is_up = False
            _live.discard(self)
        self.timings["down"] = time.perf_counter() - t0

    def __enter__(self) -> Lab:
        return self.up() if self.owned else self

    def __exit__(self, *exc: object) -> None:
        if self.owned and not self.detached:
            self.down()

    # ------------------------------------------------------------ using it

    def netns(self, node: str) -> str:
        if node != self.SWITCH:
            self.topology.node(node)
        assert isinstance(self.runtime, NetnsRuntime)
        return self.runtime.netns(node)

    def link(self, node: str, iface: str) -> LinkRef:
        return self.runtime.link(node, iface)

    def workdir(self, node: str, name: str) -> Path:
        path = self.run_dir / "nodes" / node.lstrip("@") / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def socket_path(self, node: str, name: str, file: str) -> Path:
        """Where a process of `node` named `name` puts unix socket `file`: in its workdir, or,
        when a deep run directory makes that too long, in a short directory of this lab
        (removed at down)."""
        path = self.run_dir / "nodes" / node.lstrip("@") / name / file
        if len(str(path)) <= MAX_SOCKET_PATH:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path
        short = SOCKET_DIR / self.name / f"{node.lstrip('@')}-{name}-{file}"
        short.parent.mkdir(parents=True, exist_ok=True)
        return short

    def run(
        self,
        node: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a node and wait for it."""
        proc = self.runtime.run(node, [str(a) for a in argv], timeout=timeout, input=input, env=env)
        if check and proc.returncode != 0:
            raise LabError(
                f"{node}: {' '.join(map(str, argv))} exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        return proc

    def spawn(
        self,
        node: str,
        argv: Sequence[str | Path],
        *,
        name: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        image: str | None = None,
        mounts: Sequence[Path] = (),
    ) -> NodeProcess:
        """Start a program in a node, with the lab's resolv.conf and hosts, logging to
        run_dir/logs: a host process, or a container of `image` (see Runtime.spawn)."""
        log = self.run_dir / "logs" / f"{node.lstrip('@')}-{name}.log"
        return self.runtime.spawn(
            node,
            [str(a) for a in argv],
            name=name,
            cwd=cwd or self.workdir(node, name),
            log_path=log,
            env=env,
            image=image,
            mounts=mounts,
        )

    def socket(self, node: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A non-blocking socket of the harness inside `node`'s network (no route out)."""
        return self.runtime.socket(node, kind)

    def prepare_images(self, wanted: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
        """Check (node, image, program) before anything starts: {(image, program): reason}
        for what cannot run here. No engine at all raises UnsupportedError."""
        return self.runtime.prepare_images(wanted)

    def capture(
        self,
        points: Iterable[tuple[str, str] | str],
        *,
        bpf: str = "",
        name: str | None = None,
        ring_kib: int | None = None,
    ) -> Any:
        """Start tcpdump on each (node, iface) or `node.iface`; returns once every one listens."""
        from harness.capture.tcpdump import RING_KIB, Capture

        cap = Capture(
            self, [_point(p) for p in points], bpf=bpf, suffix=name, ring_kib=ring_kib or RING_KIB
        )
        cap.start()
        self._captures.append(cap)
        return cap

    def forget_capture(self, cap: Any) -> None:
        if cap in self._captures:
            self._captures.remove(cap)


def _point(p: tuple[str, str] | str) -> tuple[str, str]:
    """`node.iface` (or `node`: its default interface), the one spelling scenarios use too."""
    if isinstance(p, str):
        if ":" in p:
            raise LabError(f"capture point {p!r}: interfaces are spelled `node.iface`")
        node, _, iface = p.partition(".")
        return node, iface
    return p


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _tear_down_on_sigterm() -> None:
    """SIGTERM (a CI job cancelled, `kill`) tears labs down like Ctrl-C does.

    Installed only where nobody else handles SIGTERM, and only on the main thread.
    """
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm)


@atexit.register
def _down_leftovers() -> None:
    """An interpreter that exits with a lab still up (an uncaught error) removes it."""
    for lab in list(_live):
        if lab.owned and not lab.detached:
            with contextlib.suppress(Exception):
                lab.down()
