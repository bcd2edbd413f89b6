"""Verdicts with real labs: a known-failure cell that breaks another way is a FAIL, a fixed
one is flagged, negative expectations and `on:` triggers work in real runs, unsupported is
a verdict, and a cancelled run leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.scenario import Scenario, load_scenarios, parse_scenario
from harness.scenario.result import RunResult
from harness.scenario.runner import run_scenario, run_scenario_sync
from harness.scenario.verdict import FAIL, UNSUPPORTED, XFAIL, decide
from tests.integration.test_teardown import leftovers

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
CELL = "janus-sip-ice-restart-notrickle-relay-nat-aiortc"
HARNESS = [sys.executable, "-m", "harness.cli"]


def cell(name: str = CELL) -> Scenario:
    return {
        s.name: s for s in load_scenarios(ROOT / "scenarios/gateway/janus-sip-ice-restart.yaml")
    }[name]


def lab_name(result: RunResult) -> str:
    return result.run_dir.name.split("-", 2)[-1]


def test_known_failure_cell_with_a_component_that_does_not_start_is_a_fail() -> None:
    sc = cell()
    sc.spec.components["kamailio"].options["address"] = "192.168.10.99"  # not on its node
    r = run_scenario_sync(sc)
    assert r.verdict == FAIL, (r.verdict, r.verdict_reason)
    assert r.verdict_reason.startswith("known failure did not match: expected check ice_restarts")
    assert "got error: kamailio" in r.verdict_reason
    assert not leftovers(lab_name(r))


def test_known_failure_cell_reproduces_and_a_mistyped_check_makes_it_a_fail() -> None:
    """One real run of the reproduction cell, with one check's parameter mistyped."""
    sc = cell()
    sc.expects.append(("sip_reinvite", {"cuont": 1, "capture": "server"}, None))
    r = run_scenario_sync(sc)
    assert r.verdict == FAIL, (r.verdict, r.verdict_reason, r.failure_text())
    assert "got check sip_reinvite #2: bad expectation" in r.verdict_reason
    # the same real run without the mistyped check is the documented bug, signature and all
    r.checks.pop()
    assert decide(r, sc.spec.known_failure).state == XFAIL, r.failure_text()


def write(tmp: Path, text: str) -> Path:
    d = tmp / "scenarios"
    d.mkdir(exist_ok=True)
    path = d / "x.yaml"
    path.write_text(text.replace("TOPOLOGIES", str(ROOT / "topologies")))
    return path


REJECT = """\
name: rejects-marked-known
topology: TOPOLOGIES/open-internet.yaml
components:
  bob: {kind: baresip, node: peer-b, options: {user: bob}}
peers:
  webrtc: {kind: aiortc, node: peer-a, audio: {tone_hz: 440}, datachannel: false, trickle: false}
steps:
  - sip_offer_webrtc_sdp: {peer: webrtc, callee: bob, expect_status: 488}
expect:
  - sip_dialog_state: {state: failed 488, capture: peer-a}
known_failure: {reason: "pretend baresip accepted the offer", checks: [sip_dialog_state]}
"""


