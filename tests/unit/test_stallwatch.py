"""The stall watch: a wake-up held back is recorded with its time and cause."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness.scenario.stallwatch import STALL_S, HostWatch, StallWatch


def _hold_the_interpreter(seconds: float) -> None:
    """Keep the GIL from the watch's thread: the stall a busy run thread would cause."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(old)


def test_a_held_back_wakeup_is_a_stall_with_its_time() -> None:
    watch = StallWatch()
    watch.start()
    time.sleep(0.05)
    t_before = time.time()
    _hold_the_interpreter(0.35)
    time.sleep(0.05)
    seen = watch.stop()
    big = [s for s in seen.stalls if s.late_s > 0.25]
    assert big, seen
    assert all(s.late_s > STALL_S for s in seen.stalls)
    stall = big[0]
    assert t_before + 0.25 < stall.t < t_before + 1.5
    assert seen.worst_s >= stall.late_s and seen.seconds >= 0.4
    line = seen.summary(t0=t_before)
    assert f"worst {seen.worst_s * 1000:.0f} ms late" in line, line
    assert "t=0.3" in line or "t=0.4" in line, line
    # the machine's pressure, not this process's: on a busy machine it is as long as the stall
    if stall.cpu_pressure_s is not None:
        assert 0 <= stall.cpu_pressure_s <= stall.late_s + 0.1, stall
        assert f"CPU pressure in it {stall.cpu_pressure_s * 1000:.0f} ms" in line, line


def test_a_window_without_stalls_adds_no_evidence() -> None:
    assert HostWatch(seconds=3.0, cpu_pressure_s=0.2, steal_s=0.0).summary(t0=0.0) == ""


def test_a_failed_run_shows_the_stall_in_its_text_and_report(tmp_path: Path) -> None:
    from harness.reports.html import build_report
    from harness.scenario.result import RunResult

    line = "a thread of the harness ... worst 1531 ms late at t=3.90s"
    r = RunResult("s", "s.yaml", 7, tmp_path / "run", verdict="fail", host={"summary": line})
    r.save()
    assert f"host: {line}" in r.failure_text()
    page = build_report([r], tmp_path / "report")
    assert f"host: {line}" in Path(page).read_text()
