"""RTP stream statistics and RTCP packet types (RFC 3550, RFC 4585).

Packets are collected per stream (appended one by one, or added as columns by the
fast path) and the statistics are computed once, in `finish`, with numpy: extended
sequence numbers, loss and duplicates (RFC 3550 A.3), gaps, the largest inter-arrival
gap, and interarrival jitter (RFC 3550 6.4.1) in timestamp units, reported in
milliseconds with the payload type's clock rate. The same numbers, to the bit, come
without numpy from `_rtpcount.c` for the compiled fast path's columns (memoryviews, with
any packets of the stream read one by one merged in frame order) and from rtpstats.py
for a stream read packet by packet only (up to PYTHON_ROWS packets): a capture is
analysed without importing numpy (~0.04 s of CPU) unless a stream's chunks interleave
or a caller asks for `columns`.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from harness.analysis import rtpstats
from harness.lazy import lazy

try:
    from harness.analysis import _rtpcount  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: the fast path's columns are counted with numpy
    _rtpcount = None

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")  # imported on first use: `harness validate` never needs it


STATIC_CLOCK = {0: 8000, 3: 8000, 4: 8000, 8: 8000, 9: 8000, 13: 8000, 18: 8000, 26: 90000}
STATIC_CLOCK.update({31: 90000, 32: 90000, 34: 90000})
DEFAULT_CLOCK = 48000
JITTER_WINDOW = 4000  # (15/16)**4000 ~ 1e-112: older differences no longer count
#: streams read packet by packet up to this long are counted without numpy (rtpstats.py)
PYTHON_ROWS = 2000
_WEIGHTS: list[np.ndarray] = []  # (15/16)**(m-1) ... (15/16)**0, the longest made so far
_POWERS = array("d")  # (15/16)**0, (15/16)**1, ...: rtpstats.powers for _rtpcount


def jitter_weights(n: int) -> np.ndarray:
    """(15/16)**(n-1), ..., (15/16)**0 for n <= JITTER_WINDOW: the tail of one table.

    Each is the correctly rounded power (rtpstats.powers), not `np.power`'s, whose last
    bit depends on the CPU's SIMD code: the numbers are the same on every machine and
    the same as the pure-Python count's (tests/unit/test_analysis_streams.py checks).
    """
    if not _WEIGHTS or len(_WEIGHTS[0]) < n:
        _WEIGHTS[:] = [np.array(rtpstats.powers(n)[::-1], dtype=np.float64)]
    table = _WEIGHTS[0]
    return table[len(table) - n :]


RTCP_TYPES = {
    192: "FIR",
    193: "NACK(old)",
    200: "SR",
    201: "RR",
    202: "SDES",
    203: "BYE",
    204: "APP",
    205: "RTPFB",
    206: "PSFB",
    207: "XR",
}

#: Columns of a stream's packets: frame number, time, sequence number, timestamp, PT, size.
Columns = tuple  # of six int64/float64 buffers: numpy arrays, or memoryviews from the
# compiled fast path (a plain alias: naming np.ndarray here would import numpy)


def is_rtcp(p: bytes) -> bool:
    """RFC 5761 section 4: RTCP packet types 192-223 share the byte with RTP M+PT."""
    return 192 <= p[1] <= 223


def header_fits(p: bytes) -> bool:
    """RFC 3550 5.1: the CSRC list and any header extension lie within the packet.

    What a receiver checks before anything else (rtpengine's rtp_payload, libsrtp's
    header validation): a datagram in RTP's first-byte range that fails is no RTP
    packet of its stream but malformed, as encrypted traffic of other protocols often is.
    Under SRTP these fields stay in the clear (RFC 3711 3.1), so the test holds there too.
    """
    n = 12 + 4 * (p[0] & 0x0F)
    if p[0] & 0x10:
        if n + 4 > len(p):
            return False
        n += 4 + 4 * (p[n + 2] << 8 | p[n + 3])
    return n <= len(p)


def _joined(chunks: list[Columns]) -> Columns | None:
    """Chunks (each in frame order: one TURN channel's, say) one after another by their
    first frames, if that puts every frame in the order numpy's stable sort of the chunks
    gives (frames never going down, a tie between two chunks in their given order);
    None otherwise (numpy sorts them)."""
    order = sorted(range(len(chunks)), key=lambda k: chunks[k][0][0])
    for a, b in pairwise(order):
        if chunks[a][0][-1] == chunks[b][0][0] and a > b:
            return None
    out = _new_columns()
    for k in order:
        _copy(out, chunks[k], 0, None)
    return tuple(map(memoryview, out)) if _rtpcount.ascending(out[0]) else None


def _merged(cols: Columns, rows: list[tuple[int, float, int, int, int, int]]) -> Columns:
    """A chunk of columns and rows, in frame order as numpy's stable sort of the two puts
    them (on a tie the chunk's first): each is in frame order already, so each row goes
    in where bisect finds its frame, and the chunk's runs between are copied whole."""
    no, out, at = cols[0], _new_columns(), 0
    for row in rows:
        cut = bisect_right(no, row[0], at)
        _copy(out, cols, at, cut)
        for column, value in zip(out, row, strict=True):
            column.append(value)
        at = cut
    _copy(out, cols, at, None)
    return tuple(map(memoryview, out))


def _new_columns() -> list[array[Any]]:
    """Six empty columns as the fast path's: int64, float64 times, int64."""
    return [array("d" if i == 1 else "q") for i in range(6)]


def _copy(out: list[array[Any]], cols: Columns, lo: int, hi: int | None) -> None:
    """Append rows lo:hi of `cols` to `out`, each column as one copy of its bytes."""
    for column, src in zip(out, cols, strict=True):
        column.frombytes(src[lo:hi].cast("B"))


class RtpStream:
    """One SSRC on one 5-tuple (one direction): packets in, statistics after `finish`."""

    def __init__(self, ssrc: int, flow: str, clock: int | None, relayed: bool) -> None:
        self.ssrc = ssrc
        self.flow = flow
        self.clock_known = clock is not None
        self.clock = clock or DEFAULT_CLOCK
        self.relayed = relayed
        self.first_pt = -1
        self._rows: list[tuple[int, float, int, int, int, int]] = []
        self._chunks: list[Columns] = []
        self.pts: set[int] = set()
        self.packets = self.bytes = 0
        self.first_t = self.last_t = 0.0
        self.first_frame = self.last_frame = 0
        self.expected = self.lost = self.duplicates = self.reordered = 0
        self.gaps = self.gap_missing = 0
        self.max_gap = 0.0
        self.max_gap_frames = (0, 0)
        self.max_gap_times = (0.0, 0.0)
        self.jitter = 0.0

    def add(self, seq: int, rtpts: int, pt: int, t: float, frame: int, size: int) -> None:
        """Collect one packet (the per-packet path: relayed media, unusual encapsulations)."""
        self._rows.append((frame, t, seq, rtpts, pt, size))

    def add_columns(self, cols: Columns) -> None:
        """Collect many packets at once (the vectorised fast path)."""
        self._chunks.append(cols)

    @property
    def columns(self) -> Columns:
        """Every packet as numpy columns (frame, time, seq, rtp timestamp, pt, size), after
        finish()."""
        if self._chunks and type(self._chunks[0][0]) is memoryview:  # counted in C
            self._chunks[0] = tuple(np.asarray(c) for c in self._chunks[0])  # views, no copy
        if not self._chunks and self._rows:  # counted in Python: the columns numpy's had
            rows = np.array(self._rows, dtype=np.float64)
            cols = [rows[:, i] for i in range(6)]
            for i in (0, 2, 3):
                cols[i] = cols[i].astype(np.int64)
            self._rows, self._chunks = [], [tuple(cols)]  # as finish() with numpy leaves them
        if not self._chunks:
            return tuple(np.empty(0) for _ in range(6))
        return self._chunks[0]

    @property
    def times(self) -> np.ndarray:
        """Arrival times of every packet (capture-relative), after finish()."""
        return np.asarray(self.columns[1], dtype=float)

    def finish(self) -> RtpStream:
        """Compute the statistics from every packet collected, in frame order."""
        if not self._chunks:  # only packets read one by one: a few, as a rule
            if self._rows and len(self._rows) <= PYTHON_ROWS:
                self._count_rows()
            if len(self._rows) <= PYTHON_ROWS:  # no packets at all, or counted in Python
                return self
        elif (
            _rtpcount is not None
            and all(type(c[0]) is memoryview for c in self._chunks)
            and all(a[0] <= b[0] for a, b in pairwise(self._rows))  # the walk's order
        ):  # the fast path's columns, and any packets read one by one (TURN Data
            # indications before a ChannelBind), counted in C
            cols = self._chunks[0] if len(self._chunks) == 1 else _joined(self._chunks)
            if cols is not None and self._rows:
                cols = _merged(cols, self._rows)
            if cols is not None and self._count_columns(cols):
                self._rows, self._chunks = [], [cols]
                return self
        import numpy as np  # the module itself: no lazy stand-in on each of many lookups
        # (differences are written out, a[1:] - a[:-1]: what np.diff computes, without its
        # Python-level wrapper)

        chunks = [tuple(np.asarray(c) for c in chunk) for chunk in self._chunks]
        if self._rows:
            rows = np.array(self._rows, dtype=np.float64)
            chunks.append(tuple(rows[:, i] for i in range(6)))
        if len(chunks) == 1:  # the common case: one chunk, used as it is
            no, t, seq, ts, pt, size = chunks[0]
        else:
            no, t, seq, ts, pt, size = (np.concatenate([c[i] for c in chunks]) for i in range(6))
            order = np.argsort(no, kind="stable")
            no, t, seq, ts, pt, size = (
                no[order],
                t[order],
                seq[order],
                ts[order],
                pt[order],
                size[order],
            )
        no, seq, ts = (np.asarray(x, dtype=np.int64) for x in (no, seq, ts))  # no copy if int64
        n = len(no)
        self.packets = n
        self.bytes = int(size.sum())
        one_pt = bool((pt == pt[0]).all())  # the usual stream: no sort for one value
        self.pts = {int(pt[0])} if one_pt else {int(x) for x in np.unique(pt)}
        self.first_t, self.last_t = float(t[0]), float(t[-1])
        self.first_frame, self.last_frame = int(no[0]), int(no[-1])
        # Extended sequence numbers: unwrap each step as a signed 16-bit difference.
        step = (((seq[1:] - seq[:-1]) + 0x8000) & 0xFFFF) - 0x8000
        if n == 1 or step.min() >= 0:
            # Never going back (the usual stream, also when captured at two points: each
            # packet twice): no number late, each new one a step up, each repeat a step of
            # 0, the last number the first plus every step; what the general case below
            # finds, without sorting.
            distinct = 1 + int(np.count_nonzero(step))
            self.expected = int(step.sum()) + 1
            self.duplicates = n - distinct
            self.lost = max(0, self.expected - distinct)
            self.reordered = 0
            forward = step[step > 1]
        else:
            ext = np.concatenate(([seq[0]], seq[0] + np.cumsum(step)))
            highest = np.maximum.accumulate(ext)
            jump = ext[1:] - highest[:-1]
            values, first_index = np.unique(ext, return_index=True)
            is_first = np.zeros(n, dtype=bool)
            is_first[first_index] = True
            self.expected = int(values[-1] - values[0] + 1)
            self.duplicates = n - len(values)
            self.lost = max(0, self.expected - len(values))
            self.reordered = int(np.count_nonzero((jump < 0) & is_first[1:]))
            forward = jump[jump > 1]
        self.gaps, self.gap_missing = len(forward), int((forward - 1).sum())
        if n > 1:
            dt = t[1:] - t[:-1]
            i = int(dt.argmax())
            self.max_gap = float(dt[i])
            self.max_gap_frames = (int(no[i]), int(no[i + 1]))
            self.max_gap_times = (float(t[i]), float(t[i + 1]))
            dts = (((ts[1:] - ts[:-1]) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            d = np.abs(dt * self.clock - dts)[-JITTER_WINDOW:]
            weights = jitter_weights(len(d))
            self.jitter = float((d * weights).sum() / 16)
        self._rows, self._chunks = [], [(no, t, seq, ts, pt, size)]
        return self

    def _count_columns(self, cols: Columns) -> bool:
        """finish() in C for one chunk of the fast path's columns (the same numbers:
        _rtpcount.c); False if it declined them (numpy counts them then)."""
        m = min(len(cols[0]) - 1, JITTER_WINDOW)
        if len(_POWERS) < m:
            _POWERS.extend(rtpstats.powers(m)[len(_POWERS) :])
        c = _rtpcount.count(*cols, self.clock, _POWERS, JITTER_WINDOW)
        if c is None:
            return False
        self.packets, self.bytes, pts, self.first_t, self.last_t = c[:5]
        self.pts = set(pts)  # made in numpy's order (np.unique's)
        self.first_frame, self.last_frame, self.expected, self.lost = c[5:9]
        self.duplicates, self.reordered, self.gaps, self.gap_missing = c[9:13]
        self.max_gap, self.max_gap_frames, self.max_gap_times, self.jitter = c[13:]
        return True

    def _count_rows(self) -> None:
        """finish() without numpy (the same numbers: rtpstats.py); the rows stay as they are."""
        c = rtpstats.count(self._rows, self.clock, JITTER_WINDOW)
        self.packets, self.bytes, self.pts = c.packets, c.bytes, c.pts
        self.first_t, self.last_t = c.first_t, c.last_t
        self.first_frame, self.last_frame = c.first_frame, c.last_frame
        self.expected, self.lost, self.duplicates = c.expected, c.lost, c.duplicates
        self.reordered, self.gaps, self.gap_missing = c.reordered, c.gaps, c.gap_missing
        self.max_gap, self.max_gap_frames = c.max_gap, c.max_gap_frames
        self.max_gap_times, self.jitter = c.max_gap_times, c.jitter

    @property
    def loss_ratio(self) -> float:
        return self.lost / self.expected if self.expected else 0.0

    @property
    def jitter_ms(self) -> float:
        return self.jitter / self.clock * 1000.0

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON output and assertions."""
        return {
            "ssrc": f"0x{self.ssrc:08x}",
            "flow": self.flow,
            "payload_types": sorted(self.pts),
            "packets": self.packets,
            "bytes": self.bytes,
            "first_time": self.first_t,
            "last_time": self.last_t,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "expected": self.expected,
            "lost": self.lost,
            "loss_ratio": round(self.loss_ratio, 6),
            "sequence_gaps": self.gaps,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "jitter_ms": round(self.jitter_ms, 3),
            "clock_rate": self.clock,
            "clock_rate_known": self.clock_known,
            "max_gap_s": round(self.max_gap, 6),
            "max_gap_frames": list(self.max_gap_frames),
            "max_gap_times": list(self.max_gap_times),
            "relayed": self.relayed,
        }


@dataclass
class RtcpPacket:
    """One RTCP packet of a compound; report blocks only for SR/RR in the clear."""

    type: str
    ssrc: int
    reports: list[dict[str, int]] = field(default_factory=list)


_rtcp_head = struct.Struct("!BBHI").unpack_from  # V/P/count, type, length, SSRC
_report_block = struct.Struct("!IIxxxxI").unpack_from  # SSRC, lost (8+24 bits), jitter


def parse_rtcp(p: bytes, encrypted: bool) -> list[RtcpPacket]:
    """Decode an RTCP compound; for SRTCP only the first header is in the clear.

    A compound ends where its next packet is none: a version other than 2, a type
    outside RTCP's 192-223 (RFC 5761 4) or a length past the datagram. That is where the
    encrypted part of an SRTCP packet starts when its flow's DTLS handshake was not
    captured (a capture that starts mid-call), and its bytes are not read as packets.
    """
    out: list[RtcpPacket] = []
    off = 0
    end = len(p)
    while off + 8 <= end and p[off] >> 6 == 2:
        first, pt, words, ssrc = _rtcp_head(p, off)
        ln = (words + 1) * 4
        if out and (not 192 <= pt <= 223 or off + ln > end):
            break
        reports: list[dict[str, int]] = []
        out.append(RtcpPacket(RTCP_TYPES.get(pt) or str(pt), ssrc, reports))
        if encrypted or off + ln > end:
            break
        if pt == 200 or pt == 201:
            base = off + (28 if pt == 200 else 8)
            for i in range(first & 31):
                b = base + 24 * i
                if b + 24 > off + ln:
                    break
                rssrc, lost, jitter = _report_block(p, b)
                cumulative = lost & 0xFFFFFF
                reports.append(
                    {
                        "ssrc": rssrc,
                        "fraction_lost": lost >> 24,
                        "cumulative_lost": cumulative - 0x1000000
                        if lost & 0x800000
                        else cumulative,
                        "jitter": jitter,
                    }
                )
        off += ln
    return out
