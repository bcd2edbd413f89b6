"""RTP stream counters (RFC 3550 A.3, 6.4.1) and TCP/WebSocket reassembly for signalling."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import http, rtp, sip
from harness.analysis.rtp import JITTER_WINDOW, RtpStream, jitter_weights
from harness.analysis.tcp import TcpDirection
from tests.fuzzing import FAST


def feed(seqs: list[int], times: list[float] | None = None, clock: int = 8000) -> RtpStream:
    s = RtpStream(1, "f", clock, False)
    for i, seq in enumerate(seqs):
        t = times[i] if times else i * 0.02
        s.add(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 0, t, i + 1, 172)
    return s.finish()


def test_in_order_stream() -> None:
    s = feed(list(range(50)))
    assert (s.packets, s.expected, s.lost, s.gaps, s.reordered, s.duplicates) == (
        50,
        50,
        0,
        0,
        0,
        0,
    )
    assert s.jitter_ms < 1e-9
    assert abs(s.max_gap - 0.02) < 1e-9


def test_loss_gap_reorder_duplicate() -> None:
    s = feed([0, 1, 2, 6, 7, 9, 8, 8, 10])
    assert s.expected == 11
    assert s.duplicates == 1 and s.reordered == 1  # 8 after 9 is late, the second 8 a duplicate
    assert s.lost == 11 - (9 - 1)  # 3, 4, 5 missing
    assert s.gaps == 2 and s.gap_missing == 4  # 3-5 and 8 (which came late)


def test_sequence_wrap() -> None:
    s = feed([65533, 65534, 65535, 65536, 65537])
    assert s.expected == 5 and s.lost == 0 and s.reordered == 0


def test_increasing_streams_match_a_plain_count() -> None:
    """Streams that never go back (with gaps, repeats, across the 16-bit wrap) take a
    shortcut in `finish`; its counters are those of a plain count, as are a shuffled stream's."""
    rnd = random.Random(15)
    for case in range(60):
        seq, seqs = rnd.randrange(0x10000), []
        for _ in range(rnd.randrange(1, 400)):
            seqs.append(seq)
            seq += 1 if rnd.random() < 0.9 else rnd.randrange(2, 40)
        if case % 3 == 1:  # each packet seen twice (captured at two points): still the shortcut
            seqs = [x for x in seqs for _ in (0, 1)]
        if case % 3 == 2 and len(seqs) > 2:  # late and repeated packets: the general path
            i = rnd.randrange(len(seqs) - 1)
            seqs[i], seqs[i + 1] = seqs[i + 1], seqs[i]
            seqs.append(seqs[0])
        s = feed(seqs)
        highest, late, gaps, missing, seen = seqs[0], 0, 0, 0, {seqs[0]}
        for x in seqs[1:]:
            if x > highest + 1:
                gaps, missing = gaps + 1, missing + x - highest - 1
            late += x < highest and x not in seen
            highest, seen = max(highest, x), seen | {x}
        expected = max(seqs) - min(seqs) + 1
        assert (s.expected, s.lost, s.duplicates) == (
            expected,
            expected - len(set(seqs)),
            len(seqs) - len(set(seqs)),
        )
        assert (s.gaps, s.gap_missing, s.reordered) == (gaps, missing, late)


def test_jitter_weights_are_correctly_rounded_powers() -> None:
    """The table's tail is (15/16)**(n-1) ... (15/16)**0, each the nearest double (lengths
    around SIMD widths and the window's end): the same on every CPU, unlike np.power's
    last bit, and never more than one unit in the last place from it."""
    from fractions import Fraction

    import numpy as np

    exact = [float(Fraction(15**k, 16**k)) for k in range(JITTER_WINDOW - 1, -1, -1)]
    for n in (*range(1, 70), 127, 128, 129, 1000, 3999, JITTER_WINDOW):
        assert jitter_weights(n).tolist() == exact[JITTER_WINDOW - n :], n
    direct = (15 / 16) ** np.arange(JITTER_WINDOW - 1, -1, -1)
    assert np.all(np.abs(jitter_weights(JITTER_WINDOW) - direct) <= np.spacing(direct))


