"""Verdict logic: known-failure signatures, strict possibly-fixed, rate bands, unsupported,
and the reports that read the one verdict (no lab: results are built here)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.config.knownfailure import KnownFailure
from harness.config.scenario import IceServerRef, parse_scenario
from harness.errors import ConfigError
from harness.scenario.result import CheckResult, RunResult, StepResult
from harness.scenario.verdict import (
    FAIL,
    PASS,
    UNSUPPORTED,
    XFAIL,
    XPASS,
    decide,
    judge_rate,
    verdict_of,
)

HERE = Path("scenarios/test-inline.yaml")
SIGNATURE = KnownFailure.model_validate(
    {
        "reason": "Janus drops the new candidates",
        "checks": {"ice_restarts": r"^0 ICE restart", "ice_reconnect_time": "no ICE restart"},
    }
)


def run(**kw: object) -> RunResult:
    r = RunResult("cell", "x.yaml", 1, Path("/tmp/none"))
    r.steps = [StepResult(0, "call", "passed", 0.0, 1.0)]
    r.checks = [
        CheckResult("sip_reinvite", True, "1 re-INVITE(s)"),
        CheckResult("ice_restarts", False, "0 ICE restart(s): 0 < min 1"),
        CheckResult("ice_reconnect_time", False, "no ICE restart in the capture"),
    ]
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_the_signature_reproducing_is_a_known_failure() -> None:
    v = decide(run(), SIGNATURE)
    assert v.state == XFAIL and "Janus drops" in v.reason


def test_any_other_failure_is_a_fail_that_says_expected_and_got() -> None:
    r = run(error="kamailio: exited with status 255 before it was ready")
    v = decide(r, SIGNATURE)
    assert v.state == FAIL
    assert v.reason.startswith("known failure did not match: expected check ice_restarts")
    assert "got error: kamailio: exited" in v.reason

    r = run()
    r.checks[0] = CheckResult("sip_reinvite", False, "2 re-INVITE(s): 2 != 1")
    v = decide(r, SIGNATURE)
    assert v.state == FAIL and "got check sip_reinvite: 2 re-INVITE(s)" in v.reason


def test_a_named_check_failing_differently_or_not_at_all_is_a_fail() -> None:
    r = run()
    r.checks[1] = CheckResult("ice_restarts", False, "3 ICE restart(s): 3 > max 1")
    v = decide(r, SIGNATURE)
    assert v.state == FAIL and "failed without /^0 ICE restart/" in v.reason
    r = run()
    r.checks[2].passed = True
    v = decide(r, SIGNATURE)
    assert v.state == FAIL and "did not fail: check ice_reconnect_time" in v.reason


def test_a_symptom_that_may_fail_is_allowed_but_never_required() -> None:
    kf = KnownFailure.model_validate(
        {**SIGNATURE.model_dump(), "may_fail": {"max_media_gap": "^largest media gap"}}
    )
    gap = CheckResult("max_media_gap", False, "largest media gap 1256.0 ms (limit 1000 ms)")
    assert decide(run(), kf).state == XFAIL  # not shown: still the bug
    r = run()
    r.checks.append(gap)
    assert decide(r, kf).state == XFAIL  # shown: the bug's timing-dependent symptom
    assert decide(r, SIGNATURE).state == FAIL  # without may_fail it is another failure
    r.checks[-1] = CheckResult("max_media_gap", False, "no RTP in the capture")
    v = decide(r, kf)
    assert v.state == FAIL and "failed without /^largest media gap/" in v.reason
    r = run()
    r.checks[1].passed = r.checks[2].passed = True
    r.checks.append(gap)
    v = decide(r, kf)  # the symptom alone is not the bug
    assert v.state == FAIL and "did not fail: check ice_restarts" in v.reason


def test_a_broken_check_never_matches_even_when_named() -> None:
    r = run()
    r.checks[1] = CheckResult("ice_restarts", False, "bad expectation: unknown parameter 'mni'")
    sig = KnownFailure.model_validate({"reason": "x", "checks": ["ice_restarts"]})
    v = decide(r, sig.model_copy(update={"checks": {**sig.checks, "ice_reconnect_time": None}}))
    assert v.state == FAIL and "bad expectation" in v.reason


def test_a_passing_known_failure_is_possibly_fixed_and_fails_the_suite() -> None:
    r = run()
    for c in r.checks:
        c.passed = True
    v = decide(r, SIGNATURE)
    assert v.state == XPASS and v.bad and "possibly fixed" in v.reason


def test_steps_and_errors_in_signatures() -> None:
    r = run(checks=[])
    r.steps = [StepResult(0, "janus_call", "failed", 0.0, 1.0, error="486 Busy Here")]
    by_kind = KnownFailure.model_validate({"reason": "x", "steps": {"janus_call": "486"}})
    by_number = KnownFailure.model_validate({"reason": "x", "steps": {"1": "Busy"}})
    wrong = KnownFailure.model_validate({"reason": "x", "steps": {"janus_call": "603"}})
    assert decide(r, by_kind).state == XFAIL
    assert decide(r, by_number).state == XFAIL
    assert decide(r, wrong).state == FAIL
    crash = KnownFailure.model_validate({"reason": "x", "error": "janus: died"})
    assert decide(run(checks=[], error="janus: died with status 11"), crash).state == XFAIL


def test_unsupported_is_neither_pass_nor_fail() -> None:
    r = run(skipped=True, skip_reason="chromium peers need chromium, not installed")
    v = decide(r, SIGNATURE)
    assert v.state == UNSUPPORTED and not v.bad and "chromium" in v.reason
    assert decide(run(checks=[]), None).state == PASS


def test_rate_band_over_repeated_runs() -> None:
    sig = KnownFailure.model_validate(
        {"reason": "race", "checks": ["ice_restarts"], "rate": {"min": 0.2, "max": 0.6}}
    )
    passing = run(checks=[CheckResult("ice_restarts", True, "1 ICE restart(s)")])
    failing = run(checks=[CheckResult("ice_restarts", False, "0 ICE restart(s)")])
    assert decide(passing, sig).state == PASS  # an intermittent bug may not show
    assert decide(failing, sig).state == XFAIL

    def runs(n_fail: int, n: int) -> list[RunResult]:
        out = []
        for i in range(n):
            r = failing if i < n_fail else passing
            v = decide(r, sig)
            out.append(run(verdict=v.state, checks=r.checks))
        return out

    assert judge_rate(sig, runs(2, 4)) is None  # fewer than min_runs (5)
    judged = judge_rate(sig, runs(2, 5))
    assert judged is not None and judged.state == XFAIL
    low = judge_rate(sig, runs(0, 5))
    assert low is not None and low.state == FAIL and "possibly fixed" in low.reason
    high = judge_rate(sig, runs(5, 5))
    assert high is not None and high.state == FAIL and "100%" in high.reason


def test_reports_use_the_one_verdict(tmp_path: Path) -> None:
    from harness.reports.junit import write_junit

    xfail, xpass, unsup = run(), run(), run(skipped=True, skip_reason="no docker engine")
    for c in xpass.checks:
        c.passed = True
    for r in (xfail, xpass, unsup):
        v = decide(r, SIGNATURE)
        r.verdict, r.verdict_reason = v.state, v.reason
        r.known_failure = SIGNATURE.reason
    write_junit([xfail, xpass, unsup], tmp_path / "j.xml")
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("1", "2", "0")
    cases = suite.findall("testcase")
    assert cases[0].find("skipped") is not None
    failure, skipped = cases[1].find("failure"), cases[2].find("skipped")
    assert failure is not None and "possibly fixed" in failure.get("message", "")
    assert skipped is not None and skipped.get("message", "").startswith("unsupported: ")
    from harness.scenario.verdict import Verdict

    band = {"cell": Verdict(FAIL, "failure rate 0% of 10 runs outside 5%-90% (possibly fixed)")}
    write_junit([xfail], tmp_path / "r.xml", rates=band)
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert suite.findall("testcase")[1].get("name") == "cell[failure rate]"
    # results saved before verdicts existed still get one
    old = run(known_failure="x")
    assert verdict_of(old).state == XFAIL


BASE = """\
name: t
topology: open-internet
components:
  turn: {kind: coturn, node: server}
