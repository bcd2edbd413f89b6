"""Janus's SIP stack's ACK race (a 180 relayed after the 200 OK): named from Janus's log
(sofia-sip's TPORT_LOG messages and its `900 No response to ACK`), and a failed run that
shows it is an XFAIL naming it. Real logs (tests/data/logs/SOURCES.md) and excerpts cut
from them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.components.janus import Janus
from harness.components.janus_diag import diagnose, late_provisionals, tport_messages
from harness.config.knownfailure import KnownFailure
from harness.runtime.base import NodeProcess
from harness.scenario.result import RunResult, StepResult
from harness.scenario.verdict import FAIL, PASS, XFAIL, decide, judge_rate

LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"
RACE = (LOGS / "janus-ack-race.log").read_text()
CONTROL = (LOGS / "janus-late-180-after-ack.log").read_text()
RULE = "   " + "-" * 72


def block(direction: str, at: str, *lines: str) -> str:
    peer = "to" if direction == "send" else "from"
    body = "\n".join("   " + line for line in lines)
    return f"{direction} 500 bytes {peer} udp/[198.18.0.12]:5060 at {at}:\n{RULE}\n{body}\n   \n{RULE}\n"


def response(status: str) -> tuple[str, ...]:
    return (f"SIP/2.0 {status}", "Call-ID: BXenVwcVeKJzrWtB1bbdsNG", "CSeq: 1001296412 INVITE")


INVITE = block("send", "07:33:57.295627", "INVITE sip:ext@198.18.0.12 SIP/2.0",
               "Call-ID: BXenVwcVeKJzrWtB1bbdsNG", "CSeq: 1001296412 INVITE")  # fmt: skip
OK = block("recv", "07:33:57.301274", *response("200 Answering"))
RINGING = block("recv", "07:33:57.300397", *response("180 Ringing"))
REFUSED = "[Wed Dec  2 07:33:57 2026] [WARN] [browser][nua_i_error]: 900 No response to ACK\n"


def test_the_tport_log_of_a_real_run() -> None:
    invite = [m for m in tport_messages(RACE) if m.method == "INVITE"][:5]
    assert [(m.direction, m.status) for m in invite] == [
        ("send", None), ("recv", 100), ("recv", 200), ("recv", 180), ("recv", 200)
    ]  # fmt: skip
    ok, ringing = invite[2], invite[3]
    assert round((ringing.t - ok.t) * 1e6) == 123  # 07:33:57.301274 -> .301397


def test_the_race_is_named_with_its_timing() -> None:
    found = diagnose(RACE)
    assert found is not None and found.known_race
    assert "900 No response to ACK" in found.text
    assert "'SIP/2.0 180 Ringing' to CSeq" in found.text and "0.123 ms after" in found.text
    assert found.text.endswith("no ACK was sent")


def test_a_180_after_the_ack_is_not_the_race() -> None:
    msgs = tport_messages(CONTROL)
    assert any(m.status == 180 for m in msgs)  # it came, after the ACK had left
    assert late_provisionals(msgs) == [] and diagnose(CONTROL) is None


def test_a_refusal_without_proof_is_named_not_excused() -> None:
    in_order = diagnose(INVITE + RINGING + OK + REFUSED)  # messages, but the 180 first
    assert in_order is not None and not in_order.known_race
    assert "not the known race" in in_order.text
    no_log = diagnose(REFUSED)  # a log without TPORT_LOG's messages
    assert no_log is not None and not no_log.known_race
    assert "order of the 180 and the 200 at Janus is unknown" in no_log.text


def test_janus_logs_its_sip_messages_and_reads_them(tmp_path: Path) -> None:
    host = Janus("janus", "server").spawn_env()
    assert host["TPORT_LOG"] == "1" and "PATH" in host  # the harness's environment too
    assert Janus("janus", "server", image="rtc-harness/janus:sid").spawn_env() == {"TPORT_LOG": "1"}
    janus = Janus("janus", "server")
    assert janus.log_findings() == []  # not started: no log
    log = tmp_path / "server-janus.log"
    log.write_text(RACE)
    proc = SimpleNamespace(log_path=log)  # what the runtime gives: its log
    proc.log_text = lambda: NodeProcess.log_text(cast(Any, proc))
    janus.proc = cast(Any, proc)
    [found] = janus.log_findings()
    assert found.known_race and "0.123 ms" in found.text
    log.write_text(CONTROL)
    assert janus.log_findings() == []


def failed_run(races: list[dict[str, Any]], findings: list[str] | None = None) -> RunResult:
    r = RunResult("cell", "x.yaml", 1, Path("/nonexistent"), races=races)
    r.log_findings = findings or []
    error = "janus.plugin.sip: no updated/accepted within 12 s (got updating)"
    r.steps = [StepResult(3, "janus_restart_ice", "failed", 8.0, 12.0, error=error)]
    return r


def test_a_failed_run_with_the_race_is_its_xfail() -> None:
    found = diagnose(RACE)
    assert found is not None
    found.source = "janus"
    race = found.to_dict()
    v = decide(failed_run([race]))
    assert (v.state, v.race) == (XFAIL, True)
    assert v.reason.startswith("known race of a component or peer under test: janus: Janus's SIP")
    # a scenario's own known failure wins when it matches; the race when it does not
    own = KnownFailure(reason="the cell's bug", steps={"janus_restart_ice": "got updating"})
    assert (decide(failed_run([race]), own).state, decide(failed_run([race]), own).race) == (
        XFAIL,
        False,
    )
    other = KnownFailure(reason="the cell's bug", checks={"ice_restarts": None})
    assert decide(failed_run([race]), other).race


def test_without_proof_the_run_fails_and_says_what_the_log_shows() -> None:
    finding = "janus: " + diagnose(REFUSED).text  # type: ignore[union-attr]
    v = decide(failed_run([], [finding]))
    assert v.state == FAIL and "order of the 180 and the 200 at Janus is unknown" in v.reason
    race = {"source": "janus", "text": "a race", "known_race": True, "may_fail": None}
    passed = RunResult("cell", "x.yaml", 1, Path("/nonexistent"), races=[race])
    assert decide(passed).state == PASS  # nothing failed: nothing to excuse


@pytest.mark.parametrize("raced", [0, 3])
def test_race_runs_leave_a_failure_rate(raced: int) -> None:
    """An intermittent known failure's rate counts its own runs, not the race's."""
    kf = KnownFailure.model_validate(
        {"reason": "r", "checks": {"x": None}, "rate": {"min": 0.2, "max": 0.5, "min_runs": 5}}
    )
    runs = [RunResult("c", "x", i, Path("/n"), verdict=PASS) for i in range(4)]
    runs += [RunResult("c", "x", 9, Path("/n"), verdict=XFAIL)]
    runs += [
        RunResult("c", "x", 10 + i, Path("/n"), verdict=XFAIL, race_verdict=True)
        for i in range(raced)
    ]
    v = judge_rate(kf, runs)
    assert v is not None and v.state == XFAIL and "20% of 5 runs" in v.reason


def test_a_run_error_is_never_the_race() -> None:
    run = failed_run([{"source": "janus", "text": "a race", "known_race": True, "may_fail": None}])
    run.error = "TypeError: the harness's own bug"
    assert decide(run).state == FAIL