def _numpy_and_python(rows: list[tuple[int, float, int, int, int, int]], clock: int) -> None:
    """The numpy count and the pure-Python one (rtpstats.py) of the same rows, to the bit."""
    import numpy as np

    streams = []
    for limit in (0, len(rows)):  # 0: every row-only stream goes to numpy
        s = RtpStream(1, "f", clock, False)
        for r in rows:
            s.add(r[2], r[3], r[4], r[1], r[0], r[5])
        with_limit(limit, s.finish)
        streams.append(s)
    a, b = streams
    fields = [k for k in vars(a) if not k.startswith("_")]
    assert [(k, repr(getattr(a, k))) for k in fields] == [(k, repr(getattr(b, k))) for k in fields]
    for x, y in zip(a.columns, b.columns, strict=True):  # the columns recovery.py reads
        assert x.dtype == y.dtype and np.array_equal(x, y)


def with_limit(limit: int, run: Callable[[], object]) -> None:
    saved, rtp.PYTHON_ROWS = rtp.PYTHON_ROWS, limit
    try:
        run()
    finally:
        rtp.PYTHON_ROWS = saved


Row = tuple[int, float, int, int, int, int]


def random_rows(rnd: random.Random, n: int, case: int) -> list[Row]:
    """n packets (frame, time, seq, timestamp, pt, size): case 0 in order; 1 with lost,
    repeated, late and far-jumping sequence numbers and random timestamps; 2 also with
    time going back."""
    seq, ts, t, rows = rnd.randrange(0x10000), rnd.randrange(1 << 32), 0.0, []
    for i in range(n):
        rows.append(
            (3 * i + 1, t, seq & 0xFFFF, ts & 0xFFFFFFFF, rnd.choice((0, 0, 8)), 60 + i % 7)
        )
        t += rnd.uniform(0, 0.05) * (1 if case < 2 else rnd.choice((1, -1)))
        seq += 1 if case == 0 else rnd.choice((1, 1, 0, -1, 3, 700))
        ts += 160 if case == 0 else rnd.randrange(-(1 << 31), 1 << 31)
    return rows


def test_python_count_is_numpys() -> None:
    """Streams read packet by packet are counted without numpy: the same numbers, floats
    to the bit (pairwise sums of 1 to 4100 jitter terms, reordering, duplicates, wraps)."""
    rnd = random.Random(11)
    for n in (1, 2, 3, 7, 8, 9, 16, 17, 128, 129, 130, 300, 1000, 4000, 4001, 4002, 4100):
        for case in range(3):
            rows = random_rows(rnd, n, case)
            _numpy_and_python(rows, rnd.choice((8000, 48000, 90000)))


def _columns(rows: list[tuple[int, float, int, int, int, int]]) -> tuple[memoryview, ...]:
    """The rows as the compiled fast path hands a stream over: int64/float64 memoryviews."""
    from array import array

    return tuple(memoryview(array("d" if i == 1 else "q", [r[i] for r in rows])) for i in range(6))