peers:
  alice: {kind: aiortc, node: peer-a, ice_servers: [{component: turn, use: stun}]}
  bob: {kind: aiortc, node: peer-b}
steps:
  - call: {caller: alice, callee: bob, timeout: 15}
expect:
  - ice_connected: {}
"""


def test_known_failure_needs_a_signature_naming_what_exists() -> None:
    with pytest.raises(ConfigError, match="a bare reason would excuse any failure"):
        parse_scenario(BASE + "known_failure: janus bug\n", HERE)
    with pytest.raises(ConfigError, match=r"known_failure.checks.ice_restarts: no expectation"):
        parse_scenario(BASE + "known_failure: {reason: x, checks: [ice_restarts]}\n", HERE)
    with pytest.raises(ConfigError, match=r"known_failure.steps.hangup: no step 'hangup'"):
        parse_scenario(BASE + "known_failure: {reason: x, steps: [hangup]}\n", HERE)
    with pytest.raises(ConfigError, match="bad regex"):
        parse_scenario(BASE + "known_failure: {reason: x, checks: {ice_connected: '(('}}\n", HERE)
    with pytest.raises(ConfigError, match="names what must go wrong"):
        parse_scenario(BASE + "known_failure: {reason: x}\n", HERE)
    ok = parse_scenario(BASE + "known_failure: {reason: x, checks: [ice_connected]}\n", HERE)
    assert ok.spec.known_failure is not None


def test_ice_server_use_and_must_fail_and_triggers_are_checked() -> None:
    sc = parse_scenario(BASE, HERE)
    ref = sc.spec.peers["alice"].ice_servers[0]
    assert isinstance(ref, IceServerRef) and ref.use == "stun"  # not a bare component name
    with pytest.raises(ConfigError, match=r":6: peers.alice.ice_servers\[0\]"):
        parse_scenario(BASE.replace("use: stun", "use: relay"), HERE)
    with pytest.raises(ConfigError, match="is no STUN server"):
        parse_scenario(
            BASE.replace(
                "turn: {kind: coturn, node: server}", "turn: {kind: kamailio, node: server}"
            ),
            HERE,
        )
    sc = parse_scenario(BASE.replace("timeout: 15}", "timeout: 15, must_fail: 'within'}"), HERE)
    assert sc.steps[0].action.must_fail.error == "within"
    with pytest.raises(ConfigError, match="bad regex"):
        parse_scenario(BASE.replace("timeout: 15}", "timeout: 15, must_fail: '(['}"), HERE)
    trig = (
        '\nconditions:\n  - {"on": {peer: %s, ice: disconnected}, link: peer-a.eth0, blackout: 1}\n'
    )
    trigger = parse_scenario(BASE + trig % "alice", HERE).spec.conditions[0].on
    assert trigger is not None and trigger.peer == "alice"
    with pytest.raises(ConfigError, match="no peer 'carol'"):
        parse_scenario(BASE + trig % "carol", HERE)
    step_trig = '\nconditions:\n  - {"on": {step: 4}, link: peer-a.eth0, blackout: 1}\n'
    with pytest.raises(ConfigError, match="only 1 steps"):
        parse_scenario(BASE + step_trig, HERE)
