"""The TCP walk: the compiled segment reader (`_tcpwalk.c`, `TcpStreams._tcp`) against the
Python one (`TcpStreams._tcp_python`).

Whole walks are compared: every flow's counters and kinds, every TCP direction's state at
the end (next sequence number, held bytes, mode, HTTP head, pending segments, gap, whether
it was seen opening), the crash counts, and what `harness analyze --json` prints. On the
captures with TCP (SIP over TCP, Janus' REST API, WebSocket, TLS, STUN over TCP) as they
are, with their segments reordered, repeated, dropped or damaged, and on HTTP and SIP
streams cut at random places.
"""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import framing, jsonout, net, tcpstreams
from harness.analysis.analyzer import Analyzer, analyze_bytes
from harness.analysis.model import Analysis
from harness.analysis.pcapio import ReadStats, read_frames
from harness.analysis.report import summary
from harness.analysis.session import build
from harness.analysis.stun import MAGIC_BYTES
from harness.analysis.tlsdecrypt import read_keylog
from tests.fuzzing import FAST, SLOW, mutate_packet, pcap_image

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = [
    ROOT / "tests" / "data" / "pcaps" / "sipp-tcp.pcap",  # SIP over TCP
    ROOT / "tests" / "data" / "pcaps" / "sip-ws.pcap",  # an upgrade, SIP over WebSocket
    ROOT / "tests" / "data" / "pcaps" / "janus-dtmf-sip.pcap",
    ROOT / "tests" / "data" / "pcaps" / "aiortc-relayed.pcap",  # HTTP
    ROOT / "tests" / "data" / "pcaps" / "sip-tls12.pcap",  # TLS, decrypted with its keys
    ROOT / "benchmarks" / "data" / "janus-sip-relayed.pcap",  # Janus' REST API, long polls
    ROOT / "tests" / "data" / "thirdparty" / "ndpi-stun_tcp_multiple_msgs_same_pkt.pcap",
    ROOT / "tests" / "data" / "thirdparty" / "ndpi-teams-turn.pcap",  # TLS, TURN over TCP
    ROOT / "tests" / "data" / "thirdparty" / "zeek-http-vlan-0.pcap",
]
compiled = pytest.mark.skipif(
    tcpstreams._tcpwalk is None,
    reason="harness/analysis/_tcpwalk.c is not built (pip install -e . builds it)",
)


@contextmanager
def python_walk() -> Iterator[None]:
    """TcpStreams._tcp as the Python version, for the time of the block."""
    real = tcpstreams.TcpStreams.__dict__["_tcp"]
    tcpstreams.TcpStreams._tcp = tcpstreams.TcpStreams._tcp_python
    try:
        yield
    finally:
        tcpstreams.TcpStreams._tcp = real


def walk(data: bytes, keys: dict[tuple[str, bytes], bytes] | None) -> tuple[object, ...]:
    """What one walk leaves: flows, TCP directions, counts, and the printed summary."""
    w = Analyzer(Analysis(Path("x.pcap"), ReadStats()), keys)
    a = w.run(data)
    flows = [(f.key, f.packets, f.bytes, f.first_t, f.last_t, dict(f.kinds)) for f in a.flows]
    dirs: list[tuple[object, ...]] = []
    for key, d in w.tcp.items():
        inner = d.inner
        dirs.append((key, d.next_seq, bytes(d.buf), d.mode, d.head, d.pending, d.gap, d.opened))
        if inner is not None:
            dirs.append((key, bytes(inner.buf), inner.mode, inner.head))
    counts = (dict(a.malformed), dict(a.skipped))
    return flows, dirs, counts, jsonout.dumps(summary(build(a)))


def same(data: bytes, keys: dict[tuple[str, bytes], bytes] | None = None) -> None:
    got = walk(data, keys)
    with python_walk():
        expected = walk(data, keys)
    assert got[:3] == expected[:3]
    assert got[3] == expected[3]


def keys_of(path: Path) -> dict[tuple[str, bytes], bytes] | None:
    keys = path.with_suffix(".keys")
    return read_keylog(keys) if keys.is_file() else None


@compiled
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_captures_walk_the_same(path: Path) -> None:
    same(path.read_bytes(), keys_of(path))


