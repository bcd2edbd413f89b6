"""Malformed, truncated and garbage input never crashes the analyser: it is counted instead.

HARNESS_FUZZ_SCALE=20 multiplies the number of examples for a longer hunt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.analysis import dtls, http, net, rtp, sdp, sdplint, sip, stun
from harness.analysis.analyzer import analyze_bytes
from harness.analysis.report import summary
from harness.analysis.session import build

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
SMALL = (PCAPS / "aiortc-relayed.pcap").read_bytes()
SCALE = float(os.environ.get("HARNESS_FUZZ_SCALE", "1"))  # e.g. 20 for a long hunt
FAST = settings(
    max_examples=int(300 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SLOW = settings(
    max_examples=int(60 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def stun_like() -> st.SearchStrategy[bytes]:
    """Bytes that pass the STUN header test, so the attribute walk gets exercised."""
    return st.builds(
        lambda t, body, tail: (
            t + len(body).to_bytes(2, "big") + stun.MAGIC_BYTES + bytes(12) + body + tail
        ),
        st.binary(min_size=2, max_size=2).map(lambda b: bytes([b[0] & 0x3F, b[1]])),
        st.binary(max_size=120).map(lambda b: b + bytes(-len(b) % 4)),
        st.binary(max_size=8),
    )


@FAST
@given(st.one_of(st.binary(max_size=300), stun_like()))
def test_stun_never_raises(p: bytes) -> None:
    m = stun.parse(p)
    assert m is None or m.method
    stun.check_integrity(p, b"key")
    if stun.is_channel_data(p):
        stun.channel_data(p)


@FAST
@given(st.binary(max_size=400).map(lambda b: bytes([22, 0xFE, 0xFD]) + b))
def test_dtls_never_raises(p: bytes) -> None:
    asm = dtls.CertificateAssembler()
    for r in dtls.parse(p):
        for hs in r.handshakes:
            if hs.type == "Certificate":
                asm.add(hs)


@FAST
@given(st.binary(max_size=300), st.booleans())
def test_rtcp_never_raises(p: bytes, encrypted: bool) -> None:
    rtp.parse_rtcp(bytes([0x81]) + p, encrypted)


@FAST
@given(st.text(max_size=400))
def test_sip_and_sdp_never_raise(text: str) -> None:
    for head in ("INVITE sip:a@b SIP/2.0\r\n", "SIP/2.0 200 OK\r\n", ""):
        m = sip.parse((head + text).encode())
        if m is not None:
            _ = (m.call_id, m.cseq, m.from_tag, m.to_tag, m.branch, m.summary, m.has_sdp)
    sip.split_stream((text + "\r\n\r\n").encode())
    d = sdp.parse("v=0\r\n" + text)
    _ = (d.ice_ufrags, d.fingerprints, d.candidates, d.connection)
    for role in ("offer", "answer"):
        for profile in ("webrtc", "sip"):
            sdplint.lint(d, role, profile, d)


@FAST
@given(st.binary(max_size=300))
def test_http_and_websocket_never_raise(p: bytes) -> None:
    http.split_http(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n" + p)
    http.split_http(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + p)
    http.split_ws(p)
    http.jsep(p)
    http.jsep(b'{"jsep": ' + p + b"}")


@FAST
@given(st.sampled_from([0, 1, 12, 101, 113, 228, 229, 276, 147]), st.binary(max_size=120))
def test_link_decode_never_raises(link: int, frame: bytes) -> None:
    r = net.decode(link, frame)
    assert isinstance(r, (str, tuple))


MAGICS = {bytes.fromhex(m) for m in ("a1b2c3d4", "d4c3b2a1", "a1b23c4d", "4d3cb2a1", "0a0d0d0a")}


@SLOW
@given(st.one_of(st.binary(max_size=2000), st.binary(max_size=2000).map(lambda b: SMALL[:24] + b)))
def test_garbage_files_are_reported(data: bytes) -> None:
    """Not a capture: an error and no packet. A pcap header then garbage: at most one packet
    per 16-byte record header. Never a crash."""
    a = analyze_bytes(data)
    summary(build(a))
    if data[:4] not in MAGICS:
        assert a.read.errors and a.packets == 0, (a.read.errors, a.packets)
    else:
        assert a.packets <= (len(data) - 24) // 16
    assert not [k for k in a.malformed if k.startswith("crash:")], a.malformed


@cache
def pcapng_image() -> bytes:
    """The same capture as pcapng (editcap), or the pcap if editcap is missing."""
    if not shutil.which("editcap"):
        return SMALL
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.pcapng"
        subprocess.run(
            ["editcap", "-F", "pcapng", str(PCAPS / "aiortc-relayed.pcap"), str(out)], check=True
        )
        return out.read_bytes()


@SLOW
@given(st.data(), st.booleans())
def test_damaged_real_capture(data: st.DataObject, ng: bool) -> None:
    """Flip bytes and cut the end of a real capture: still a summary, damage counted."""
    buf = bytearray(pcapng_image() if ng else SMALL)
    for _ in range(data.draw(st.integers(0, 40))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    a = analyze_bytes(bytes(buf[:cut]))
    summary(build(a))
    assert not [k for k in a.malformed if k.startswith("crash:")], a.malformed


def test_truncation_is_counted() -> None:
    a = analyze_bytes(SMALL[: len(SMALL) - 7])
    assert a.read.truncated == 1 and a.read.errors
    assert a.packets > 300
    b = analyze_bytes(b"this is not a capture file at all")
    assert b.packets == 0 and "not a capture file" in b.read.errors[0]


def test_malformed_packets_are_counted() -> None:
    """A capture whose STUN/RTP/DTLS payloads are cut short counts them as malformed."""
    import struct

    frames = []
    for payload in (
        b"\x00\x01\x00\x08" + stun.MAGIC_BYTES + bytes(12) + b"\x00\x06\x00\x09ab",
        b"\x80\x00\x00",
        b"\x16\xfe\xfd" + bytes(8),
    ):
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            28 + len(payload),
            0,
            0,
            64,
            17,
            0,
            bytes([10, 0, 0, 1]),
            bytes([10, 0, 0, 2]),
        )
        udp = struct.pack("!HHHH", 5000, 6000, 8 + len(payload), 0)
        frames.append(bytes(12) + b"\x08\x00" + ip + udp + payload)
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        data += struct.pack("<IIII", i, 0, len(f), len(f)) + f
    a = analyze_bytes(data)
    assert a.packets == 3
    assert a.malformed == {"stun": 1, "rtp": 1, "dtls": 1}
