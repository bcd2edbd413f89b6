"""`sip_messages` and the analysis on the SIP of Janus's ACK race, forced by
janus-sip-late-180.yaml (tests/data/make_pcaps.py janus-late-180): on Janus's wire the
extension's 180 arrives behind its 200, and Janus never sends the ACK; on Kamailio's wire
both came in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.analysis.report import summarize_file
from harness.analysis.session import Session
from harness.assertions.registry import load_checks, run_check

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
load_checks()


@pytest.fixture(scope="module")
def janus() -> Session:
    return summarize_file(PCAPS / "janus-late-180.pcap")[0]


@pytest.fixture(scope="module")
def proxy() -> Session:
    return summarize_file(PCAPS / "janus-late-180-proxy.pcap")[0]


def outcome(s: Session, params: dict[str, Any]) -> tuple[bool, str, list[str]]:
    o = run_check("sip_messages", s, params)
    return o.passed, o.message, o.evidence


def test_a_180_behind_its_200(janus: Session, proxy: Session) -> None:
    late = {"status": 180, "after_status": 200, "count": 1}
    passed, message, evidence = outcome(janus, late)
    assert passed and message == "1 SIP message(s) with status=180 after_status=200", message
    assert "180 Ringing" in evidence[0]
    # on Kamailio's wire the same 180s came before their 200s: none behind
    passed, message, _ = outcome(proxy, late)
    assert not passed and message.startswith("0 SIP message(s) with status=180 after_status=200")
    assert outcome(proxy, {"status": 180, "min": 2})[0]  # erin's, and Kamailio's copy


def test_after_status_is_per_request(janus: Session) -> None:
    """The BYE's 200 comes after the INVITE's 180 too, in the same dialog, but it answers
    another request: it is behind no 180 of its own CSeq."""
    assert outcome(janus, {"status": 200, "method": "BYE", "count": 1})[0]
    assert outcome(janus, {"status": 200, "method": "BYE", "after_status": 180, "count": 0})[0]
    assert outcome(janus, {"status": 200, "method": "INVITE", "after_status": 200, "min": 2})[0]


def test_the_race_leaves_no_ack(janus: Session, proxy: Session) -> None:
    assert outcome(janus, {"method": "ACK", "request": True, "count": 0})[0]
    assert outcome(janus, {"method": "INVITE", "status": 200, "min": 3})[0]  # retransmitted
    assert outcome(proxy, {"method": "ACK", "request": True, "count": 0})[0]


def test_the_analysis_names_the_late_180(janus: Session, proxy: Session) -> None:
    """`harness analyze` shows the reorder on Janus's wire, and none on Kamailio's."""
    from harness.analysis.report import summary

    late = [
        (t["method"], t["final"], t["late_provisional"])
        for d in summary(janus)["sip"]
        for t in d["transactions"]
        if t["late_provisional"]
    ]
    assert late == [("INVITE", 200, [9])]  # frame 9: the 180, behind the 200 of frame 8
    assert not any(t["late_provisional"] for d in summary(proxy)["sip"] for t in d["transactions"])


def test_harness_analyze_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.analysis.cli import main

    assert main(["analyze", str(PCAPS / "janus-late-180.pcap")]) == 0
    out = capsys.readouterr().out
    assert "provisional response(s) after the final 200, frame(s) 9: reordered on the way" in out


def test_a_100_answering_a_retransmitted_invite_is_no_reorder() -> None:
    """nDPI's T.38 call: an INVITE copy after the 200 (frame 176) is answered 100 Trying
    (177) and 200 again: hop by hop, not a response that overtook another."""
    _, fax = summarize_file(PCAPS.parent / "thirdparty" / "ndpi-FAX-Call-t38-CA-TDM-SIP-FB-1.pcap")
    (invite,) = [t for d in fax["sip"] for t in d["transactions"] if t["branch"].endswith("o0.1")]
    assert invite["requests"] == 3 and invite["final"] == 200  # two copies, 200 OK
    assert not any(t["late_provisional"] for d in fax["sip"] for t in d["transactions"])
