"""RTP stream statistics in pure Python, for the few packets the per-frame walk collects.

`RtpStream.finish` counts with numpy; a capture whose only RTP is a stream or two read
packet by packet (TURN Send indications, RFC 4571 framing) would import numpy for
them alone (~0.05 s, a tenth of such a run). These are the same computations written
out, giving the same numbers to the bit: integer counters are exact either way, and
each float is made by the same IEEE operations in the same order, numpy's pairwise
summation included (`pairwise_sum`). The jitter weights are a table both share
(`powers`): correctly rounded powers of 15/16, not `np.power`'s, which differ in the
last bit from one CPU's SIMD code to another's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

#: (15/16)**k for k = 0, 1, ...: grown on demand, each correctly rounded
_POWERS: list[float] = [1.0]
_NUMERATOR = [15]  # 15**len(_POWERS)


def powers(n: int) -> list[float]:
    """(15/16)**0 ... (15/16)**(n-1), each the double nearest the exact value.

    15**k / 16**k with exact integers: the top 64 bits of 15**k (a sticky bit for the
    rest, so the one rounding to 53 bits is right), then an exact power-of-two scale.
    """
    p = _NUMERATOR[0]
    for k in range(len(_POWERS), n):
        shift = max(0, p.bit_length() - 64)
        top = p >> shift
        if shift and p & ((1 << shift) - 1):
            top |= 1
        _POWERS.append(math.ldexp(float(top), shift - 4 * k))
        p *= 15
    _NUMERATOR[0] = p
    return _POWERS[:n]


def pairwise_sum(a: Sequence[float], lo: int, n: int) -> float:
    """Sum of a[lo:lo+n] as numpy adds a float64 array (pairwise, 8 lanes, blocks of 128)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3, r4, r5, r6, r7 = a[lo : lo + 8]
        i, whole = lo + 8, lo + n - n % 8
        while i < whole:
            r0 += a[i]
            r1 += a[i + 1]
            r2 += a[i + 2]
            r3 += a[i + 3]
            r4 += a[i + 4]
            r5 += a[i + 5]
            r6 += a[i + 6]
            r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for j in range(i, lo + n):
            res += a[j]
        return res
    half = n // 2
    half -= half % 8
    return pairwise_sum(a, lo, half) + pairwise_sum(a, lo + half, n - half)


@dataclass
class Counts:
    """What RtpStream.finish computes from a stream's packets."""

    packets: int
    bytes: int
    pts: set[int]
    first_t: float
    last_t: float
    first_frame: int
    last_frame: int
    expected: int
    lost: int
    duplicates: int
    reordered: int
    gaps: int
    gap_missing: int
    max_gap: float = 0.0
    max_gap_frames: tuple[int, int] = (0, 0)
    max_gap_times: tuple[float, float] = (0.0, 0.0)
    jitter: float = 0.0


def count(rows: Sequence[tuple[int, float, int, int, int, int]], clock: int, window: int) -> Counts:
    """RtpStream.finish on rows (frame, time, seq, timestamp, pt, size) in frame order."""
    n = len(rows)
    no = [r[0] for r in rows]
    t = [float(r[1]) for r in rows]
    seq = [r[2] for r in rows]
    # Extended sequence numbers: each step a signed 16-bit difference.
    step = [((b - a + 0x8000) & 0xFFFF) - 0x8000 for a, b in pairwise(seq)]
    if n == 1 or min(step) >= 0:
        distinct = 1 + sum(1 for s in step if s)
        expected = sum(step) + 1
        duplicates, reordered = n - distinct, 0
        lost = max(0, expected - distinct)
        forward = [s for s in step if s > 1]
    else:
        ext, acc = [seq[0]], seq[0]
        for s in step:
            acc += s
            ext.append(acc)
        seen: set[int] = set()
        is_first = []
        for x in ext:
            is_first.append(x not in seen)
            seen.add(x)
        jump, highest = [], ext[0]
        for x in ext[1:]:
            jump.append(x - highest)
            highest = max(highest, x)
        expected = max(seen) - min(seen) + 1
        duplicates = n - len(seen)
        lost = max(0, expected - len(seen))
        reordered = sum(1 for j, first in zip(jump, is_first[1:], strict=True) if j < 0 and first)
        forward = [j for j in jump if j > 1]
    out = Counts(
        n,
        sum(r[5] for r in rows),
        set(sorted({r[4] for r in rows})),  # made in numpy's order (np.unique's)
        t[0],
        t[-1],
        no[0],
        no[-1],
        expected,
        lost,
        duplicates,
        reordered,
        len(forward),
        sum(forward) - len(forward),
    )
    if n > 1:
        dt = [b - a for a, b in pairwise(t)]
        i = dt.index(max(dt))  # the first largest, as argmax
        out.max_gap = dt[i]
        out.max_gap_frames = (no[i], no[i + 1])
        out.max_gap_times = (t[i], t[i + 1])
        ts = [r[3] for r in rows]
        d = [
            abs(gap * clock - ((((b - a) + 0x80000000) & 0xFFFFFFFF) - 0x80000000))
            for gap, (a, b) in zip(dt, pairwise(ts), strict=True)
        ][-window:]
        weights = powers(len(d))
        m = len(d)
        products = [d[j] * weights[m - 1 - j] for j in range(m)]
        out.jitter = pairwise_sum(products, 0, m) / 16
    return out