@functools.cache
def tcp_frames(path: Path) -> list[tuple[int, bytes]]:
    """The frames of a capture that decode to TCP segments."""
    out = []
    for _, _, link, f in read_frames(path.read_bytes(), ReadStats()):
        seg = net.decode(link, f)
        if type(seg) is tuple and seg[0] == net.TCP:
            out.append((link, f))
    return out


@compiled
@SLOW
@given(st.data())
def test_reordered_repeated_dropped_damaged_segments(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(CAPTURES))
    frames = list(tcp_frames(path))
    if not frames:
        return
    for _ in range(data.draw(st.integers(0, 30))):
        i = data.draw(st.integers(0, len(frames) - 1))
        op = data.draw(st.integers(0, 4))
        if op == 0 and i + 1 < len(frames):  # out of order
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
        elif op == 1:  # a retransmission, now or later
            frames.insert(data.draw(st.integers(i, len(frames))), frames[i])
        elif op == 2:  # lost
            del frames[i]
        elif op == 3:  # damaged
            edits = [(data.draw(st.integers(0, 4)), data.draw(st.floats(0, 1)), 0x1234)]
            frames[i] = (frames[i][0], mutate_packet(frames[i][1], edits))
        else:  # the same bytes sent twice, the second time cut short
            link, f = frames[i]
            frames.insert(i + 1, (link, f[: data.draw(st.integers(0, len(f)))]))
    if frames:
        same(pcap_image(frames), keys_of(path))


# -- streams cut at random places -----------------------------------------------------------


def frame(sport: int, dport: int, seq: int, flags: int, payload: bytes) -> tuple[int, bytes]:
    """An Ethernet frame of one TCP segment between 10.0.0.1 and 10.0.0.2."""
    src, dst = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")[:: 1 if sport > dport else -1]
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return 1, bytes(12) + b"\x08\x00" + ip + tcp + payload


