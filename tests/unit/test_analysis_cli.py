"""`harness analyze`: readable summary, --json, --expect exit codes, garbage files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis.cli import main

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"


def test_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(PCAPS / "aiortc-relayed.pcap"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["packets"] > 300 and data["format"] == "pcap"
    assert data["ice"]["generations"][0]["selected_type"] == "relay"
    assert data["dtls"][0]["complete"] and len(data["dtls"][0]["certificate_fingerprints"]) == 2
    assert {r["packets"] for r in data["rtp"]} == {152}
    assert [(s["type"], s["ice_generation"]) for s in data["sdp"]] == [("offer", 0), ("answer", 0)]


def test_human_summary_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["analyze", str(PCAPS / "sipp-tcp.pcap"), "--expect", "sip_dialog_state"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "SIP dialog" in out and "INVITE sip:service@198.18.0.11:5060" in out
    assert "PASS sip_dialog_state" in out
    args = ["analyze", str(PCAPS / "sipp-udp.pcap"), "--expect", 'rtp_loss:{"max_percent": 0}']
    args += ["--expect", 'sdp_conformance:{"profile": "sip"}']
    assert main(args) == 3
    out = capsys.readouterr().out
    assert "FAIL sdp_conformance" in out and "no codec in common with the offer" in out


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 100)
    assert main(["analyze", str(junk)]) == 1
    assert "not a capture file" in capsys.readouterr().out
    assert main(["analyze", str(junk), "--expect", "nope"]) == 2
    assert main(["analyze", "--checks", str(junk)]) == 0
    assert "dtls_fingerprint_matches_sdp" in capsys.readouterr().out


def test_html_report_for_any_pcap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--html DIR` draws a run's page, ladder and media timeline for a capture made elsewhere."""
    pcap = PCAPS / "sipp-udp-fragmented.pcap"  # its INVITE arrives in two IP fragments
    out = tmp_path / "report"
    assert (
        main(["analyze", str(pcap), "--json", "--html", str(out), "--expect", "sip_dialog_state"])
        == 0
    )
    capsys.readouterr()
    ladder = (out / "runs" / "capture" / "ladder.svg").read_text()
    assert "INVITE +SDP" in ladder and "200" in ladder and "BYE" in ladder
    assert (out / "runs" / "capture" / "timeline.svg").read_text().startswith("<svg")
    page = (out / "index.html").read_text()
    assert "sipp-udp-fragmented.pcap" in page and "sip_dialog_state" in page
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [r["verdict"] for r in rows] == ["pass"]


def test_exit_keep_holds_one_file_and_only_when_enabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`harness analyze` as a process keeps the current file's objects to its exit (freeing
    them costs time it does not need to spend); a library caller keeps nothing, and
    several files never pile up, nor do the HTML report's own analyses."""
    from harness.analysis import exitkeep
    from harness.analysis.report import summarize_file

    pcap = str(PCAPS / "aiortc-relayed.pcap")
    summarize_file(pcap)
    assert exitkeep.kept() == 0  # off unless a whole process turned it on
    exitkeep.enable()
    try:
        assert main(["analyze", pcap, "--json"]) == 0
        one = exitkeep.kept()
        assert one >= 3  # the analyser's state, the SDP reports, the session
        assert main(["analyze", pcap, pcap, pcap, "--json"]) == 0
        assert exitkeep.kept() == one  # the last file's only
        assert main(["analyze", pcap, "--json", "--html", str(tmp_path / "r")]) == 0
        assert exitkeep.kept() == 0  # the report analyses again: it keeps nothing
    finally:
        exitkeep.disable()
    capsys.readouterr()
