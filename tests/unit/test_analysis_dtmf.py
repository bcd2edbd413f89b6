"""RFC 4733 telephone-events read by harness/analysis/dtmf.py equal tshark's rtpevent decode.

tests/data/pcaps/janus-dtmf-sip.pcap is the SIP leg (erin's capture, peer-b-eth0) of
scenarios/gateway/janus-dtmf-rfc4733.yaml's Chromium cell: the browser's 369 relayed by
Janus, erin's 4 from baresip, payload type 126.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.analysis.dtmf import read_events
from tests.refragment import fragmented

PCAP = Path(__file__).resolve().parents[1] / "data" / "pcaps" / "janus-dtmf-sip.pcap"


def test_digits_and_ends() -> None:
    events = read_events(PCAP, {126})
    assert [(e.src.split(":")[0], e.digit, e.end) for e in events] == [
        ("198.18.0.12", "3", True),
        ("198.18.0.12", "6", True),
        ("198.18.0.12", "9", True),
        ("198.18.0.11", "4", True),
    ]


def test_fragmented_datagrams_read_whole(tmp_path: Path) -> None:
    """A capture whose RTP arrives in IP fragments (each datagram in 8-byte pieces) has the
    same events: each read at its datagram's last fragment (it crashed on a fragment)."""
    moved = tmp_path / "fragmented.pcap"
    assert fragmented(PCAP, moved, 8) > 300  # every datagram of the capture, in pieces

    def seen(path: Path) -> list[tuple[object, ...]]:
        return [
            (e.src, e.dst, e.pt, e.timestamp, e.t, e.packets, e.code, e.end, e.duration)
            for e in read_events(path, {126})
        ]

    assert seen(moved) == seen(PCAP) and len(seen(PCAP)) == 4


def test_encrypted_reads_no_digits() -> None:
    assert all(e.code is None and e.packets for e in read_events(PCAP, {126}, encrypted=True))


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")
def test_same_as_tshark() -> None:
    argv = ["tshark", "-n", "-r", str(PCAP), "--enable-heuristic", "rtp_udp"]
    argv += ["-o", "rtpevent.event_payload_type_value:126", "-Y", "rtpevent", "-T", "fields"]
    for f in ("frame.number", "rtp.timestamp", "rtpevent.event_id", "rtpevent.end_of_event"):
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    theirs: dict[int, tuple[int, int, bool, int]] = {}
    for no, ts, ev, end in rows:
        first, _, _, n = theirs.get(int(ts), (int(no), int(ev), False, 0))
        theirs[int(ts)] = (
            first,
            int(ev),
            theirs.get(int(ts), (0, 0, False, 0))[2] or end == "1",
            n + 1,
        )
    ours = {
        e.timestamp: (e.first_frame, e.code, e.end, e.packets) for e in read_events(PCAP, {126})
    }
    assert ours == theirs