REQUEST = (
    b"GET /janus/1?maxev=10&rid=%d HTTP/1.1\r\nHost: 10.0.0.2:8088\r\nContent-Length: 0\r\n\r\n"
)
JSEP = (
    b'{"janus": "event", "session_id": 1, "sender": 2, "jsep": {"type": "offer", '
    b'"sdp": "v=0\\r\\no=- 1 1 IN IP4 10.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n'
    b'm=audio 9 UDP/TLS/RTP/SAVPF 111\\r\\nc=IN IP4 0.0.0.0\\r\\n"}}'
)
REPLIES = [
    b'[{"janus": "keepalive"}]',
    b'[{"janus": "event", "session_id": 1, "sender": 2, "plugindata": {"plugin": "x"}}]',
    JSEP,
    b"not json",
    b"",
]
SIP = (
    b"OPTIONS sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK%d\r\n"
    b"Call-ID: c%d\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def reply(body: bytes, chunked: bool) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    if not chunked:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    half = len(body) // 2
    chunks = b"".join(b"%X\r\n%s\r\n" % (len(c), c) for c in (body[:half], body[half:]) if c)
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


def cut(data: st.DataObject, stream: bytes) -> list[bytes]:
    """`stream` in pieces of random sizes (some only a few bytes, some several messages)."""
    out, at = [], 0
    while at < len(stream):
        n = data.draw(st.sampled_from([1, 2, 5, 40, 90, 200, 700, 1400]))
        out.append(stream[at : at + n])
        at += n
    return out


@compiled
@SLOW
@given(st.data())
def test_http_and_sip_streams_cut_anywhere(data: st.DataObject) -> None:
    requests, replies, sips = b"", b"", b""
    for i in range(data.draw(st.integers(1, 8))):
        requests += REQUEST % i
        replies += reply(data.draw(st.sampled_from(REPLIES)), data.draw(st.booleans()))
        sips += SIP % (i, i, i)
    if data.draw(st.booleans()):  # the last reply switches to WebSocket
        replies += b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        replies += b"\x81\x05hello"
    frames = []
    for sport, dport, stream in (
        (40000, 8088, requests),
        (8088, 40000, replies),
        (40001, 5060, sips),
    ):
        seq = data.draw(st.integers(0, 0xFFFFFFFF))
        if data.draw(st.booleans()):  # a SYN, else the capture starts mid-connection
            frames.append(frame(sport, dport, seq, 0x02, b""))
            seq += 1
        for piece in cut(data, stream):
            frames.append(frame(sport, dport, seq & 0xFFFFFFFF, 0x18, piece))
            seq += len(piece)
        frames.append(frame(sport, dport, seq & 0xFFFFFFFF, 0x11, b""))  # FIN
    order = data.draw(st.permutations(range(len(frames)))) if data.draw(st.booleans()) else None
    if order is not None and data.draw(st.booleans()):  # a few swaps, not a shuffle
        order = list(range(len(frames)))
        for _ in range(3):
            i = data.draw(st.integers(0, len(frames) - 2))
            order[i], order[i + 1] = order[i + 1], order[i]
    if order is not None:
        frames = [frames[i] for i in order]
    same(pcap_image(frames))


@compiled
def test_unusual_arguments_go_to_the_python_version() -> None:
    """A segment the compiled reader does not take is handed whole to `_tcp_python`."""
    frames = [frame(40000, 8088, 7, 0x18, REQUEST % 1)]
    w = Analyzer(Analysis(Path("x.pcap"), ReadStats()))
    w.run(pcap_image(frames))
    key = next(iter(w.tcp))
    d = w.tcp[key]
    n = d.flow.packets
    assert d.next_seq is not None
    ahead = (d.next_seq + 100) & 0xFFFFFFFF
    x = bytearray(b"x")  # not bytes: read in Python, here as a segment after a gap
    w._tcp(key, x, ahead, 0x18, 1.0, 2)  # type: ignore[arg-type]  # bytearray on purpose: see x
    w._tcp(key, b"", 1 << 40, 0x11, 1.0, 3)  # no 32-bit sequence number
    assert d.flow.packets == n + 2
    assert d.pending == {ahead: bytearray(b"x")}


@compiled
@pytest.mark.parametrize("path", CAPTURES[:6], ids=lambda p: p.name)
def test_a_dissector_that_raises_leaves_the_same_state(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader of the segment in place that raises: the segment is kept whole, as in Python."""
    calls = [0]

    def flaky(real: Callable[..., None]) -> Callable[..., None]:
        def read(self: Analyzer, *args: object) -> None:
            calls[0] += 1
            if calls[0] % 3 == 0:
                raise ValueError("a dissector bug")
            real(self, *args)

        return read

    monkeypatch.setattr(Analyzer, "_json_body", flaky(Analyzer._json_body))
    monkeypatch.setattr(Analyzer, "_sip_message", flaky(Analyzer._sip_message))
    data, keys = path.read_bytes(), keys_of(path)
    got = walk(data, keys)
    calls[0] = 0
    with python_walk():
        expected = walk(data, keys)
    assert got == expected


def resent_stream(stream: bytes) -> list[tuple[int, bytes]]:
    """`stream` in 300-byte segments, every third lost and sent again 60 bytes longer (a
    retransmission joined with the start of the segment after it, which is waiting)."""
    frames, seq = [frame(40001, 5060, 99, 0x02, b"")], 100
    lost = []
    for n, at in enumerate(range(0, len(stream), 300)):
        if n % 3 == 1:
            lost.append(at)
        else:
            frames.append(frame(40001, 5060, seq + at, 0x18, stream[at : at + 300]))
    for at in lost:
        frames.append(frame(40001, 5060, seq + at, 0x18, stream[at : at + 360]))
    return frames


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")
def test_resent_segments_that_overlap_waiting_ones_as_tshark(tmp_path: Path) -> None:
    """Every SIP message of a stream whose lost segments came back joined with the next
    one: as many as tshark reassembles (out-of-order reassembly on), compiled or not."""
    stream = b"".join(SIP % (i, i, i) for i in range(12))
    image = pcap_image(resent_stream(stream))
    path = tmp_path / "resent.pcap"
    path.write_bytes(image)
    argv = ["tshark", "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE"]
    argv += ["-Y", "sip", "-T", "fields", "-E", "occurrence=a", "-e", "sip.Call-ID"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = [c for line in out.split() for c in line.split(",")]
    assert theirs == [f"c{i}" for i in range(12)]
    a = analyze_bytes(image)
    assert [e.msg.call_id for e in a.sip] == theirs
    same(image)


# -- a capture that joined the connection mid-message ---------------------------------------

SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
MESSAGES = [
    b"INVITE sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK%d\r\n"
    b"Call-ID: m%d\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" + SDP,
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK%d\r\n"
    b"i: m%d\r\nCSeq: 1 INVITE\r\nl: %d\r\n\r\n" + SDP,
    b"NOTIFY sip:a@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK%d\r\n"
    b"Call-ID: m%d\r\nCSeq: 2 NOTIFY\r\nContent-Type: message/sipfrag\r\n"
    b"Content-Length: %d\r\n\r\nSIP/2.0 200 OK\r\n",
    b"OPTIONS sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK%d\r\n"
    b"Call-ID: m%d\r\nCSeq: 3 OPTIONS\r\nContent-Length: %d\r\n\r\n",
]


def sip_message(kind: int, i: int) -> bytes:
    template = MESSAGES[kind]
    body = template.split(b"\r\n\r\n", 1)[1]
    return template.split(b"\r\n\r\n", 1)[0] % (i, i, len(body)) + b"\r\n\r\n" + body


@FAST
@given(st.data())
def test_a_capture_joined_mid_message_reads_from_the_next_one(data: st.DataObject) -> None:
    """SIP over TCP seen from any byte on (no SYN): every message that starts after that
    byte, none before; a sipfrag body's "SIP/2.0 200 OK" is no message start."""
    kinds = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=8))
    msgs = [sip_message(k, i) for i, k in enumerate(kinds)]
    stream = b"".join(msgs)
    starts = [sum(map(len, msgs[:i])) for i in range(len(msgs))]
    at = data.draw(st.integers(0, len(stream) - 1))
    frames, seq = [], 5000
    for piece in cut(data, stream[at:]):
        frames.append(frame(40001, 5060, seq, 0x18, piece))
        seq += len(piece)
    a = analyze_bytes(pcap_image(frames))
    expected = [f"m{i}" for i, s in enumerate(starts) if s >= at]
    assert [e.msg.call_id for e in a.sip] == expected
    assert not a.malformed
    skipped = next((s for s in starts if s >= at), len(stream)) - at
    assert a.skipped.get("tcp-bytes-before-first-frame", 0) == (skipped if expected else 0)
    same(pcap_image(frames))


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")
def test_joined_mid_message_as_tshark(tmp_path: Path) -> None:
    """The first segment is the end of an INVITE, each later one a whole message: the
    messages tshark finds (it reads a message where a segment starts one)."""
    msgs = [sip_message(i % 4, i) for i in range(12)]
    frames, seq = [frame(40001, 5060, 7000, 0x18, msgs[0][200:])], 7000 + len(msgs[0]) - 200
    for m in msgs[1:]:
        frames.append(frame(40001, 5060, seq, 0x18, m))
        seq += len(m)
    image = pcap_image(frames)
    path = tmp_path / "joined.pcap"
    path.write_bytes(image)
    argv = ["tshark", "-n", "-r", str(path), "-Y", "sip", "-T", "fields"]
    argv += ["-E", "occurrence=a", "-e", "sip.Call-ID"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = [c for line in out.split() for c in line.split(",")]
    assert theirs == [f"m{i}" for i in range(1, 12)]
    assert [e.msg.call_id for e in analyze_bytes(image).sip] == theirs


@FAST
@given(st.data())
def test_a_hole_never_filled_reads_on_from_the_next_message(data: st.DataObject) -> None:
    """A segment the capture lost (no resend came): the messages before it and from the
    first start line after it, none joined across it, nothing malformed, each at the frame
    of its last byte (whether the hole was given up in the walk or at its end)."""
    msgs = [sip_message(data.draw(st.integers(0, 3)), i) for i in range(12)]
    stream = b"".join(msgs)
    starts = [sum(map(len, msgs[:i])) for i in range(len(msgs))]
    lost_at = data.draw(st.integers(1, len(stream) - 800))
    lost_end = lost_at + data.draw(st.integers(1, 200))
    frames = [frame(40001, 5060, 4999, 0x02, b"")]
    # then segments of 5 to 60 bytes: more than tcp.MAX_PENDING wait behind the hole, so
    # it is skipped in the walk, or fewer, and it is skipped at the end of the capture
    size = data.draw(st.sampled_from([5, 60]))
    pieces = [(0, stream[:lost_at])]
    pieces += [(at, stream[at : at + size]) for at in range(lost_end, len(stream), size)]
    for at, piece in pieces:
        frames.append(frame(40001, 5060, 5000 + at, 0x18, piece))
    a = analyze_bytes(pcap_image(frames))
    ends = [s + len(m) for s, m in zip(starts, msgs, strict=True)]
    expected = [f"m{i}" for i in range(12) if ends[i] <= lost_at or starts[i] >= lost_end]
    assert [e.msg.call_id for e in a.sip] == expected
    assert not a.malformed and a.skipped["tcp-gaps"] == 1
    # each at the frame that brought its last byte (frame 1 is the SYN)
    frame_of = {e: n for n, (at, p) in enumerate(pieces, 2) for e in range(at + 1, at + len(p) + 1)}
    assert [e.frame for e in a.sip] == [frame_of[ends[int(c[1:])]] for c in expected]
    same(pcap_image(frames))


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Protocol: sip\r\n\r\n",
)


