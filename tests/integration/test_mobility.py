"""Mobility with real peers, NATs and components: handoffs, rebinding, recovery metrics.

Each run is a real scenario from scenarios/mobility/ (lab, peers, captures). Runs are
cached per module so the metric tests read the same run the scenario test judged.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.analyzer import analyze_file
from harness.analysis.recovery import Recovery, analyse, read_log
from harness.analysis.session import build
from harness.config.scenario import Scenario, load_scenarios
from harness.scenario.result import RunResult
from harness.scenario.runner import run_scenario

pytestmark = pytest.mark.lab
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "mobility"
#: Capture and peer event clocks are the same wall clock; stamps are taken in different
#: processes (tcpdump, agents), so they agree to a few ms on an idle machine.
AGREE_S = 0.050

_runs: dict[tuple[str, int | None], RunResult] = {}


def cell(file: str, name: str) -> Scenario:
    return next(s for s in load_scenarios(SCENARIOS / file) if s.name == name)


def run(file: str, name: str, seed: int | None = None) -> RunResult:
    key = (name, seed)
    if key not in _runs:
        _runs[key] = asyncio.run(run_scenario(cell(file, name), seed=seed))
    return _runs[key]


def recovery(r: RunResult, fixed_capture: str, mobile: str = "peer-a", **kw: Any) -> Recovery:
    d = Path(r.run_dir)
    s = build(analyze_file(d / f"{fixed_capture}.pcap"))
    phone = [build(analyze_file(p)) for p in sorted(d.glob(f"{mobile}-*.pcap"))]
    return analyse(s, read_log(d), mobile=phone, **kw)


def t0_of(r: RunResult, step_kind: str, log_start: float) -> float:
    """The run's time origin (peer event times are relative to it), from a logged step."""
    step = next(s for s in r.steps if s.kind == step_kind)
    return log_start - step.started_s


def first_event(r: RunResult, peer: str, kind: str, after: float) -> float:
    return next(e["t"] for e in r.peer_events[peer] if e["kind"] == kind and e["t"] >= after)


@pytest.fixture(scope="module", autouse=True)
def _clean_runs() -> Any:
    yield
    for r in _runs.values():
        if r.passed:
            shutil.rmtree(r.run_dir, ignore_errors=True)


@pytest.mark.parametrize(
    "file,name",
    [
        ("handoff-p2p.yaml", "handoff-p2p-aiortc-bbm-restart"),
        ("handoff-p2p.yaml", "handoff-p2p-chromium-bbm-restart"),
        ("handoff-p2p.yaml", "handoff-p2p-aiortc-mbb-restart"),
        ("handoff-p2p.yaml", "handoff-p2p-aiortc-bbm-none"),
        ("nat-rebind.yaml", "nat-rebind-aiortc-none"),
        ("turn-allocation-loss.yaml", "turn-allocation-loss-chromium-restart"),
        ("handoff-janus.yaml", "handoff-janus-aiortc"),
    ],
)
def test_scenario_meets_its_expected_outcome(file: str, name: str) -> None:
    r = run(file, name)
    assert r.passed, r.failure_text()


def test_capture_metrics_agree_with_peer_timestamps() -> None:
    """New nominated pair on the wire vs each peer's own selectedpair event (and the
    restart's offer before the first new-path check), within 50 ms."""
    r = run("handoff-p2p.yaml", "handoff-p2p-aiortc-bbm-restart")
    assert r.passed, r.failure_text()
    rec = recovery(r, "peer-b-eth0", kind="handoff")
    t0 = t0_of(r, "handoff", rec.event.start)
    since = rec.event.start - t0
    phone_sel = t0 + first_event(r, "phone", "selectedpair", since)
    desk_sel = t0 + first_event(r, "desk", "selectedpair", since)
    up, down = rec.directions["up"], rec.directions["down"]
    assert up.nominated_new is not None and down.nominated_new is not None, rec.to_dict()
    # `up` is measured at the desk (its capture saw the nomination it answered),
    # `down` at the phone (whose capture saw the answer to its nomination)
    assert abs(up.nominated_new - desk_sel) < AGREE_S, (up.nominated_new, desk_sel)
    assert abs(down.nominated_new - phone_sel) < AGREE_S, (down.nominated_new, phone_sel)
    assert rec.restart is not None and rec.restart["ok"]
    assert up.first_check_new is not None
    assert rec.restart["offer_t"] <= up.first_check_new + AGREE_S
    assert up.first_media_new is not None and up.first_media_new >= up.nominated_new - AGREE_S


def test_chromium_bbm_500ms_dark_gap_under_2s_both_ways() -> None:
    r = run("handoff-p2p.yaml", "handoff-p2p-chromium-bbm-restart")
    rec = recovery(r, "peer-b-eth0", kind="handoff")
    d = rec.to_dict()
    for name in ("up", "down"):
        assert d[name]["recovered"], d
        assert d[name]["largest_gap_s"] < 2.0, d
    assert d["dtls_handshakes"] == 1, d


def test_lossy_lte_handoff_repeats_within_10_percent() -> None:
    """Same seed, same lossy LTE profile: the same recovery, twice (within 10 %)."""
    name = "handoff-lossy-lte-aiortc"
    a = recovery(run("handoff-lossy-lte.yaml", name, seed=5), "peer-b-eth0", kind="handoff")
    b = recovery(
        asyncio.run(run_scenario(cell("handoff-lossy-lte.yaml", name), seed=5)),
        "peer-b-eth0",
        kind="handoff",
    )
    for direction in ("up", "down"):
        x, y = a.to_dict()[direction], b.to_dict()[direction]
        assert x["recovered"] and y["recovered"], (x, y)
        for metric in ("largest_gap_s", "time_to_recover_s"):
            assert y[metric] == pytest.approx(x[metric], rel=0.10), (direction, metric, x, y)
