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
from harness.config.scenario import Scenario, load_scenarios, parse_scenario
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
        ("nat-rebind.yaml", "nat-rebind-chromium-none"),
        ("nat-rebind.yaml", "nat-rebind-aiortc-none"),
        ("turn-allocation-loss.yaml", "turn-allocation-loss-chromium-restart"),
        ("handoff-janus.yaml", "handoff-janus-aiortc"),
    ],
)
def test_scenario_meets_its_expected_outcome(file: str, name: str) -> None:
    r = run(file, name)
    assert r.passed, r.failure_text()


@pytest.mark.parametrize(
    "file,name,seed",
    [
        ("handoff-p2p.yaml", "handoff-p2p-aiortc-bbm-restart", None),
        ("handoff-lossy-lte.yaml", "handoff-lossy-lte-aiortc", 5),  # 45 ms, jitter, 3 % loss
    ],
)
def test_capture_metrics_agree_with_peer_timestamps(file: str, name: str, seed: int | None) -> None:
    """New pair selected, as the wire shows it, vs each peer's own selectedpair event (and
    the restart's offer before the first new-path check), within 50 ms."""
    r = run(file, name, seed)
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
    """The acceptance budget: under 2 s each way. When Chromium misses it, the cause we
    measured is its network monitor: the restart's offer still carries the removed Wi-Fi
    address, and the LTE candidate is trickled only when Chromium's Linux
    NetworkChangeNotifier reports the address change, which it debounces for 2 s after
    the first change (NetworkChangeCalculatorParamsLinux: ip_address_offline_delay and
    ip_address_online_delay 2000 ms). The gap then cannot be under ~2 s; the test says
    so with the times (xfail) rather than passing or being loosened."""
    r = run("handoff-p2p.yaml", "handoff-p2p-chromium-bbm-restart")
    rec = recovery(r, "peer-b-eth0", kind="handoff")
    d = rec.to_dict()
    assert d["dtls_handshakes"] == 1, d
    gaps = {n: d[n]["largest_gap_s"] for n in ("up", "down")}
    assert all(d[n]["recovered"] for n in gaps), d
    if max(gaps.values()) < 2.0:
        return
    t0 = t0_of(r, "handoff", rec.event.start)
    lte = rec.event.data["new_address"]
    offer = rec.restart["offer_t"] if rec.restart else None
    cand = next(
        (
            t0 + e["t"]
            for e in r.peer_events["phone"]
            if e["kind"] == "icecandidate" and lte in str(e["data"].get("candidate"))
        ),
        None,
    )
    wifi_gone = float(rec.event.data["old_down"])
    evidence = (
        f"gaps {gaps}; after the Wi-Fi address went: restart offer "
        f"+{None if offer is None else round(offer - wifi_gone, 3)} s, LTE host candidate "
        f"+{None if cand is None else round(cand - wifi_gone, 3)} s, first check on LTE "
        f"+{d['up']['first_check_new_s']} s after the handoff began"
    )
    if cand is not None and cand - wifi_gone >= 1.5:
        pytest.xfail(
            "Chromium learns of the LTE address only after its 2 s network-change "
            f"debounce (NetworkChangeNotifierLinux): {evidence}"
        )
    raise AssertionError(f"media gap over 2 s for another reason: {evidence}")


def fresh_run(file: str, name: str, seed: int) -> RunResult:
    r = asyncio.run(run_scenario(cell(file, name), seed=seed))
    _runs[(name, -seed)] = r  # cleaned up with the others
    return r


def test_lossy_lte_handoff_repeats_within_10_percent() -> None:
    """Same seed, same lossy LTE profile: what the link decides repeats, within 10 %.

    The seed fixes the link's losses and delays, not the peers' CPU. The phone's ICE
    restart is answered 0.54-0.67 s after the handoff (nine CI runs of seed 5: aiortc's
    offer and the desk's answer under the suite's load), and the media gap carries that
    time: 0.82-0.97 s. From the answer on the recovery is the link's: the new path's
    nomination 219-225 ms (down) and 260-266 ms (up) after it, its first media 312-325 ms
    and 261-279 ms. So both runs recover, those times repeat within 10 %, and the gaps
    differ by what the answers' times differ, within 10 % of the gap."""
    name = "handoff-lossy-lte-aiortc"
    a = recovery(run("handoff-lossy-lte.yaml", name, seed=5), "peer-b-eth0", kind="handoff")
    b = recovery(fresh_run("handoff-lossy-lte.yaml", name, seed=5), "peer-b-eth0", kind="handoff")
    ra, rb = a.to_dict(), b.to_dict()
    answers = (ra["restart_answer_s"], rb["restart_answer_s"])
    assert None not in answers, (ra, rb)
    for direction in ("up", "down"):
        x, y = ra[direction], rb[direction]
        assert x["recovered"] and y["recovered"], (x, y)
        for metric in ("nominated_new_s", "first_media_new_s"):
            after = (x[metric] - answers[0], y[metric] - answers[1])
            assert after[1] == pytest.approx(after[0], rel=0.10), (direction, metric, answers, x, y)
        unexplained = (y["largest_gap_s"] - x["largest_gap_s"]) - (answers[1] - answers[0])
        assert abs(unexplained) <= 0.10 * x["largest_gap_s"], (direction, answers, x, y)


ROUTES = """\
name: t-route
topology: dual-homed
steps:
  - interface: {node: peer-a, iface: lte, state: down}
  - interface: {node: peer-a, iface: lte, state: up}
  - route: {node: peer-a, via: lte}
  - route: {node: peer-a, via: wifi}
  - interface: {node: peer-a, iface: wifi, state: down}
  - route: {node: peer-a, via: wifi}
"""


def test_interface_and_route_steps_change_the_default_route() -> None:
    """No peers: the steps alone, read back from the node's routing table."""
    r = asyncio.run(run_scenario(parse_scenario(ROUTES, SCENARIOS / "t-route.yaml")))
    steps = {i: s for i, s in enumerate(r.steps)}
    assert [s.status for s in r.steps[:5]] == ["passed"] * 5, r.failure_text()
    assert steps[2].detail["default_routes"] == {"lte": 100, "wifi": 200}
    assert steps[3].detail["default_routes"] == {"wifi": 100, "lte": 200}
    assert steps[5].status == "failed" and "is down" in steps[5].error
    kinds = [e.kind for e in read_log(Path(r.run_dir))]
    assert kinds == ["interface_down", "interface_up", "route", "route", "interface_down"]
    shutil.rmtree(r.run_dir, ignore_errors=True)