def ws_frame(payload: bytes, mask: bytes, op: int = 1) -> bytes:
    """A final WebSocket frame (RFC 6455 5.2), masked as a browser's."""
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return bytes([0x80 | op]) + size + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


@FAST
@given(st.data())
def test_websocket_after_a_hole_reads_on_from_the_next_frame(data: st.DataObject) -> None:
    """SIP over WebSocket (RFC 7118) from a browser, masked, pings between messages, a
    hole the capture never filled: the messages of the frames wholly before it and of
    those that start after it, none joined across it, nothing malformed (before, the
    reader took a frame's middle for a header and waited for its length to the end)."""
    stream, spans = bytearray(), []
    for i in range(12):
        mask = data.draw(st.binary(min_size=4, max_size=4))
        if data.draw(st.booleans()):
            stream += ws_frame(b"ping", mask, op=9)
        start = len(stream)
        stream += ws_frame(sip_message(data.draw(st.integers(0, 3)), i), mask)
        spans.append((start, len(stream)))
    lost_at = data.draw(st.integers(1, len(stream) - 300))
    lost_end = min(lost_at + data.draw(st.sampled_from([1, 30, 300, 1000])), len(stream) - 1)
    size = data.draw(st.sampled_from([5, 60, 1400]))
    frames = [frame(40001, 80, 999, 0x02, b""), frame(80, 40001, 4999, 0x12, b"")]
    frames += [frame(40001, 80, 1000, 0x18, UPGRADE[0]), frame(80, 40001, 5000, 0x18, UPGRADE[1])]
    base = 1000 + len(UPGRADE[0])
    pieces = [(at, stream[at : min(at + size, lost_at)]) for at in range(0, lost_at, size)]
    pieces += [(at, stream[at : at + size]) for at in range(lost_end, len(stream), size)]
    frames += [frame(40001, 80, base + at, 0x18, bytes(p)) for at, p in pieces]
    a = analyze_bytes(pcap_image(frames))
    expected = [f"m{i}" for i, (s, e) in enumerate(spans) if e <= lost_at or s >= lost_end]
    assert [e.msg.call_id for e in a.sip] == expected
    assert not a.malformed and a.skipped["tcp-gaps"] == 1
    same(pcap_image(frames))


