"""The analyser's counts on real captures equal what tshark (Debian) reports for the same file.

The captures in tests/data/pcaps/ were made by tests/data/make_pcaps.py from real calls
in a lab. tshark decodes RTP and DTLS inside TURN ChannelData with its heuristics on,
but not STUN inside it: relayed STUN is compared separately, against the raw frames.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from harness.analysis import stun
from harness.analysis.analyzer import analyze_file
from harness.analysis.dtls import HANDSHAKE_TYPES
from harness.analysis.model import Analysis

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
FILES = sorted(PCAPS.glob("*.pcap"))
HEURISTICS = ["--enable-heuristic", "rtp_udp", "--enable-heuristic", "rtp_stun"]
HEURISTICS += ["--enable-heuristic", "dtls_stun"]

pytestmark = pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")


@cache
def tshark(path: Path, display: str, *fields: str) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(path), *HEURISTICS, "-Y", display, "-T", "fields"]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


@cache
def ours(path: Path) -> Analysis:
    return analyze_file(path)


def test_there_are_captures() -> None:
    names = {f.name for f in FILES}
    assert {"aiortc-direct.pcap", "aiortc-relayed.pcap", "aiortc-long.pcap"} <= names
    assert {"sipp-udp.pcap", "sipp-tcp.pcap", "sip-ws.pcap", "janus-dtmf-sip.pcap"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_frame_count(path: Path) -> None:
    assert ours(path).packets == len(tshark(path, "frame", "frame.number"))


def _stun_type(method: str, cls: str) -> int:
    m = next(k for k, v in stun.METHODS.items() if v == method)
    c = stun.CLASSES.index(cls)
    return (m & 0xF) | (m & 0x70) << 1 | (m & 0xF80) << 2 | (c & 1) << 4 | (c & 2) << 7


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_stun_by_method_and_class(path: Path) -> None:
    theirs = Counter(int(r[0], 16) for r in tshark(path, "stun.type", "stun.type"))
    mine = Counter(_stun_type(e.msg.method, e.msg.cls) for e in ours(path).stun if not e.relayed)
    assert mine == theirs


def test_relayed_stun_is_inside_channel_data() -> None:
    """tshark shows ChannelData frames; those whose data starts like STUN are our relayed STUN."""
    path = PCAPS / "aiortc-relayed.pcap"
    rows = tshark(path, "stun.channel", "frame.number", "data.data")
    theirs = {
        int(r[0])
        for r in rows
        if len(r) > 1 and r[1][:2] in ("00", "01") and r[1][8:16] == "2112a442"
    }
    mine = {e.frame for e in ours(path).stun if e.relayed}
    assert mine == theirs and mine


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dtls_handshake_messages(path: Path) -> None:
    theirs = Counter(
        int(t)
        for r in tshark(path, "dtls.handshake.type", "dtls.handshake.type")
        for t in r[0].split(",")
    )
    mine = Counter(
        hs_type
        for e in ours(path).dtls
        for r in e.records
        if not r.encrypted
        for hs in r.handshakes
        for hs_type in [next(k for k, v in _HS.items() if v == hs.type)]
    )
    if path.name == "firefox-datachannel-dtls13.pcap":
        # tshark 4.0 predates DTLS 1.3's unified header (RFC 9147): the datagram with the
        # ServerHello and protected records after it is not DTLS to it (shown as data).
        theirs[2] += 1
    assert mine == theirs


_HS = HANDSHAKE_TYPES


def rtp_per_ssrc(path: Path) -> Counter[int]:
    """tshark's RTP packets per SSRC. Not in ICMP: a port unreachable quotes the RTP packet
    it refuses (a peer that hung up first), and tshark decodes the quoted copy too."""
    rows = tshark(path, "rtp.ssrc and not icmp and not icmpv6", "rtp.ssrc")
    return Counter(int(r[0], 16) for r in rows)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_rtp_packets_per_ssrc(path: Path) -> None:
    theirs = rtp_per_ssrc(path)
    mine: Counter[int] = Counter()
    for s in ours(path).rtp_streams:
        mine[s.ssrc] += s.packets
    assert mine == theirs


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_sip_messages(path: Path) -> None:
    theirs = Counter(r[0] or r[1] for r in tshark(path, "sip", "sip.Method", "sip.Status-Code"))
    mine = Counter(e.msg.method if e.msg.is_request else str(e.msg.status) for e in ours(path).sip)
    assert mine == theirs


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_certificate_fingerprints(path: Path) -> None:
    """tshark's certificate bytes, hashed, give the fingerprints we computed."""
    from harness.analysis.dtls import sha256_fingerprint

    rows = tshark(path, "dtls.handshake.certificate", "dtls.handshake.certificate")
    theirs = {sha256_fingerprint(bytes.fromhex(r[0].split(",")[0].replace(":", ""))) for r in rows}
    mine = {e.certificate_fingerprint for e in ours(path).dtls if e.certificate_fingerprint}
    assert mine == theirs


@pytest.mark.parametrize("version", ["tls12", "tls13"])
def test_sip_over_tls_with_keylog(version: str) -> None:
    """SIP over TLS 1.2 and 1.3 (tests/data/make_tls_pcaps.py) decrypted with its key log:
    the same messages in the same frames as tshark with -o tls.keylog_file."""
    path, keys = PCAPS / f"sip-{version}.pcap", PCAPS / f"sip-{version}.keys"
    argv = ["tshark", "-n", "-r", str(path), "-o", f"tls.keylog_file:{keys}", "-Y", "sip"]
    argv += ["-T", "fields", "-e", "frame.number", "-e", "sip.Method", "-e", "sip.Status-Code"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = [(int(r[0]), r[2] or r[1]) for r in (line.split("\t") for line in out.splitlines())]
    a = analyze_file(path, keys)
    mine = [(e.frame, str(e.msg.status) if e.msg.status else e.msg.method) for e in a.sip]
    assert mine == theirs and len(mine) == 5
    assert {e.transport for e in a.sip} == {"tls"} and not a.skipped
    assert not analyze_file(path).sip  # without the key log: opaque


def test_tls_with_the_wrong_keys_says_so(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.keys"
    text = (PCAPS / "sip-tls13.keys").read_text()
    wrong.write_text(
        "\n".join(line[:-2] + "00" if " " in line else line for line in text.split("\n"))
    )
    a = analyze_file(PCAPS / "sip-tls13.pcap", wrong)
    assert not a.sip and any(k.startswith("tls: decryption failed") for k in a.skipped)
