"""Malformed, truncated and garbage input never crashes the analyser: it is counted instead.

HARNESS_FUZZ_SCALE=20 multiplies the number of examples for a longer hunt. The newer
parsers are covered too: IP fragment reassembly (any order, duplicates, garbage, bounded
state), TURN-TCP / RFC 4571 framing (random bytes, streams cut mid-connection), classic
STUN, tunnels (IP in IP, GRE, ERSPAN, VXLAN), and damaged captures that cross them.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import (
    dtls,
    framing,
    http,
    ipfrag,
    net,
    pcapio,
    rtp,
    sdp,
    sdplint,
    sip,
    stun,
    tlsdecrypt,
)
from harness.analysis.analyzer import analyze_bytes
from harness.analysis.report import summary
from harness.analysis.session import build
from tests.fuzzing import FAST, SLOW, pcap_image, sip_call_pcap
from tests.relink import TUNNELS, tunneled

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
SMALL = (PCAPS / "aiortc-relayed.pcap").read_bytes()


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
@given(
    st.sampled_from([0, 1, 9, 12, 50, 101, 113, 228, 229, 239, 258, 276, 147]),
    st.binary(max_size=120),
)
def test_link_decode_never_raises(link: int, frame: bytes) -> None:
    r = net.decode(link, frame)
    assert isinstance(r, (str, tuple, ipfrag.Fragment))


#: the first frames of a call in each tunnel tests/relink.py makes (GRE, ERSPAN, VXLAN, ...)
TUNNELED = [
    frame
    for kind in TUNNELS
    for _, _, _, frame in list(pcapio.read_frames(tunneled(SMALL, kind), pcapio.ReadStats()))[:40]
]


@FAST
@given(
    st.sampled_from(TUNNELED),
    st.lists(st.tuples(st.integers(14, 110), st.integers(0, 255)), max_size=6),
    st.integers(0, 120),
)
def test_tunnel_decode_never_raises(frame: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    """Tunnel headers (IP in IP, GRE and its optional fields, ERSPAN, VXLAN) damaged, and
    frames cut short: an answer, never an exception."""
    f = bytearray(frame)
    for at, value in edits:
        if at < len(f):
            f[at] = value
    r = net.decode(1, bytes(f[: max(len(f) - cut, 0)]))
    assert isinstance(r, (str, tuple, ipfrag.Fragment))


def test_tunnels_inside_tunnels_stop() -> None:
    """IP in IP in IP ...: read TUNNELS levels deep, then named, never a recursion error."""
    inner = bytes.fromhex("4500001c0000000040110000c6120001c6120002") + bytes(8)
    for _ in range(400):
        inner = (
            struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(inner), 0, 0, 64, 4, 0) + bytes(8) + inner
        )
    assert net.decode(101, inner) == "tunnel-depth"
    assert type(net.decode(101, inner[(400 - net.TUNNELS) * 20 :])) is tuple


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


@FAST
@given(st.binary(min_size=1, max_size=3000), st.data())
def test_fragments_reassemble_in_any_order(datagram: bytes, data: st.DataObject) -> None:
    """Cut at 8-byte boundaries, shuffled, some sent twice: the datagram comes back once."""
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, (len(datagram) - 1) // 8)), max_size=6)))
    bounds = [0, *[c * 8 for c in cuts if c * 8 < len(datagram)], len(datagram)]
    frags = [
        ipfrag.Fragment((b"ab", 17, 7), lo, hi < len(datagram), datagram[lo:hi])
        for lo, hi in zip(bounds, bounds[1:], strict=False)
        if hi > lo
    ]
    frags += data.draw(st.lists(st.sampled_from(frags), max_size=3))  # duplicates
    order = data.draw(st.permutations(frags))
    r = ipfrag.Reassembler()
    out = [w for f in order if (w := r.feed(f, 0.0)) is not None]
    assert out[:1] == [datagram]
    r.finish()


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 70000), st.booleans(), st.binary(max_size=64)),
        max_size=40,
    ),
    st.floats(0, 100),
)
def test_fragment_garbage_is_bounded(
    frags: list[tuple[int, int, bool, bytes]], step: float
) -> None:
    r = ipfrag.Reassembler()
    for i, (ident, off, more, payload) in enumerate(frags):
        r.feed(ipfrag.Fragment((b"x", 17, ident), off, more, payload), i * step)
        assert len(r.pending) <= ipfrag.MAX_PENDING
    r.finish()
    assert not r.pending


def turn_frame() -> st.SearchStrategy[bytes]:
    """A STUN message or a padded ChannelData message, as TURN over TCP carries them."""
    msg = st.builds(
        lambda t, body: (
            bytes([t & 0x3F, 1])
            + len(body).to_bytes(2, "big")
            + stun.MAGIC_BYTES
            + bytes(12)
            + body
        ),
        st.integers(0, 255),
        st.binary(max_size=40).map(lambda b: b + bytes(-len(b) % 4)),
    )
    chan = st.builds(
        lambda c, data: (
            bytes([0x40 | (c & 0xF), 1])
            + len(data).to_bytes(2, "big")
            + data
            + bytes(-len(data) % 4)
        ),
        st.integers(0, 255),
        st.binary(min_size=1, max_size=60),
    )
    return st.one_of(msg, chan)


@FAST
@given(st.lists(turn_frame(), min_size=4, max_size=12), st.data())
def test_turn_tcp_framing_from_mid_connection(frames: list[bytes], data: st.DataObject) -> None:
    """A stream cut anywhere resynchronises on a frame boundary and reads the frames after it."""
    stream = b"".join(frames)
    cut = data.draw(st.integers(0, len(frames[0])))
    found = framing.sync(stream[cut:])
    if found is None:
        return
    mode, skip = found
    got, used = framing.split(bytearray(stream[cut + skip :]), mode)
    if mode == framing.TURN and got and got[-1]:
        tail = b"".join(got)
        assert stream.endswith(tail) or tail in stream


def sync_every_offset(b: bytes) -> tuple[str, int] | None:
    """framing.sync as it was: every offset tried, the oracle of the one that tries only
    the offsets where a frame can start."""
    if len(b) < 4:
        return None
    limit = min(len(b) - 4, framing.SCAN)
    stun_at, chains, full_chain = framing._stun_at, framing._chains, framing._full_chain
    for i in range(limit + 1):
        if stun_at(b, i) and chains(b, i, framing.turn_frame):
            return framing.TURN, i
        if i + 22 <= len(b) and stun_at(b, i + 2) and (b[i] << 8 | b[i + 1]) == stun_at(b, i + 2):
            return framing.RFC4571, i
    for i in range(limit + 1):
        turn = framing.turn_frame
        if 0x40 <= b[i] <= 0x4F and chains(b, i, turn) and full_chain(b, i, turn):
            return framing.TURN, i
        if full_chain(b, i, framing.rfc4571_frame):
            return framing.RFC4571, i
    return None


def _rfc4571(first: bytes, body: bytes) -> bytes:
    return len(first + body).to_bytes(2, "big") + first + body


def _stun(body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return b"\x00\x01" + len(body).to_bytes(2, "big") + stun.MAGIC_BYTES + bytes(12) + body


_BODY = st.binary(min_size=2, max_size=40) | st.binary(min_size=250, max_size=700)
_MEDIA = st.builds(_rfc4571, st.sampled_from([b"\x17\xfe", b"\x80\x00", b"\x90\x60"]), _BODY)
_CHANNEL = st.builds(
    lambda c, d: bytes([0x40 | c, 0]) + len(d).to_bytes(2, "big") + d + bytes(-len(d) % 4),
    st.integers(0, 15),
    _BODY,
)
#: streams of one framing or mixed, with and without STUN (a cookie anchors a frame; without
#: one, only chains of complete frames do), after junk: where sync looks differs in each
STREAMS = st.one_of(
    st.lists(_MEDIA, min_size=1, max_size=6),
    st.lists(_CHANNEL, min_size=1, max_size=6),
    st.lists(_MEDIA | st.builds(lambda b: _rfc4571(b"", _stun(b)), _BODY), min_size=1, max_size=6),
    st.lists(_CHANNEL | st.builds(_stun, _BODY) | st.just(stun.MAGIC_BYTES), max_size=8),
    st.lists(turn_frame() | _MEDIA | st.binary(max_size=30), max_size=10),
).map(b"".join)


@FAST
@given(st.binary(max_size=40), STREAMS, st.integers(0, 40))
def test_sync_tries_only_offsets_where_frames_can_start(
    junk: bytes, stream: bytes, cut: int
) -> None:
    b = junk + stream[cut:]
    expected = sync_every_offset(b)
    assert framing.sync_python(b) == expected
    assert framing.sync(b) == expected  # compiled, when built
    assert framing.sync(bytearray(b)) == expected


def test_compiled_sync_answers_as_python_for_every_first_byte() -> None:
    """Three frames of each first byte (RFC 4571 type byte, ChannelData channel byte),
    STUN framed by RFC 4571, after 0 to 3 bytes of junk or next to framing.SCAN, the end
    cut by 0 to 3 bytes: `_framesync.c` answers as `sync_python` at every boundary."""
    stuns = [_rfc4571(b"", _stun(bytes(n))) for n in (0, 4)]
    for t in range(256):
        for body in (b"", bytes(1), bytes(9)):
            rfc = _rfc4571(bytes([t]), body)
            chan = bytes([t, 0]) + len(body).to_bytes(2, "big") + body + bytes(-len(body) % 4)
            for frames in (rfc * 3, chan * 3, rfc + stuns[t % 2] + rfc):
                for junk in (0, 1, 2, 3, 4093, 4096, 4099):
                    for cut in range(4):
                        b = (b"\xff" * junk + frames)[: junk + len(frames) - cut]
                        assert framing.sync(b) == framing.sync_python(b), (t, body, junk, cut)


#: a frame of either framing with any first byte (so every type-byte range is crossed)
_ANY_FRAME = st.one_of(
    st.builds(
        lambda t, d: _rfc4571(bytes([t]), d),
        st.sampled_from([0, 3, 4, 19, 20, 63, 64, 127, 128, 191, 192, 255]) | st.integers(0, 255),
        st.binary(max_size=24),
    ),
    st.builds(
        lambda c, d: bytes([c]) + b"\0" + len(d).to_bytes(2, "big") + d + bytes(-len(d) % 4),
        st.sampled_from([0x3F, 0x40, 0x4F, 0x50]),
        st.binary(max_size=24),
    ),
    st.builds(_stun, st.binary(max_size=24)),
)


@FAST
@given(
    st.integers(0, 2**32),
    st.sampled_from([0, 3, 40, 4060, 4090, 4100]),
    st.lists(_ANY_FRAME, max_size=8).map(b"".join)
    | st.lists(_ANY_FRAME | st.binary(max_size=6), max_size=12).map(b"".join),
    st.integers(0, 30),
)
def test_compiled_sync_answers_as_python(seed: int, junk: int, stream: bytes, cut: int) -> None:
    """Random bytes (a candidate offset every 40 bytes or so, up to and across
    framing.SCAN), then frames of any type byte, the end cut anywhere: the same answer
    from `_framesync.c` as from `sync_python`."""
    import random

    b = random.Random(seed).randbytes(junk) + stream
    b = b[: max(0, len(b) - cut)]
    assert framing.sync(b) == framing.sync_python(b)


@FAST
@given(st.binary(max_size=600))
def test_tcp_framing_never_raises(b: bytes) -> None:
    found = framing.sync(b)
    assert found == framing.sync_python(b)  # compiled, when built: the same answer
    for mode in (framing.TURN, framing.RFC4571):
        frames, used = framing.split(bytearray(b), mode)
        assert 0 <= used <= len(b)
    if found:
        assert 0 <= found[1] <= len(b)
    first = framing.first_frame(b)
    assert first in (None, "other", framing.TURN, framing.RFC4571)
    proxy = framing.proxy_v2(framing.PROXY_V2 + b)  # a PROXY v2 header, whole or cut
    assert proxy in (None, 0) or 16 <= proxy <= len(b) + 12
    assert first is not None or len(b) < framing.SCAN


#: pieces of SIP and HTTP heads, for text that is nearly a message
TEXT_PIECES = st.sampled_from(
    [b"\r\n", b"\r\n\r\n", b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"GET / ",
     b"HTTP/1.1 200 OK\r\n", b"Call-ID: x\r\n", b"i: y\r\n", b"CSeq: 1 INVITE\r\n", b" ",
     b"Content-Length: 3\r\n", b"abc", b"\n", b"\x00", b"\xc3\xa9"]
)  # fmt: skip


@FAST
@given(st.lists(TEXT_PIECES | st.binary(max_size=8), max_size=30).map(b"".join))
def test_tcp_text_sync_never_raises(b: bytes) -> None:
    """A start found is a start line of a complete head, at 0 or after a line end (SIP)."""
    mode, at = framing.sync_text(bytearray(b))
    assert 0 <= at <= len(b)
    if mode:
        assert mode in ("sip", "http") and at < len(b)
        assert b.find(b"\r\n\r\n", at) >= 0
        assert mode == "http" or at == 0 or b[at - 1] == 0x0A


#: whole heads, so that the stream holds a start after other text
HEADS = st.sampled_from(
    [b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", b"POST /janus HTTP/1.1\r\n\r\n",
     b"\nINVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
     b"\nSIP/2.0 180 Ringing\r\ni: y\r\nCSeq: 1 INVITE\r\n\r\n"]
)  # fmt: skip
TEXT = st.lists(TEXT_PIECES | st.binary(max_size=8), max_size=30).map(b"".join)


@FAST
@given(st.lists(TEXT | HEADS, max_size=6).map(b"".join), st.integers(0, 40))
def test_tcp_start_lines_found_as_the_regex_finds_them(b: bytes, pos: int) -> None:
    """Start lines looked for only where "SIP/2.0" or "HTTP/1." is: the same matches as
    the regex run from every byte (the oracle)."""
    spans = [m.span() for m in framing._starts(b, pos, len(b))]
    assert spans == [m.span() for m in framing._START.finditer(b, pos, len(b))]


@FAST
@given(
    TEXT | st.tuples(TEXT, HEADS, TEXT).map(b"".join),
    st.lists(st.integers(1, 24), max_size=16),
)
def test_tcp_text_sync_searched_on_finds_what_a_whole_search_finds(
    b: bytes, cuts: list[int]
) -> None:
    """The stream arriving in pieces, each search going on from where the last one left
    off: the same start as one search of the whole stream from its first byte (the
    oracle), at the first piece after which that one finds it."""
    got, at, end = bytearray(), 0, 0
    for n in [*cuts, len(b)]:
        end = min(len(b), end + n)
        got[:] = b[:end]
        oracle = framing.sync_text(got)
        mode, at = framing.sync_text(got, at)
        assert (mode, at if mode else None) == (oracle[0], oracle[1] if oracle[0] else None)
        if mode:
            break


@FAST
@given(
    st.lists(
        TEXT_PIECES | st.binary(max_size=8) | st.sampled_from([b"\x81", b"\x82", b"\x81\x7e"]),
        max_size=30,
    ).map(b"".join)
)
def test_websocket_sync_never_raises(b: bytes) -> None:
    """A frame found after a gap is whole and carries a SIP head or JSON."""
    at, found = framing.sync_ws(bytearray(b))
    assert 0 <= at <= len(b)
    if found:
        frames, end = http.split_ws(b, at)
        assert frames and frames[0][0] in (1, 2) and end <= len(b)
        payload = frames[0][1]
        assert (payload.startswith(sip.STARTS) and b"\r\n\r\n" in payload) or http.is_json(payload)


def test_websocket_sync_is_not_held_by_a_frame_that_never_ends() -> None:
    """Bytes after a gap that read as the start of a long JSON frame do not hold the search
    while a whole frame with a SIP message follows (it would lie inside the other)."""
    sip_ = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
    real = bytes([0x81, len(sip_)]) + sip_
    junk = bytes([0x81, 126, 0x10, 0x00]) + b'{"a'
    assert framing.sync_ws(junk + b"xyz" + real) == (len(junk) + 3, True)
    assert framing.sync_ws(junk + b"xyz") == (0, False)  # alone, it may still be one


@FAST
@given(st.binary(max_size=200))
def test_classic_stun_never_raises(b: bytes) -> None:
    for head in (b"", b"\x00\x01" + len(b).to_bytes(2, "big") + bytes(16)):
        m = stun.parse_classic(head + b)
        assert m is None or (m.classic and m.method)


TLS13 = (PCAPS / "sip-tls13.pcap").read_bytes()
TLS_KEYS = tlsdecrypt.read_keylog(PCAPS / "sip-tls13.keys")


@FAST
@given(
    st.lists(st.tuples(st.sampled_from([20, 21, 22, 23, 24]), st.binary(max_size=80)), max_size=8),
    st.integers(0, 3000),
    st.binary(max_size=40),
)
def test_tls_records_never_raise(records: list[tuple[int, bytes]], lost: int, junk: bytes) -> None:
    """Random records, a ClientHello/ServerHello-shaped first one included, with real keys;
    and after a capture gap of `lost` bytes, with `junk` (a record's lost head) before them."""
    conn = tlsdecrypt.TlsConnection(TLS_KEYS)
    for key in (b"client", b"server"):
        buf = bytearray(junk if lost else b"")
        for rtype, body in records:
            buf += bytes([rtype, 3, 3]) + len(body).to_bytes(2, "big") + body
        if lost:
            conn.missed(key, lost)
        out, used, skipped = conn.records(key, buf)
        assert skipped <= used <= len(buf) and all(isinstance(p, bytes) for _, p in out)


@SLOW
@given(st.data())
def test_damaged_tls_capture_with_keys(data: st.DataObject) -> None:
    buf = bytearray(TLS13)
    for _ in range(data.draw(st.integers(1, 30))):
        buf[data.draw(st.integers(24, len(buf) - 1))] = data.draw(st.integers(0, 255))
    a = analyze_bytes(bytes(buf), keylog=PCAPS / "sip-tls13.keys")
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


#: captures whose walk crosses the newer parsers: IP fragments, TURN over TCP, RFC 4571
FRAGMENTED = (PCAPS / "sipp-udp-fragmented.pcap").read_bytes()
TURN_TCP = (PCAPS.parent / "thirdparty" / "ndpi-stun_dtls_rtp.pcapng").read_bytes()
RFC4571 = (PCAPS.parent / "thirdparty" / "ndpi-rtp.pcapng").read_bytes()


@SLOW
@given(st.data(), st.sampled_from(["pcap", "pcapng", "fragmented", "turn-tcp", "rfc4571"]))
def test_damaged_real_capture(data: st.DataObject, which: str) -> None:
    """Flip bytes and cut the end of a real capture: still a summary, damage counted."""
    images = {"pcap": SMALL, "fragmented": FRAGMENTED, "turn-tcp": TURN_TCP, "rfc4571": RFC4571}
    buf = bytearray(pcapng_image() if which == "pcapng" else images[which])
    for _ in range(data.draw(st.integers(0, 40))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    a = analyze_bytes(bytes(buf[:cut]))
    summary(build(a))
    assert not [k for k in a.malformed if k.startswith("crash:")], a.malformed


@SLOW
@given(st.data(), st.sampled_from("<>"))
def test_compiled_pcap_walk_matches_python(data: st.DataObject, endian: str) -> None:
    """The C record walk (pcapio._pcapwalk) and the Python loop agree on damaged files."""
    if pcapio._pcapwalk is None:
        pytest.skip("harness/analysis/_pcapwalk.c is not built (pip install -e . builds it)")
    image = SMALL if endian == "<" else _big_endian(SMALL)
    buf = bytearray(image[: data.draw(st.integers(0, len(image)))])
    for _ in range(data.draw(st.integers(0, 20))):
        if len(buf) > 24:
            buf[data.draw(st.integers(24, len(buf) - 1))] = data.draw(st.integers(0, 255))
    if len(buf) < 24:
        return
    raw = bytes(buf)
    scale = data.draw(st.sampled_from([1e-6, 1e-9]))
    starts, lengths, times, end, broke = pcapio._pcapwalk.walk(
        raw, endian == ">", pcapio.MAX_FRAME, scale
    )
    offs, lens, py_times, py_end, py_broke = pcapio._walk(raw, endian, scale)
    assert np.frombuffer(starts, dtype=np.int64).tolist() == offs
    assert np.frombuffer(lengths, dtype=np.int64).tolist() == lens
    assert np.frombuffer(times, dtype=np.float64).tolist() == py_times  # the same floats
    assert (end, broke) == (py_end, py_broke)
    heads = [struct.unpack_from(endian + "III", raw, o - 16) for o in offs]
    assert [(sec + frac * scale, n) for sec, frac, n in heads] == list(
        zip(py_times, lens, strict=True)
    )


@pytest.mark.parametrize(
    "path",
    sorted(PCAPS.glob("*.pcap")) + sorted((PCAPS.parent / "thirdparty").glob("*.pcap*")),
    ids=lambda p: p.name,
)
def test_compiled_index_matches_python(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """index_frames gives the same columns (times to the bit) and stats either way."""
    if pcapio._pcapwalk is None:
        pytest.skip("harness/analysis/_pcapwalk.c is not built (pip install -e . builds it)")
    data = path.read_bytes()
    compiled_stats, python_stats = pcapio.ReadStats(), pcapio.ReadStats()
    compiled = pcapio.index_frames(data, compiled_stats)
    monkeypatch.setattr(pcapio, "_pcapwalk", None)
    python = pcapio.index_frames(data, python_stats)
    assert compiled_stats == python_stats
    for column in ("offsets", "lengths", "times", "links"):
        assert getattr(compiled, column).tolist() == getattr(python, column).tolist(), column
    assert len(compiled) == compiled_stats.frames > 0


def _big_endian(image: bytes) -> bytes:
    """The same little-endian classic pcap written big-endian (headers only)."""
    out = bytearray(struct.pack(">IHHiIII", *struct.unpack_from("<IHHiIII", image, 0)))
    off = 24
    while off + 16 <= len(image):
        head = struct.unpack_from("<IIII", image, off)
        out += struct.pack(">IIII", *head) + image[off + 16 : off + 16 + head[2]]
        off += 16 + head[2]
    return bytes(out)


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


def test_a_zero_clock_rate_in_sdp_is_ignored() -> None:
    """Found by bench_reliability fuzz-pcap (seed 2): `a=rtpmap:96 opus/0` divided by zero."""
    body = b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus/0\r\n"
    data = sip_call_pcap(body)
    a = analyze_bytes(data)
    out = summary(build(a))
    assert a.packets == 21 and not [k for k in a.malformed if k.startswith("crash:")]
    assert out["rtp"] and out["rtp"][0]["clock_rate"] > 0, out["rtp"]


def test_digits_int_refuses_are_no_numbers() -> None:
    """str.isdigit() is true for superscripts and other scripts' digits, which int() refuses:
    a Content-Length, CSeq, status code, payload type, clock rate, candidate port or o=
    version written with them is no number (fuzz-pcap seed 12 found the HTTP one as a
    crash, which loses the rest of the stream)."""
    from tests.unit.test_analysis_synthetic import A, B, udp
    from tests.unit.test_analysis_tcpwalk import frame

    sdp = (
        "v=0\r\no=- 1 \u00b3 IN IP4 198.18.0.10\r\ns=-\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0 \u00b2\r\nc=IN IP4 198.18.0.10\r\n"
        "a=rtpmap:\u00b3 opus/48\u00b9/2\r\na=rtpmap:0 PCMU/\u00b98000\r\n"
        "a=candidate:1 1 udp 1 198.18.0.10 \u00b34000 typ host\r\n"
    ).encode()
    invite = (
        b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.0.10;branch=z9hG4bK1\r\n"
        b"Call-ID: d1\r\nCSeq: \xc2\xb3 INVITE\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: \xc2\xb3%d\r\n\r\n" % len(sdp) + sdp
    )
    answer = b"SIP/2.0 \xc2\xb200 OK\r\nCall-ID: d1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    http_ = b"HTTP/1.1 200 OK\r\nContent-Length: \xb31357\r\n\r\n{}"
    frames = [(1, udp(A, 5060, B, 5060, invite)), (1, udp(B, 5060, A, 5060, answer))]
    frames += [frame(40001, 8088, 999, 0x02, b""), frame(40001, 8088, 1000, 0x18, http_)]
    a = analyze_bytes(pcap_image(frames))
    summary(build(a))
    assert not [k for k in a.malformed if k.startswith("crash:")], dict(a.malformed)
    assert [e.msg.cseq for e in a.sip] == [(-1, "INVITE")]  # "SIP/2.0 ²00" is no status
    assert [dict(f.kinds) for f in a.flows if f.proto == "tcp"] == [{"http": 1}]


def _ng_block(endian: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    size = 12 + len(body)
    return struct.pack(endian + "II", btype, size) + body + struct.pack(endian + "I", size)


def _ng_section(endian: str, tsresols: list[int | None], packets: list[tuple[int, int]]) -> bytes:
    """A pcapng section: its header, one Ethernet interface per `tsresols` entry (None: no
    if_tsresol option, microseconds), then (interface, ticks) enhanced packet blocks of a
    small frame, a simple packet block and an interface statistics block between them."""
    out = _ng_block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    for res in tsresols:
        opts = b"" if res is None else struct.pack(endian + "HHB3x", 9, 1, res)
        out += _ng_block(endian, 1, struct.pack(endian + "HHI", 1, 0, 42) + opts)  # snap 42
    frame = bytes(SMALL[40:82])  # the first frame's first 42 bytes: Ethernet, IPv4, UDP
    for k, (ifid, ticks) in enumerate(packets):
        head = struct.pack(endian + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, 42, 60)
        out += _ng_block(endian, 6, head + frame)
        if k == 0:
            # a key log Wireshark embeds (editcap --inject-secrets tls,FILE)
            out += _ng_block(endian, 10, struct.pack(endian + "II", 0x544C534B, 8) + b"# a key\n")
            # cut to the interface's snap length: 60 bytes on the wire, 42 in the block
            out += _ng_block(endian, 3, struct.pack(endian + "I", 60) + frame)
            out += _ng_block(endian, 5, struct.pack(endian + "III", ifid, 0, 0))
    return out


#: two sections (little-, then big-endian) whose interfaces count time in microseconds,
#: nanoseconds and 2^-20 s: the units pcapng writers use
NG_IMAGE = _ng_section(
    "<", [None, 9], [(0, 1_700_000_000_123_456), (1, 1_700_000_000_123_456_789)]
) + _ng_section(
    ">", [0x80 | 20, 6], [(0, 1_782_579_200 << 20 | 12_345), (1, 1_700_000_001_000_001)]
)


def test_pcapng_units_and_sections_against_tshark(tmp_path: Path) -> None:
    """The hand-built image's frames and times as tshark reads them (both walks)."""
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed (ci/setup.sh installs it)")
    path = tmp_path / "units.pcapng"
    path.write_bytes(NG_IMAGE)
    fields = ["-e", "frame.time_epoch", "-e", "frame.cap_len"]
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", *fields],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()  # fmt: skip
    theirs = [line.split("\t") for line in out]
    walks = [pcapio._walk_ng(NG_IMAGE)]
    if pcapio._pcapwalk is not None:
        c = pcapio._pcapwalk.walk_ng(NG_IMAGE)
        kinds = (np.int64, np.int64, np.float64, np.int64)
        walks.append(
            (*(np.frombuffer(c[i], dtype=k).tolist() for i, k in enumerate(kinds)), *c[4:])
        )
    for offs, lens, times, links, linktypes, errors, truncated, secrets in walks:
        assert (links, linktypes, errors, truncated) == ([1] * 6, [1] * 4, [], 0)
        assert secrets == [(0x544C534B, b"# a key\n")] * 2  # one block per section
        assert {NG_IMAGE[o : o + 42] for o in offs} == {SMALL[40:82]}  # each block's frame
        assert lens == [int(n) for _, n in theirs] == [42] * 6
        # tshark prints nanoseconds; a simple packet block has no time (tshark: none, ours 0)
        assert times == pytest.approx([float(t or 0) for t, _ in theirs], abs=1e-6)
        assert times[2] != times[0] and times[1] == times[4] == 0.0
    assert walks[-1][2][3] == 1_782_579_200 + 12_345 / 2**20


@SLOW
@given(st.data(), st.sampled_from(["editcap", "units"]))
def test_compiled_pcapng_walk_matches_python(data: st.DataObject, which: str) -> None:
    """The C block walk (`walk_ng`) and the Python loop agree on damaged pcapng files: the
    same frames, times to the bit, link types, damage texts and truncation."""
    if pcapio._pcapwalk is None:
        pytest.skip("harness/analysis/_pcapwalk.c is not built (pip install -e . builds it)")
    image = NG_IMAGE if which == "units" else pcapng_image()
    buf = bytearray(image[: data.draw(st.integers(0, len(image)))])
    for _ in range(data.draw(st.integers(0, 20))):
        if buf:
            buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    raw = bytes(buf)
    starts, lengths, times, links, *rest = pcapio._pcapwalk.walk_ng(raw)
    offs, lens, py_times, py_links, *py_rest = pcapio._walk_ng(raw)
    assert np.frombuffer(starts, dtype=np.int64).tolist() == offs
    assert np.frombuffer(lengths, dtype=np.int64).tolist() == lens
    assert np.frombuffer(times, dtype=np.float64).tolist() == py_times  # the same floats
    assert np.frombuffer(links, dtype=np.int64).tolist() == py_links
    assert rest == py_rest