@FAST
@given(st.data())
def test_turn_over_tcp_after_a_hole_reads_on_from_frames_that_chain(data: st.DataObject) -> None:
    """TURN over TCP (RFC 8656 12.5: STUN and padded ChannelData back to back) with a hole
    the capture never filled: every message wholly before it, every message from the first
    STUN message after it on, nothing made up of a frame's middle, and the gap counted as
    a gap, not as broken framing (before, the reader took the bytes after the hole for a
    frame header: `turn-framing` malformed, or a ChannelData frame of whatever length)."""
    stream, spans = bytearray(), []
    for i in range(16):
        if i == 0 or data.draw(st.booleans()):  # a STUN message first (an Allocate, 12.5)
            body = bytes(8)
            frame_ = b"\x00\x01" + len(body).to_bytes(2, "big") + MAGIC_BYTES
            frame_ += i.to_bytes(12, "big") + body
        else:  # an RTP packet on channel 0x4000, padded to four bytes
            rtp = (
                bytes([0x80, 0])
                + i.to_bytes(2, "big")
                + bytes(8)
                + bytes(data.draw(st.integers(1, 40)))
            )
            frame_ = b"\x40\x00" + len(rtp).to_bytes(2, "big") + rtp + bytes(-len(rtp) % 4)
        spans.append((len(stream), len(stream) + len(frame_), frame_[0] < 4, i))
        stream += frame_
    lost_at = data.draw(st.integers(1, len(stream) - 100))
    lost_end = min(lost_at + data.draw(st.sampled_from([1, 30, 300])), len(stream) - 1)
    size = data.draw(st.sampled_from([5, 60, 1400]))
    frames = [frame(40001, 3478, 999, 0x02, b"")]
    pieces = [(at, stream[at : min(at + size, lost_at)]) for at in range(0, lost_at, size)]
    pieces += [(at, stream[at : at + size]) for at in range(lost_end, len(stream), size)]
    frames += [frame(40001, 3478, 1000 + at, 0x18, bytes(p)) for at, p in pieces]
    a = analyze_bytes(pcap_image(frames))
    found = [int.from_bytes(bytes.fromhex(e.msg.txid), "big") for e in a.stun]
    before = [i for s, e, is_stun, i in spans if e <= lost_at and is_stun]
    after = [i for s, e, is_stun, i in spans if s >= lost_end and is_stun]
    assert found[: len(before)] == before and set(found) <= set(before) | set(after)
    first = next((s for s, e, is_stun, i in spans if s >= lost_end and is_stun), len(stream))
    assert found[len(before) :] == [i for s, e, is_stun, i in spans if s >= first and is_stun]
    channels = sum(not is_stun and (e <= lost_at or s >= lost_end) for s, e, is_stun, i in spans)
    assert sum(f.kinds["turn-channel"] for f in a.flows) <= channels
    assert "turn-framing" not in a.malformed and a.skipped["tcp-gaps"] == 1
    same(pcap_image(frames))


