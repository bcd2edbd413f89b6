"""The stall watch: a wake-up held back is recorded with its time and cause."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.analysis.model import wall_clock
from harness.config.scenario import parse_scenario
from harness.scenario.context import ScenarioContext
from harness.scenario.result import RunResult
from harness.scenario.runner import _run_checks
from harness.scenario.stallwatch import STALL_S, HostWatch, StallWatch, stalls_inside


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


def test_a_stall_is_named_only_for_the_spans_it_overlaps() -> None:
    # a thread that woke 1.5 s late at t=100.0 was held back from 98.5 to 100.0
    host = {"stalls": [{"t": 100.0, "late_s": 1.5, "cpu_pressure_s": 1.4}]}
    inside = stalls_inside(host, 99.0, 99.5)
    assert len(inside) == 1 and "held back 1500 ms" in inside[0], inside
    assert "CPU pressure in it 1400 ms" in inside[0]
    assert stalls_inside(host, 97.0, 98.6) and stalls_inside(host, 99.9, 101.0)
    assert stalls_inside(host, 97.0, 98.4) == []  # ended before the stall began
    assert stalls_inside(host, 100.1, 101.0) == []  # began after the thread woke
    assert stalls_inside({}, 99.0, 99.5) == []  # a run with no watch (or no stall)


PCAP = Path(__file__).resolve().parents[1] / "data" / "pcaps" / "aiortc-long.pcap"
SCENARIO = """\
name: t
topology: open-internet
peers:
  alice: {kind: aiortc, node: peer-a}
  bob: {kind: aiortc, node: peer-b}
steps:
  - call: {caller: alice, callee: bob, timeout: 15}
expect:
  - max_media_gap: {max_s: 0.4}
  - max_media_gap: {max_s: 1.0}
"""


def _frame_time(n: int) -> float:
    """Frame n's capture time, as tshark (an independent reader) gives it."""
    out = subprocess.run(
        ["tshark", "-r", str(PCAP), "-Y", f"frame.number=={n}", "-T", "fields"]
        + ["-e", "frame.time_epoch"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def test_a_failed_gap_check_names_the_host_stall_inside_its_gap(tmp_path: Path) -> None:
    """The run's checks stage: the capture's largest gap (frames 55-79, 451 ms) fails a
    0.4 s limit; a stall the watch recorded inside it is named in that check's evidence,
    one outside it is not, and a check that passed gets no such line."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (ci/setup.sh installs it)")
    start, end = _frame_time(55), _frame_time(79)
    scenario = parse_scenario(SCENARIO, Path("scenarios/test-inline.yaml"))
    result = RunResult("t", "t.yaml", 1, tmp_path, pcaps=[str(PCAP)])
    result.host = {
        "stalls": [
            {"t": start + 0.3, "late_s": 0.2, "cpu_pressure_s": 0.19},  # inside the gap
            {"t": end + 5.0, "late_s": 0.3, "cpu_pressure_s": None},  # seconds later
        ]
    }
    # no lab: the checks read the capture and the run's record only
    failed, passed = _run_checks(scenario, ScenarioContext(scenario, None, 1), result)  # type: ignore[arg-type]  # see above
    assert not failed.passed and passed.passed, (failed, passed)
    named = [e for e in failed.evidence if e.startswith("host stall inside")]
    assert named == [
        f"host stall inside {wall_clock(start)}-{wall_clock(end)}: the harness's watch thread"
        f" was held back 200 ms, {wall_clock(start + 0.1)}-{wall_clock(start + 0.3)}, CPU"
        " pressure in it 190 ms (the machine stalled, the components with it)"
    ], failed.evidence
    assert not [e for e in passed.evidence if e.startswith("host stall")], passed.evidence