def test_a_known_failure_that_passes_is_flagged_by_run_and_pytest(tmp_path: Path) -> None:
    path = write(tmp_path, REJECT)
    out = subprocess.run(
        [*HARNESS, "run", str(path), "--no-report", "--junit", str(tmp_path / "j.xml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "POSSIBLY FIXED rejects-marked-known" in out.stdout
    assert "possibly fixed" in (tmp_path / "j.xml").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 1 and "POSSIBLY FIXED" in out.stdout, out.stdout[-2000:]


def test_missing_program_is_unsupported_in_run_and_doctor(tmp_path: Path) -> None:
    """A PATH without turnserver: the machine really lacks coturn for this run."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for f in Path(d).iterdir() if Path(d).is_dir() else []:
            if f.name != "turnserver" and not (bindir / f.name).exists():
                (bindir / f.name).symlink_to(f)
    shipped = (ROOT / "scenarios/negative/stun-only-never-relays.yaml").read_text()
    path = write(
        tmp_path, shipped.replace("port-restricted\n", "TOPOLOGIES/port-restricted.yaml\n")
    )
    env = {**os.environ, "PATH": str(bindir)}
    out = subprocess.run(
        [*HARNESS, "run", str(path), "--no-report", "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert out.returncode == 3, out.stdout + out.stderr
    (r,) = json.loads((tmp_path / "r.json").read_text())
    assert r["verdict"] == UNSUPPORTED and r["steps"] == [] and not r["pcaps"]
    assert "component stun (coturn) needs turnserver" in r["verdict_reason"]
    assert "apt-get install -y coturn" in r["verdict_reason"]
    out = subprocess.run(
        [*HARNESS, "doctor", "--json", "--scenarios", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    rows = json.loads(out.stdout[out.stdout.index("\n[") + 1 :])
    assert rows[0]["scenario"] == "negative-stun-only-never-relays"
    assert rows[0]["fix"] == ["apt-get install -y coturn"]


TRIGGERS = """\
name: triggers
topology: open-internet
peers:
  alice: {kind: aiortc, node: peer-a, audio: {tone_hz: 440}, datachannel: false}
  bob: {kind: aiortc, node: peer-b, audio: {tone_hz: 660}, datachannel: false}
conditions:
  - {"on": {peer: alice, connection: connected, delay: 1.0}, link: peer-a.eth0, blackout: 1.0}
  - {"on": {step: 2}, link: peer-b.eth0, set: {up: {delay: 20}}}
steps:
  - call: {caller: alice, callee: bob, timeout: 15}
  - wait: {seconds: 3.5}
  - wait: {seconds: 1}
  - hangup: {peer: alice}
expect:
  - max_media_gap: {max_s: 2.0, capture: peer-b}
"""


def test_on_triggers_fire_on_peer_state_and_step_completion() -> None:
    sc = parse_scenario(TRIGGERS, ROOT / "scenarios/test-inline.yaml")
    r = run_scenario_sync(sc)
    assert r.verdict == "pass", r.failure_text()
    connected = next(
        e["t"]
        for e in r.peer_events["alice"]
        if e["kind"] == "connectionstatechange" and e["data"]["state"] == "connected"
    )
    (blackout,) = r.links["peer-a.eth0"]["changes"]
    assert blackout["op"] == "blackout"
    at = blackout["at_ns"] / 1e9 - r.t0
    assert 0.9 < at - connected < 1.3, (at, connected)
    (delay,) = r.links["peer-b.eth0"]["changes"]
    step2 = r.steps[1]
    end2 = step2.started_s + step2.duration_s
    # step times are recorded to the millisecond (start and duration each rounded): the
    # trigger fired 0.5 ms "before" such a sum in one CI run, within that rounding
    assert -0.001 <= delay["at_ns"] / 1e9 - r.t0 - end2 < 0.5
    gap = next(c for c in r.checks if c.name == "max_media_gap")
    assert "largest media gap" in gap.message
    worst_ms = float(gap.message.split("largest media gap ")[1].split(" ms")[0])
    assert worst_ms > 800, gap.message  # the blackout is on the wire


def test_a_cancelled_run_tears_everything_down() -> None:
    sc = parse_scenario(
        TRIGGERS.replace("wait: {seconds: 3.5}", "wait: {seconds: 60}"),
        ROOT / "scenarios/test-inline.yaml",
    )
    names: list[str] = []

    async def main() -> None:
        def progress(msg: str) -> None:
            if msg.startswith("lab "):
                names.append(msg.split()[1])

        task = asyncio.create_task(run_scenario(sc, progress=progress))
        while (
            not any(ev for ev in [names]) or not Path(f"/run/netns/rh-{names[0]}.peer-a").exists()
        ):
            await asyncio.sleep(0.05)
        await asyncio.sleep(3)  # peers up, call in progress, engine shaping peer-a's link
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not leftovers(names[0])


def test_negative_control_fails_when_the_thing_happens() -> None:
    """The symmetric-NAT control with coturn as TURN (the old silent default): the call
    connects through a relay, so `must_fail` and the negative checks fail it."""
    text = (ROOT / "scenarios/negative/symmetric-stun-only.yaml").read_text()
    text = text.replace("use: stun", "use: turn").replace(
        "expect:\n", "expect:\n  - no_rtp: {src: '198.18.0.12', capture: peer-a}\n"
    )
    cells = load_scenarios_text(text, ROOT / "scenarios/negative")
    (sc,) = [s for s in cells if s.name.endswith("aiortc")]
    r = run_scenario_sync(sc)
    assert r.verdict == FAIL
    (call,) = r.steps
    assert call.status == "failed" and "must fail with" in call.error and "succeeded" in call.error
    assert not r.checks  # a failed step skips the checks: run them on its pcaps here
    from harness.assertions.evaluate import run_expects

    outcomes = {name: o for name, _, _, o, _ in run_expects(sc.expects, [Path(p) for p in r.pcaps])}
    assert not outcomes["ice_not_connected"].passed
    assert "ICE connected: pair" in outcomes["ice_not_connected"].message
    assert not outcomes["no_rtp"].passed and "RTP flows 198.18.0.12" in outcomes["no_rtp"].message


def load_scenarios_text(text: str, folder: Path) -> list[Scenario]:
    """Scenarios of `text` as if it were a file in `folder` (topologies resolve alike)."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=folder) as f:
        f.write(text)
        f.flush()
        return load_scenarios(f.name)
