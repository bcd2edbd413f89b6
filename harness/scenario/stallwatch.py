"""Watch the machine while a scenario's steps run: did the host itself stall?

Media gaps, reconnect times and DTMF timing are judged by the wall clock. When the
machine stalls (the kernel holding both CPUs, the hypervisor not running the VM, a
runaway process), every component misses its deadlines at once and a check fails for
a reason that is not the component's. A thread sleeping PERIOD_S at a time notes each
wake-up later than STALL_S; the result keeps them with the CPU pressure and steal time
of the window, and a failed run shows them beside its checks, so whoever reads the
failure sees whether the host stalled when the gap happened. Verdicts do not change:
the gap happened on the wire.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis.model import wall_clock

PERIOD_S = 0.01
STALL_S = 0.1
"""A wake-up this late is a stall: ten periods, far beyond scheduling noise (~1 ms)."""
MAX_KEPT = 200


@dataclass
class Stall:
    t: float
    """Wall-clock time the thread woke at (time.time())."""
    late_s: float
    cpu_pressure_s: float | None = None
    """The machine's CPU pressure over the stall (time some task waited for a CPU): as long
    as the stall when the CPUs were the bottleneck; shorter means something else held the
    thread back (the kernel, the hypervisor, this process's own interpreter lock)."""


@dataclass
class HostWatch:
    """What the watch saw over one window of a run."""

    stalls: list[Stall] = field(default_factory=list)
    worst_s: float = 0.0
    """The latest wake-up of all, stall or not (a few ms on a quiet machine)."""
    seconds: float = 0.0
    cpu_pressure_s: float | None = None
    """/proc/pressure/cpu `some`: time at least one runnable task waited for a CPU."""
    steal_s: float | None = None
    """/proc/stat steal: time the hypervisor ran something else instead of this VM."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, t0: float) -> str:
        """One line for a failure's evidence; empty when nothing stalled."""
        if not self.stalls:
            return ""
        worst = max(self.stalls, key=lambda s: s.late_s)
        inside = (
            f", CPU pressure in it {worst.cpu_pressure_s * 1000:.0f} ms"
            if worst.cpu_pressure_s is not None
            else ""
        )
        whole = []
        if self.cpu_pressure_s is not None:
            whole.append(f"CPU pressure {self.cpu_pressure_s:.2f} s")
        if self.steal_s is not None:
            whole.append(f"steal {self.steal_s:.2f} s")
        return (
            f"a thread of the harness sleeping {PERIOD_S * 1000:.0f} ms at a time woke over"
            f" {STALL_S * 1000:.0f} ms late {len(self.stalls)} time(s) during the steps; worst"
            f" {worst.late_s * 1000:.0f} ms late at t={worst.t - t0:.2f}s ({wall_clock(worst.t)}){inside}"
            + (f"; over the {self.seconds:.1f} s of steps: {', '.join(whole)}" if whole else "")
        )


def stalls_inside(host: dict[str, Any], start: float, end: float) -> list[str]:
    """Evidence lines for the stalls a run's watch saw (`host`, RunResult.host) that overlap
    the span start-end (Unix times): a thread that woke `late_s` late at `t` was held back
    from about t - late_s to t."""
    lines = []
    for st in host.get("stalls", []):
        t, late = st["t"], st["late_s"]
        if t - late < end and t > start:
            pressure = st.get("cpu_pressure_s")
            inside = (
                f", CPU pressure in it {pressure * 1000:.0f} ms" if pressure is not None else ""
            )
            lines.append(
                f"host stall inside {wall_clock(start)}-{wall_clock(end)}: the harness's watch"
                f" thread was held back {late * 1000:.0f} ms, {wall_clock(t - late)}-"
                f"{wall_clock(t)}{inside} (the machine stalled, the components with it)"
            )
    return lines


def _cpu_pressure() -> float | None:
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        pass
    return None


def _steal() -> float | None:
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 3)


class StallWatch(threading.Thread):
    """Start it, do the work, `stop()` returns what it saw. A thread, not a task: an
    event loop busy with the run would delay a task for reasons of its own."""

    def __init__(self) -> None:
        super().__init__(name="stallwatch", daemon=True)
        self._done = threading.Event()
        self._seen = HostWatch()
        self._t_start = 0.0
        self._psi = _cpu_pressure()
        self._steal = _steal()

    def run(self) -> None:
        seen = self._seen
        prev = self._t_start = time.monotonic()
        psi_prev = _cpu_pressure()
        while not self._done.wait(PERIOD_S):
            now = time.monotonic()
            psi = _cpu_pressure()
            late = now - prev - PERIOD_S
            seen.worst_s = max(seen.worst_s, late)
            if late > STALL_S and len(seen.stalls) < MAX_KEPT:
                seen.stalls.append(
                    Stall(round(time.time(), 3), round(late, 3), _delta(psi_prev, psi))
                )
            prev, psi_prev = now, psi

    def stop(self) -> HostWatch:
        self._done.set()
        if self.is_alive():
            self.join()
        seen = self._seen
        seen.seconds = round(time.monotonic() - self._t_start, 3)
        seen.worst_s = round(seen.worst_s, 3)
        seen.cpu_pressure_s = _delta(self._psi, _cpu_pressure())
        seen.steal_s = _delta(self._steal, _steal())
        return seen