@pytest.mark.skipif(rtp._rtpcount is None, reason="_rtpcount.c is not built")
def test_compiled_count_is_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path's columns are counted in C (_rtpcount.c) without numpy: the same
    numbers as numpy's and the same columns after, floats to the bit (the cases of
    test_python_count_is_numpys, and one-packet and all-duplicate streams)."""
    import numpy as np

    rnd = random.Random(12)
    cases: list[list[Row]] = [
        [(5, 0.5, 9, 7, 0, 100)],
        [(i + 1, 0.02 * i, 7, 160, 111, 80) for i in range(40)],
    ]
    for n in (2, 3, 7, 8, 9, 16, 17, 128, 129, 130, 300, 1000, 4000, 4001, 4002, 4100):
        for case in range(3):
            cases.append(random_rows(rnd, n, case))
    built = rtp._rtpcount
    for rows in cases:
        clock = rnd.choice((8000, 48000, 90000))
        streams = []
        for compiled in (built, None):
            monkeypatch.setattr(rtp, "_rtpcount", compiled)
            s = RtpStream(1, "f", clock, False)
            s.add_columns(_columns(rows))
            streams.append(s.finish())
        a, b = streams
        fields = [k for k in vars(a) if not k.startswith("_")]
        got = [(k, repr(getattr(a, k))) for k in fields]
        assert got == [(k, repr(getattr(b, k))) for k in fields], len(rows)
        for x, y in zip(a.columns, b.columns, strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.skipif(rtp._rtpcount is None, reason="_rtpcount.c is not built")
def test_compiled_count_merges_rows_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relayed stream's first packets arrive in TURN Data indications (read one by one)
    and the rest in ChannelData (the fast path's columns, one chunk per TURN channel,
    in any order): C merges them in frame order as numpy's stable sort does, ties to
    the columns, and counts the same; interleaved chunks are left to numpy."""
    rnd = random.Random(13)
    built = rtp._rtpcount
    for n, parts in ((2, 1), (5, 1), (40, 1), (300, 1), (4100, 1), (300, 3), (4100, 5), (90, -2)):
        frames = sorted(rnd.randrange(1, 3 * n) for _ in range(n))  # ties: one frame twice
        t, seq, rows = 0.0, rnd.randrange(0x10000), []
        for no in frames:
            rows.append((no, t, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 111, 90 + no % 5))
            t += rnd.uniform(0, 0.04)
            seq += rnd.choice((1, 1, 1, 2, 0, -1))
        one_by_one = sorted(rnd.sample(range(n), max(1, n // 10)))
        chunk = [r for i, r in enumerate(rows) if i not in one_by_one]
        if parts > 0:  # runs of frames, handed over in a shuffled order
            cuts = sorted(rnd.sample(range(1, len(chunk)), parts - 1))
            chunks = [chunk[a:b] for a, b in pairwise([0, *cuts, len(chunk)])]
            rnd.shuffle(chunks)
        else:  # interleaved: every other packet
            chunks = [chunk[k::-parts] for k in range(-parts)]
        streams = []
        for compiled in (built, None):
            monkeypatch.setattr(rtp, "_rtpcount", compiled)
            s = RtpStream(1, "f", 48000, True)
            for c in chunks:
                s.add_columns(_columns(c))
            for i in one_by_one:
                r = rows[i]
                s.add(r[2], r[3], r[4], r[1], r[0], r[5])
            streams.append(s.finish())
        a, b = streams
        fields = [k for k in vars(a) if not k.startswith("_")]
        got = [(k, repr(getattr(a, k))) for k in fields]
        assert got == [(k, repr(getattr(b, k))) for k in fields], n
        # numpy's merge makes pt and size float64 (the rows' array): the same values
        assert [c.tolist() for c in a.columns] == [c.tolist() for c in b.columns]


def test_jitter_matches_rfc3550() -> None:
    rnd = random.Random(7)
    times = [i * 0.02 + rnd.uniform(0, 0.01) for i in range(300)]
    s = feed(list(range(300)), times)
    j = 0.0  # RFC 3550 6.4.1, straight from the text, in timestamp units
    for i in range(1, 300):
        d = (times[i] - times[i - 1]) * 8000 - 160
        j += (abs(d) - j) / 16
    assert abs(s.jitter - j) < 1e-6
    assert abs(s.jitter_ms - j / 8) < 1e-6


def test_max_gap_evidence() -> None:
    times = [0.0, 0.02, 0.04, 0.54, 0.56]
    s = feed([0, 1, 2, 3, 4], times)
    assert abs(s.max_gap - 0.5) < 1e-9 and s.max_gap_frames == (3, 4)


INVITE = (
    b"INVITE sip:b@198.18.0.11 SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n"
    b"f: <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\ni: abc\r\nCSeq: 1 INVITE\r\nc: application/sdp\r\n"
    b"l: 10\r\n\r\nv=0\r\ns=-\r\n"
)


def test_tcp_reassembly_out_of_order_and_retransmitted() -> None:
    d = TcpDirection()
    d.feed(1000, 0x02, b"")  # SYN
    data = INVITE * 2
    parts = [(1001 + i, data[i : i + 37]) for i in range(0, len(data), 37)]
    order = parts[1:3] + parts[:1] + parts[:2] + parts[3:]  # out of order and duplicated
    for seq, chunk in order:
        d.feed(seq, 0x18, chunk)
    assert bytes(d.buf) == data
    messages, used = sip.split_stream(d.buf)
    assert len(messages) == 2 and used == len(data)
    m = sip.parse(messages[0])
    assert m is not None and m.call_id == "abc" and m.has_sdp and m.body == "v=0\r\ns=-\r\n"
    assert (m.from_tag, m.cseq) == ("1", (1, "INVITE"))


def test_websocket_frames() -> None:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(INVITE))
    frame = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(INVITE)) + mask + masked
    frames, used = http.split_ws(frame + frame[:5])
    assert frames == [(1, INVITE)] and used == len(frame)


def test_http_bodies() -> None:
    body = b'{"janus":"event","jsep":{"type":"answer","sdp":"v=0\\r\\n"}}'
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    msgs, used = http.split_http(chunked)
    assert used == len(chunked) and http.jsep(msgs[0].body) == (
        "answer",
        "v=0\r\n",
        {"janus": "event", "jsep": {"type": "answer", "sdp": "v=0\r\n"}},
    )
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"
    msgs, used = http.split_http(upgrade)
    assert msgs[0].is_upgrade_to_websocket and upgrade[used:] == b"\x81\x02hi"


def test_sip_response_values_from_headers() -> None:
    """Compact headers, folded lines; the values are read once and stay what the headers say."""
    m = sip.parse(
        b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-7\r\n"
        b"f: <sip:a@x>;tag=1\r\nt: <sip:b@y>\r\n ;tag=9\r\ni: abc \r\nCSeq: 2 INVITE\r\n\r\n"
    )
    assert m is not None and not m.is_request and not m.has_sdp
    for _ in range(2):
        assert (m.call_id, m.cseq, m.from_tag, m.to_tag, m.branch) == (
            "abc",
            (2, "INVITE"),
            "1",
            "9",
            "z9hG4bK-7",
        )
    assert (m.method, m.summary) == ("INVITE", "180 Ringing (INVITE)")


@FAST
@given(st.data())
def test_tcp_reassembly_of_repacketized_retransmissions(data: st.DataObject) -> None:
    """Segments lost, reordered, and sent again cut at other places (a retransmission may
    join or split segments, RFC 9293 3.10.7.4 trims what overlaps): every byte is read
    once, in order. A waiting segment that a retransmission overlaps gives its new tail."""
    stream = bytes(range(256)) * 4

    def segmentation() -> list[tuple[int, bytes]]:
        cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=20))
        bounds = [0, *sorted(set(cuts)), len(stream)]
        return [(a, stream[a:b]) for a, b in pairwise(bounds)]

    first = [s for s in segmentation() if data.draw(st.booleans())]  # the rest lost
    again = segmentation()  # every byte again, cut elsewhere
    order = data.draw(st.permutations(first)) + data.draw(st.permutations(again))
    d = TcpDirection()
    d.feed(999, 0x02, b"")  # SYN: the stream starts at 1000
    for at, chunk in order:
        d.feed(1000 + at, 0x18, chunk)
    assert bytes(d.buf) == stream
    assert not d.pending


def test_tcp_resend_ending_inside_a_waiting_segment() -> None:
    """0-100 arrives, 200-300 waits for the hole, the hole comes back as 100-250: the
    waiting segment's last 50 bytes follow (they were lost to the stream before)."""
    stream = bytes(range(256)) * 2
    d = TcpDirection()
    d.feed(999, 0x02, b"")
    for at, end in ((0, 100), (200, 300), (100, 250)):
        d.feed(1000 + at, 0x18, stream[at:end])
    assert bytes(d.buf) == stream[:300] and not d.pending
    d.feed(1300, 0x18, stream[300:])
    assert bytes(d.buf) == stream