def connections(syn: bool, text: bool, count: int = 10, segments: int = 4) -> bytes:
    """`count` connections of random bytes (a database's, say) or of text lines that are
    no SIP or HTTP (SMTP's), `segments` segments each way (benchmarks/bench_analyze.py
    times 500 of them, joined mid-connection)."""
    import random

    rng, frames = random.Random(7), []
    for c in range(count):
        if syn:
            frames += [
                frame(20000 + c, 5432, 999, 0x02, b""),
                frame(5432, 20000 + c, 4999, 0x12, b""),
            ]
        for k in range(segments):
            for sport, dport, seq in ((20000 + c, 5432, 1000), (5432, 20000 + c, 5000)):
                data = rng.randbytes(1400)
                if text:
                    data = b"".join(
                        b"250-%s ok\r\n" % data[i : i + 8].hex().encode() for i in range(0, 1400, 8)
                    )[:1400]
                frames.append(frame(sport, dport, seq + k * 1400, 0x18, data))
    return pcap_image(frames)


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
@pytest.mark.parametrize("syn", [True, False], ids=["seen-opening", "joined"])
def test_a_stream_seen_opening_is_told_by_its_first_bytes(
    syn: bool, text: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream the capture saw open is told at its first byte (framing.first_frame) or
    line (framing.text_start): no search at every offset, which cost 8 ms per binary
    direction (16 s for a capture of 2,000 database connections, tshark 0.3 s) and 2 ms
    per text one. Joined mid-connection, it is searched."""

    searched: list[int] = []

    def spy(real: Callable[..., object]) -> Callable[..., object]:
        def counted(b: bytes, *a: object) -> object:
            searched.append(len(b))
            return real(b, *a)

        return counted

    for name in ("sync", "sync_text"):
        monkeypatch.setattr(framing, name, spy(getattr(framing, name)))
    a = analyze_bytes(connections(syn, text))
    assert len(a.flows) == 20 and not any(f.kinds for f in a.flows)
    assert bool(searched) is not syn
    limit = framing.TEXT_SCAN if text else framing.SCAN
    assert all(n <= limit + 1400 for n in searched)  # given up after that many bytes


#: HAProxy's PROXY protocol v2 header of a TCP over IPv4 connection (PROXY command, 12
#: bytes of addresses and ports), and one with a TLV (PP2_TYPE_AUTHORITY) after them
PROXY_V2 = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([192, 168, 0, 1, 192, 168, 0, 11])
PROXY_V2 += b"\xdc\x04\x13\xc4"
PROXY_V2_TLV = PROXY_V2[:14] + b"\x00\x13" + PROXY_V2[16:] + b"\x02\x00\x04host"


@pytest.mark.parametrize(
    "before",
    [
        b"\r\n\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 5060\r\n",
        PROXY_V2,
        PROXY_V2_TLV,
    ],
    ids=["keepalives", "proxy-v1", "proxy-v2", "proxy-v2-tlv"],
)
@pytest.mark.parametrize("cut", [0, 5, 14, 20])
def test_a_sip_stream_opening_with_keepalives_or_a_proxy_header_is_read(
    before: bytes, cut: int
) -> None:
    """CRLF keep-alives (RFC 5626 4.4.1) or a load balancer's PROXY header (HAProxy's PROXY
    protocol: v1's text line, v2's binary header) before the first request, whole in the
    first segment or cut `cut` bytes in: SIP all the same."""
    stream = before + sip_message(3, 1)
    frames = [frame(40001, 5060, 999, 0x02, b"")]
    pieces = [stream[:cut], stream[cut:]] if cut else [stream]
    seq = 1000
    for piece in pieces:
        frames.append(frame(40001, 5060, seq, 0x18, piece))
        seq += len(piece)
    assert [e.msg.call_id for e in analyze_bytes(pcap_image(frames)).sip] == ["m1"]


def test_proxy_v2_header_lengths() -> None:
    """The header's length from its bytes 14-15; none without the signature or version 2;
    undecided while it is incomplete."""
    assert framing.proxy_v2(PROXY_V2 + b"INVITE") == 28
    assert framing.proxy_v2(PROXY_V2_TLV) == len(PROXY_V2_TLV)
    assert framing.proxy_v2(PROXY_V2_TLV[:-1]) is None
    assert framing.proxy_v2(PROXY_V2[:9]) is None
    assert framing.proxy_v2(b"\r\n\r\nINVITE sip:a SIP/2.0\r\n") == 0
    assert framing.proxy_v2(PROXY_V2[:12] + b"\x11" + PROXY_V2[13:]) == 0  # version 1


@pytest.mark.parametrize("syn", [True, False], ids=["seen-opening", "joined"])
@pytest.mark.parametrize(
    "first",
    [b"POST is a word\r\n\r\n", b"HTTP/1x 200 OK\r\n\r\n", b"OPTIONS sip:a@b SIP/2.0\r\n", b""],
    ids=["method-word", "not-http-1", "sip-options", "none"],
)
def test_a_first_segment_is_told_as_python_tells_it(syn: bool, first: bytes) -> None:
    """The compiled walk tells a direction's first segment by its first bytes only when
    the capture saw it open (framing.text_start, SIP's OPTIONS before HTTP's); joined
    mid-connection, or starting as neither, it is Python's search: the same walk."""
    stream = first + REQUEST % 1 + REQUEST % 2
    frames = [frame(40001, 8088, 999, 0x02, b"")] if syn else []
    frames.append(frame(40001, 8088, 1000, 0x18, stream[:60]))
    frames.append(frame(40001, 8088, 1060, 0x18, stream[60:]))
    same(pcap_image(frames))


def test_directions_opened_by_a_syn_as_python_opens_them() -> None:
    """A SYN and its SYN-ACK open their directions in the compiled walk; a SYN sent again,
    a SYN with data (TCP Fast Open), a direction whose first segment has data: Python's.
    The same walk either way."""
    frames = [
        frame(40001, 8088, 999, 0x02, b""),
        frame(40001, 8088, 999, 0x02, b""),  # sent again
        frame(8088, 40001, 4999, 0x12, b""),
        frame(40001, 8088, 1000, 0x18, REQUEST % 1),
        frame(40002, 8088, 1999, 0x02, REQUEST % 2),  # Fast Open: data on the SYN
        frame(40003, 8088, 3000, 0x18, REQUEST % 3),  # joined: no SYN seen
        frame(8088, 40002, 7999, 0x12, b""),
    ]
    same(pcap_image(frames))
