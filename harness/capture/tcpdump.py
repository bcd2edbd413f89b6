"""tcpdump on lab interfaces: confirmed listening before we go on, no lost tail.

lab-facts: without --immediate-mode the last ~0.35 s is lost. We capture one
interface per process (never `-i any`, which lost tail packets) and stop with a
short grace period so packets in flight reach the file.

The kernel ring is RING_KIB, not lab-facts' 64 MiB: the kernel allocates and zeroes a
packet ring in one non-preemptible stretch, and on these VMs (free memory handed back
to the host) six 64 MiB rings starting at once held both CPUs for ~1.5 s, stalling
every other process, another lab's call included (a 1.6 s media gap on both legs of a
Janus call in CI). 8 MiB rings start in ~10 ms and dropped nothing at 2,500 packets/s
of 1,200 bytes with four CPU hogs running (`benchmarks/bench_capture.py`). They hold
~5,000 packets because lab links have segmentation offloads off (runtime/ethtool.py);
with them on, libpcap gives each packet a 64 KiB frame and the ring holds 128. What a
ring still drops is counted (`dropped`) and a scenario run refuses to judge it.
"""

from __future__ import annotations

import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import LabError
from harness.runtime.base import NodeProcess

if TYPE_CHECKING:
    from harness.lab.lab import Lab

RING_KIB = 8192
"""tcpdump's -B: the kernel packet ring per capture point, in KiB."""
_STATS = re.compile(r"(\d+) packets? (captured|received by filter|dropped by kernel)")


@dataclass
class CapturePoint:
    node: str
    iface: str
    path: Path
    proc: NodeProcess | None = None
    stats: dict[str, int] = field(default_factory=dict)
    ended_early: str = ""


class Capture:
    """One capture session over several interfaces; files under run_dir."""

    def __init__(
        self,
        lab: Lab,
        points: list[tuple[str, str]],
        *,
        bpf: str = "",
        suffix: str | None = None,
        ready_timeout: float = 5.0,
        ring_kib: int = RING_KIB,
    ) -> None:
        self.lab = lab
        self.bpf = bpf
        self.ring_kib = ring_kib
        self.ready_timeout = ready_timeout
        self.points: list[CapturePoint] = []
        for node, iface in points:
            if node == lab.SWITCH:
                if not iface:
                    raise LabError("a capture in the switch namespace needs an interface name")
            else:
                iface = lab.topology.node(node).iface(iface or None).name
            stem = f"{node.lstrip('@')}-{iface}" + (f"-{suffix}" if suffix else "")
            path = lab.run_dir / f"{stem}.pcap"
            n = 2
            while path.exists() or any(p.path == path for p in self.points):
                path = lab.run_dir / f"{stem}-{n}.pcap"
                n += 1
            self.points.append(CapturePoint(node, iface, path))
        self.started_at = 0.0
        self.stopped = False

    @property
    def files(self) -> list[Path]:
        return [p.path for p in self.points]

    def start(self) -> None:
        self.lab.run_dir.mkdir(parents=True, exist_ok=True)
        for p in self.points:
            argv = ["tcpdump", "-i", p.iface, "-n", "-s", "0", "-U", "--immediate-mode"]
            argv += ["-B", str(self.ring_kib), "-Z", "root", "-w", str(p.path)]
            if self.bpf:
                argv.append(self.bpf)
            p.proc = self.lab.spawn(p.node, argv, name=f"tcpdump-{p.path.stem}")
        deadline = time.monotonic() + self.ready_timeout
        for p in self.points:
            assert p.proc is not None
            while "listening on" not in p.proc.log_tail(5):
                if not p.proc.alive():
                    raise LabError(
                        f"tcpdump on {p.node}.{p.iface} exited with status {p.proc.returncode}: "
                        f"{p.proc.log_tail(5)}"
                    )
                if time.monotonic() > deadline:
                    raise LabError(
                        f"tcpdump on {p.node}:{p.iface} not listening after {self.ready_timeout} s"
                    )
                time.sleep(0.003)
        self.started_at = time.time()

    def stop(self, grace: float = 0.2) -> list[Path]:
        """Let in-flight packets land, then stop every tcpdump; returns the pcap paths."""
        if self.stopped:
            return self.files
        self.stopped = True
        time.sleep(grace)
        for p in self.points:
            if p.proc is not None and not p.proc.alive():  # ended before we asked it to
                p.ended_early = f"tcpdump exited with status {p.proc.returncode} mid-capture"
        for p in self.points:
            if p.proc is not None:
                p.proc.send_signal(signal.SIGINT)
        for p in self.points:
            if p.proc is None:
                continue
            p.proc.stop(timeout=3.0, sig=signal.SIGINT)
            p.stats = {
                m.group(2).split()[0]: int(m.group(1)) for m in _STATS.finditer(p.proc.log_tail(5))
            }
        self.lab.forget_capture(self)
        return self.files

    def losses(self) -> list[str]:
        """After stop: one line per file with holes, so nothing judges it as the wire: the
        ring overflowed (the kernel dropped packets tcpdump never saw), or tcpdump ended
        before the capture did, or left no counts to tell."""
        out = []
        for p in self.points:
            tail = p.proc.log_tail(3).strip().splitlines()[-1:] if p.proc is not None else []
            if p.ended_early:
                out.append(f"{p.path.name}: {p.ended_early}: {' '.join(tail)}")
            elif "dropped" not in p.stats:
                out.append(f"{p.path.name}: tcpdump reported no counts: {' '.join(tail)}")
            elif p.stats["dropped"] > 0:
                out.append(
                    f"{p.path.name}: the kernel dropped {p.stats['dropped']} packet(s) before"
                    f" tcpdump read them ({p.stats.get('captured', '?')} captured,"
                    f" ring {self.ring_kib} KiB)"
                )
        return out

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
