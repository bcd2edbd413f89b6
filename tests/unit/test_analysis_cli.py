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


@pytest.mark.parametrize(
    ("expect", "says"),
    [
        ("dtls_handshakes:[1]", "the parameters are a JSON object"),  # was a TypeError
        ("dtls_handshakes:{", "bad JSON"),
        ("turn_relayed_address", "turn_relayed_address needs `address`"),  # was a KeyError
    ],
)
def test_bad_expect_says_what(capsys: pytest.CaptureFixture[str], expect: str, says: str) -> None:
    assert main(["analyze", str(PCAPS / "sipp-udp.pcap"), "--expect", expect]) == 2
    assert says in capsys.readouterr().err


def test_html_into_a_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--html names a directory: a file there is refused before anything is read (it raised
    FileExistsError once the report was drawn)."""
    taken = tmp_path / "report"
    taken.write_text("mine")
    assert main(["analyze", str(PCAPS / "sipp-udp.pcap"), "--html", str(taken)]) == 2
    assert f"--html {taken}: not a directory" in capsys.readouterr().err
    assert taken.read_text() == "mine"


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


def test_text_summary_cuts_lists_and_counts_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    """`--rows N`: each list shows N entries, problems and the largest first; one line
    counts the rest (with their packets and findings), `--rows 0` shows everything."""
    pcap = str(PCAPS / "aiortc-relayed.pcap")
    assert main(["analyze", pcap, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    packets = sorted(f["packets"] for f in data["flows"])
    assert len(packets) > 2
    assert main(["analyze", pcap, "--rows", "1"]) == 0
    out = capsys.readouterr().out
    left = f"{len(packets) - 1} more flows ({sum(packets[:-1])} packets, the smallest)"
    assert left in out, out
    assert f"│ {packets[-1]} " in out  # the largest flow is the one shown
    assert main(["analyze", pcap, "--rows", "0"]) == 0
    out = capsys.readouterr().out
    assert " more " not in out and all(f["flow"] in out for f in data["flows"])

    sipp = str(PCAPS / "sipp-udp.pcap")
    assert main(["analyze", sipp, "--json"]) == 0
    sdps = json.loads(capsys.readouterr().out)["sdp"]
    worst = max(sdps, key=lambda s: sum(f["severity"] == "error" for f in s["findings"]))
    assert any(f["severity"] == "error" for f in worst["findings"]) and len(sdps) == 2
    other = next(s for s in sdps if s is not worst)
    assert main(["analyze", sipp, "--rows", "1"]) == 0
    out = capsys.readouterr().out
    assert f"SDP {worst['type']} frame {worst['frame']} " in out  # the one with an error
    assert f"SDP {other['type']} frame {other['frame']} " not in out
    severities = sorted({f["severity"] for f in other["findings"]})
    counts = ", ".join(
        f"{k} {sum(f['severity'] == k for f in other['findings'])}" for k in severities
    )
    assert f"1 more SDP (findings: {counts or 'none'})" in out
    assert "[udp] INVITE sip:" in out  # the transport is text, not rich markup


@pytest.mark.parametrize("bad", ["-1", "all"])
def test_rows_must_be_a_count(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(PCAPS / "sipp-udp.pcap"), "--rows", bad])
    assert exc.value.code == 2
    assert (
        f"--rows: expected a whole number of rows (0: all), got '{bad}'" in capsys.readouterr().err
    )


def test_clip_keeps_the_largest_in_their_order() -> None:
    from harness.analysis.textreport import clip

    assert clip([3, 9, 1, 7], 2, float) == ([9, 7], [3, 1])
    assert clip([3, 9, 1, 7], 2) == ([3, 9], [1, 7])
    assert clip([3, 9], 0) == ([3, 9], []) and clip([3, 9], 5, float) == ([3, 9], [])
    assert clip([5, 5, 5], 2, float) == ([5, 5], [5])  # ties: the first
