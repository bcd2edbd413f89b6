"""Link types, pcapng, and the ICE-restart model on captures written by this test.

The committed captures are Ethernet pcap from aiortc calls, which cannot restart ICE
(lab-facts); here a real capture is re-encapsulated (SLL, SLL2, raw IP, BSD loopback,
pcapng via editcap) and a restart is written packet by packet to pin the session model.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis.analyzer import analyze_bytes, analyze_file
from harness.analysis.model import Analysis, Flow
from harness.analysis.report import summary
from harness.analysis.session import build
from harness.analysis.stun import MAGIC_BYTES
from harness.analysis.turnrelay import TurnRelay
from harness.assertions.registry import run_check
from tests.fuzzing import examples

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"


def frames_of(data: bytes) -> list[tuple[float, bytes]]:
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        out.append((sec + usec / 1e6, data[off + 16 : off + 16 + incl]))
        off += 16 + incl
    return out


def write_pcap(link: int, frames: list[tuple[float, bytes]]) -> bytes:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, link))
    for t, f in frames:
        out += struct.pack("<IIII", int(t), round((t % 1) * 1e6) % 1000000, len(f), len(f)) + f
    return bytes(out)


def relink(frame: bytes, link: int) -> bytes | None:
    """An Ethernet frame re-encapsulated for another link type (None: not IP)."""
    ethertype, ip = frame[12:14], frame[14:]
    if ethertype != b"\x08\x00":
        return None
    if link == 113:
        return struct.pack("!HHH8s", 0, 1, 6, frame[6:12]) + ethertype + ip
    if link == 276:
        return ethertype + b"\x00\x00" + struct.pack("!IHBB8s", 2, 1, 0, 6, frame[6:12]) + ip
    if link == 0:
        return struct.pack("<I", 2) + ip
    return ip  # 101, raw IP


def fingerprint(a: Analysis) -> tuple[object, ...]:
    d = summary(build(a))
    return (
        d["stun"],
        [h["messages"] for h in d["dtls"]],
        [(r["ssrc"], r["packets"], r["lost"]) for r in d["rtp"]],
        len(d["sdp"]),
    )


@pytest.mark.parametrize("link", [113, 276, 101, 0])
def test_link_types_give_the_same_analysis(link: int) -> None:
    data = (PCAPS / "aiortc-relayed.pcap").read_bytes()
    base = analyze_bytes(data)
    converted = [(t, g) for t, f in frames_of(data) if (g := relink(f, link)) is not None]
    other = analyze_bytes(write_pcap(link, converted))
    assert other.read.linktypes == {link}
    assert fingerprint(other) == fingerprint(base)


@pytest.mark.skipif(not shutil.which("editcap"), reason="editcap is not installed")
def test_pcapng_gives_the_same_analysis(tmp_path: Path) -> None:
    src = PCAPS / "aiortc-direct.pcap"
    ng = tmp_path / "x.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(src), str(ng)], check=True, timeout=30)
    a, b = analyze_file(src), analyze_file(ng)
    assert b.read.format == "pcapng" and b.packets == a.packets
    assert fingerprint(a) == fingerprint(b)
    assert abs(a.rtp_streams[0].first_t - b.rtp_streams[0].first_t) < 1e-6


def test_unknown_link_type_is_counted() -> None:
    data = (PCAPS / "sipp-udp.pcap").read_bytes()
    a = analyze_bytes(data[:20] + struct.pack("<I", 147) + data[24:])
    assert a.skipped == {"unknown-link": a.packets} and a.packets > 0


# -- an ICE restart, written packet by packet -------------------------------------------------

A, B = bytes([198, 18, 0, 10]), bytes([198, 18, 0, 11])


def udp(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, 17, 0, src, dst)
    return (
        bytes(12)
        + b"\x08\x00"
        + ip
        + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
        + payload
    )


def binding(cls: int, txid: bytes, username: str = "", use: bool = False) -> bytes:
    attrs = b""
    if username:
        u = username.encode()
        attrs += struct.pack("!HH", 6, len(u)) + u + bytes(-len(u) % 4)
    if use:
        attrs += struct.pack("!HH", 0x25, 0)
    return struct.pack("!HH", 0x0001 | cls, len(attrs)) + MAGIC_BYTES + txid + attrs


def rtp(ssrc: int, seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes(160)


def sip(first: str, to_tag: str, cseq: str, ufrag: str) -> bytes:
    body = f"v=0\r\no=- 1 1 IN IP4 198.18.0.10\r\ns=-\r\nc=IN IP4 198.18.0.10\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
    to = "<sip:b@x>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{first}\r\nVia: SIP/2.0/UDP 198.18.0.10:5060;branch=z9hG4bK{cseq.replace(' ', '')}\r\n"
        f"From: <sip:a@x>;tag=fa\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: {cseq}\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode()


def restart_capture() -> bytes:
    f: list[tuple[float, bytes]] = []
    f.append((0.00, udp(A, 5060, B, 5060, sip("INVITE sip:b@x SIP/2.0", "", "1 INVITE", "a1"))))
    f.append((0.01, udp(B, 5060, A, 5060, sip("SIP/2.0 200 OK", "tb", "1 INVITE", "b1"))))
    f.append((0.05, udp(A, 5000, B, 6000, binding(0x000, b"t" * 12, "b1:a1", use=True))))
    f.append((0.06, udp(B, 6000, A, 5000, binding(0x100, b"t" * 12))))
    for i in range(200):  # 0.1 .. 4.08 s
        f.append((0.1 + i * 0.02, udp(A, 5000, B, 6000, rtp(0xA, i))))
        f.append((0.1 + i * 0.02, udp(B, 6000, A, 5000, rtp(0xB, i))))
    f.append((4.90, udp(A, 5060, B, 5060, sip("INVITE sip:b@x SIP/2.0", "tb", "2 INVITE", "a2"))))
    f.append((4.91, udp(B, 5060, A, 5060, sip("SIP/2.0 200 OK", "tb", "2 INVITE", "b2"))))
    f.append((5.00, udp(A, 5002, B, 6000, binding(0x000, b"u" * 12, "b2:a2"))))
    f.append((5.01, udp(B, 6000, A, 5002, binding(0x110, b"u" * 12))))  # error, e.g. 401
    f.append((5.20, udp(A, 5002, B, 6000, binding(0x000, b"v" * 12, "b2:a2", use=True))))
    f.append((5.21, udp(B, 6000, A, 5002, binding(0x100, b"v" * 12))))
    for i in range(200, 260):
        f.append((5.30 + (i - 200) * 0.02, udp(A, 5002, B, 6000, rtp(0xA, i))))
        f.append((5.30 + (i - 200) * 0.02, udp(B, 6000, A, 5002, rtp(0xB, i))))
    return write_pcap(1, [(1000.0 + t, fr) for t, fr in f])


def test_ice_restart_model() -> None:
    s = build(analyze_bytes(restart_capture()))
    assert [g.ufrags for g in s.generations] == [("a1", "b1"), ("a2", "b2")]
    (r,) = s.restarts
    assert r.started[1] == pytest.approx(4.90) and r.started[0] == 405  # the re-INVITE
    assert r.time_to_connect == pytest.approx(0.31)
    assert r.time_to_media == pytest.approx(0.40)
    g2 = s.generations[1]
    assert g2.selected is not None and g2.selected.nominated and g2.selected.errors
    assert s.dialogs[0].reinvites[0].frame == 405
    assert run_check("ice_restarts", s, {"count": 1}).passed
    assert run_check("ice_reconnect_time", s, {"max_s": 0.5}).passed
    slow = run_check("ice_reconnect_time", s, {"max_s": 0.2})
    assert not slow.passed and "took 0.310s" in slow.evidence[0]
    assert run_check("sip_reinvite", s, {"count": 1}).passed
    gap = run_check("max_media_gap", s, {"max_s": 0.5})
    assert not gap.passed and "1220.0 ms" in gap.message
    assert (
        "moved from udp 198.18.0.10:5000 > 198.18.0.11:6000" in gap.evidence[0]
        or "moved" in gap.evidence[1]
    )
    assert run_check("stun_errors", s, {"method": "Binding", "count": 1}).passed


# -- TURN Send/Data indications (aiortc's captures use ChannelData only) ----------------------

C, S, PEER = bytes([192, 168, 1, 10]), bytes([198, 18, 0, 12]), bytes([198, 18, 0, 11])


def xor_addr(ip: bytes, port: int) -> bytes:
    return struct.pack("!BBH", 0, 1, port ^ 0x2112) + bytes(
        a ^ b for a, b in zip(ip, MAGIC_BYTES, strict=True)
    )


def stun_msg(mtype: int, txid: bytes, attrs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack("!HH", t, len(v)) + v + bytes(-len(v) % 4) for t, v in attrs)
    return struct.pack("!HH", mtype, len(body)) + MAGIC_BYTES + txid + body


def test_turn_indications_are_unwrapped() -> None:
    check = binding(0x000, b"c" * 12, "b1:a1", use=True)
    answer = binding(0x100, b"c" * 12)
    f = [
        (0.0, udp(C, 5000, S, 3478, stun_msg(0x0003, b"a" * 12, [(0x19, b"\x11\x00\x00\x00")]))),
        (0.1, udp(S, 3478, C, 5000, stun_msg(0x0103, b"a" * 12, [(0x16, xor_addr(S, 50000))]))),
        (
            0.2,
            udp(
                C,
                5000,
                S,
                3478,
                stun_msg(0x0016, b"s" * 12, [(0x12, xor_addr(PEER, 6000)), (0x13, check)]),
            ),
        ),
        (
            0.3,
            udp(
                S,
                3478,
                C,
                5000,
                stun_msg(0x0017, b"d" * 12, [(0x12, xor_addr(PEER, 6000)), (0x13, answer)]),
            ),
        ),
        (
            0.4,
            udp(
                C,
                5000,
                S,
                3478,
                stun_msg(0x0016, b"t" * 12, [(0x12, xor_addr(PEER, 6000)), (0x13, rtp(7, 1))]),
            ),
        ),
    ]
    a = analyze_bytes(write_pcap(1, f))
    inner = {fl.label: dict(fl.kinds) for fl in a.flows if fl.via}
    assert inner == {
        "udp 198.18.0.12:50000 > 198.18.0.11:6000 (in udp 192.168.1.10:5000 > 198.18.0.12:3478)": {
            "stun": 1,
            "rtp": 1,
        },
        "udp 198.18.0.11:6000 > 198.18.0.12:50000 (in udp 198.18.0.12:3478 > 192.168.1.10:5000)": {
            "stun": 1
        },
    }
    s = build(a)
    (pair,) = s.generations[0].pairs
    assert pair.kind == "relay" and pair.successes == 1 and pair.nominated
    assert [e.msg.kind for e in a.stun if not e.relayed] == [
        "Allocate request",
        "Allocate success",
        "Send indication",
        "Data indication",
        "Send indication",
    ]


def channel_data(ch: int, payload: bytes) -> bytes:
    return struct.pack("!HH", ch, len(payload)) + payload + bytes(-len(payload) % 4)


def turn_channel_frames() -> list[bytes]:
    """ChannelData before and after its binding, both ways, a rebinding, a new allocation,
    and a Send indication to the same peer: what the kept relayed flows must follow."""
    up = lambda p: udp(C, 5000, S, 3478, p)  # noqa: E731
    down = lambda p: udp(S, 3478, C, 5000, p)  # noqa: E731
    bind = lambda ch, ip, port, tx: up(  # noqa: E731
        stun_msg(0x0009, tx, [(0x0C, struct.pack("!HH", ch, 0)), (0x12, xor_addr(ip, port))])
    )
    other = bytes([198, 18, 0, 13])
    return [
        up(channel_data(0x4000, binding(0x000, b"x" * 12, "b1:a1"))),
        down(channel_data(0x4000, b"\x17\xfe\xfd" + bytes(20))),
        up(stun_msg(0x0003, b"a" * 12, [(0x19, b"\x11\x00\x00\x00")])),
        down(stun_msg(0x0103, b"a" * 12, [(0x16, xor_addr(S, 50000))])),
        up(channel_data(0x4000, binding(0x000, b"y" * 12, "b1:a1"))),
        bind(0x4000, PEER, 6000, b"b" * 12),
        up(channel_data(0x4000, binding(0x000, b"z" * 12, "b1:a1"))),
        down(channel_data(0x4000, binding(0x100, b"z" * 12))),
        up(channel_data(0x4001, b"hello")),
        up(stun_msg(0x0016, b"s" * 12, [(0x12, xor_addr(PEER, 6000)), (0x13, b"ping")])),
        down(channel_data(0x4000, b"\x17\xfe\xfd" + bytes(20))),
        bind(0x4001, other, 7000, b"c" * 12),
        up(channel_data(0x4001, b"hello")),
        bind(0x4000, other, 7000, b"d" * 12),
        up(channel_data(0x4000, binding(0x000, b"w" * 12, "b1:a1"))),
        down(stun_msg(0x0103, b"e" * 12, [(0x16, xor_addr(S, 50002))])),
        down(channel_data(0x4000, b"\x17\xfe\xfd" + bytes(20))),
        up(channel_data(0x4000, b"hello")),
    ]


def resolving_every_message(
    self: TurnRelay, flow: Flow, key: bytes, p: bytes, t: float, no: int
) -> None:
    """TurnRelay._channel_data before relayed flows were kept per channel."""
    inner = self._channel_flow(flow, key, p[0] << 8 | p[1], t, no, 1)
    if inner is not None:
        self._udp(inner, inner.key, p[4 : 4 + (p[2] << 8 | p[3])], t, no)


def turn_view(a: Analysis) -> tuple[object, ...]:
    flows = [(f.label, f.packets, f.bytes, f.first_frame, dict(f.kinds)) for f in a.flows]
    return flows, dict(a.malformed), [(e.frame, e.flow, e.msg.kind) for e in a.stun]


@examples(200)
@given(st.permutations(range(len(turn_channel_frames()))), st.integers(1, 3))
def test_kept_channel_flows_are_the_resolved_ones(order: list[int], repeat: int) -> None:
    frames = turn_channel_frames()
    image = write_pcap(1, [(i * 0.01, frames[j]) for i, j in enumerate(order * repeat)])
    kept = analyze_bytes(image)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TurnRelay, "_channel_data", resolving_every_message)
        resolved = analyze_bytes(image)
    assert turn_view(kept) == turn_view(resolved)


def test_channel_data_follows_bindings() -> None:
    frames = turn_channel_frames()
    a = analyze_bytes(write_pcap(1, [(i * 0.01, f) for i, f in enumerate(frames)]))
    assert a.malformed["turn-channel-unbound"] == 4  # the first three on 0x4000, one on 0x4001
    relayed = {f.label.split(" (in")[0] for f in a.flows if f.via}
    assert "udp 198.18.0.12:50000 > 198.18.0.11:6000" in relayed  # bound
    assert "udp 198.18.0.12:50000 > 198.18.0.13:7000" in relayed  # rebound to another peer
    assert "udp 198.18.0.13:7000 > 198.18.0.12:50002" in relayed  # a new relayed address
