"""The vectorised fast path: RTP over IPv4/UDP found and grouped with numpy.

Media is most of any call capture; reading its headers column-wise (one numpy gather
per field over every frame) instead of frame by frame is what makes `harness analyze`
faster than tshark. The test is RFC 7983's first byte (128-191) minus the RTCP packet
types (RFC 5761), the same demultiplexing the per-frame path applies. RTP relayed in
TURN ChannelData (RFC 8656 section 12.4) is found the same way, four bytes further in;
which peer a channel stands for is known only after the per-frame walk has read the
ChannelBind requests, so those groups carry their channel number and are resolved then.
The IPv4 header may follow Ethernet (up to two VLAN tags), Linux cooked v1 or v2 (what
`tcpdump -i any` writes), BSD loopback or nothing (raw IP): each frame is read as if its
IP header were at Ethernet's offset, so the header window and key columns are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

from harness.analysis.pcapio import Column, FrameIndex
from harness.analysis.rtp import Columns
from harness.lazy import lazy

try:
    from harness.analysis import _fastpath  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built (no compiler at install time): the numpy version below
    _fastpath = None

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")  # imported on first use: `harness validate` never needs it

ETH = 14
UDP_PAYLOAD = 42
#: DNS, DHCP, NTP, NetBIOS, mDNS, LLMNR: their first byte can fall in RTP's range
SERVICE_PORTS = (53, 67, 68, 123, 137, 138, 5353, 5355)
#: flow key (addresses and ports, as net.decode builds it)
FLOW_COLUMNS = tuple(range(26, 38))


@dataclass
class RtpBatch:
    """RTP frames taken by the fast path, split per key (flow [+ channel] + SSRC).

    `outer_bytes` is, per group, the UDP payload bytes of its frames (ChannelData
    headers included), for the TURN flow's byte count.
    """

    frames: Column
    keys: list[bytes] = field(default_factory=list)
    columns: list[Columns] = field(default_factory=list)
    outer_bytes: list[int] = field(default_factory=list)


@dataclass
class FlowCounts:
    """Frames that only count towards their flow (bare TCP acknowledgements), per flow key."""

    frames: Column
    keys: list[bytes] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    first: list[int] = field(default_factory=list)  # 0-based frame index of the key's first
    last: list[int] = field(default_factory=list)


@dataclass
class FastPath:
    """Everything the vectorised pass took; the per-frame walk skips these frames."""

    rtp: RtpBatch
    relayed: RtpBatch
    acks: FlowCounts
    not_ip: Column  # Ethernet frames that carry no IP (ARP, LLDP, STP, ...)
    #: the frames it did not take (ascending) and their capture-relative times, for the
    #: per-frame walk: int64 and float64 memoryviews
    rest: Column = None
    rest_times: Column = None

    @property
    def taken(self) -> list[Column]:
        return [self.rtp.frames, self.relayed.frames, self.acks.frames, self.not_ip]


HEAD = UDP_PAYLOAD + 4 + 12  # bytes read per frame: up to an RTP header inside ChannelData
IP_ETHERTYPES = (0x0800, 0x86DD, 0x8100, 0x88A8)
VLAN = (0x8100, 0x88A8)
LINK_SLL, LINK_SLL2 = 113, 276
LINK_RAW = (101, 12, 14, 228, 229)  # raw IP: the version nibble says which
LINK_NULL = (0, 108)  # BSD loopback: the address family in either byte order


def find_media(data: bytes, idx: FrameIndex) -> FastPath:
    """RTP directly over UDP and in TURN ChannelData, bare TCP ACKs, non-IP frames.

    Compiled (`_fastpath.c`, one loop) when built, else column-wise with numpy; the two
    give the same frames, groups, group order and columns. Compiled, numpy is not
    imported: its columns are memoryviews, which RtpStream.finish counts in C.
    """
    if _fastpath is None:
        return find_media_numpy(data, idx)
    not_ip, acks, plain, relayed, rest, rest_times = _fastpath.scan(
        data, idx.offsets, idx.lengths, idx.links, idx.times
    )
    frames, keys, counts, first, last = acks
    counted = FlowCounts(memoryview(frames).cast("q"), keys, counts, first, last)
    fast = FastPath(_batch(plain), _batch(relayed), counted, memoryview(not_ip).cast("q"))
    fast.rest, fast.rest_times = memoryview(rest).cast("q"), memoryview(rest_times).cast("d")
    return fast


def _batch(scanned: tuple) -> RtpBatch:
    """An RtpBatch from `_fastpath.scan`'s columns (rows already in group order)."""
    frames, keys, bounds, no, t, seq, ts, pt, size, outer = scanned
    batch = RtpBatch(memoryview(frames).cast("q"), keys, outer_bytes=outer or [])
    if not keys:
        return batch
    # memoryviews, not numpy: RtpStream.finish counts them in C (_rtpcount.c)
    cols = [memoryview(c).cast("d" if c is t else "q") for c in (no, t, seq, ts, pt, size)]
    batch.columns = [tuple(c[lo:hi] for c in cols) for lo, hi in pairwise(bounds)]
    return batch


def find_media_numpy(data: bytes, idx: FrameIndex) -> FastPath:
    """find_media with numpy: the fallback, and the reference for the compiled scan."""
    idx = idx.numpy()
    times = idx.times - (idx.times[0] if len(idx) else 0.0)
    fast = _find_media_numpy(data, idx, times)
    rest = np.ones(len(idx), dtype=bool)
    for taken in fast.taken:
        rest[taken] = False
    todo = np.flatnonzero(rest).astype(np.int64)
    # memoryviews, as compiled: iterating them gives Python ints and floats, not numpy's
    fast.rest = memoryview(todo)  # type: ignore[arg-type]  # an ndarray is a buffer
    fast.rest_times = memoryview(np.ascontiguousarray(times[todo]))  # type: ignore[arg-type]
    return fast


def _find_media_numpy(data: bytes, idx: FrameIndex, times: np.ndarray) -> FastPath:
    """IPv4 frames without options or fragmentation only (after any link layer _ip_offsets
    knows).

    One gather reads the first HEAD bytes of every candidate frame, the tests below are
    column operations.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    eth = np.flatnonzero((idx.links == 1) & (idx.lengths >= ETH) & (idx.offsets <= len(raw) - ETH))
    et = _be16(np.stack((raw[idx.offsets[eth] + 12], raw[idx.offsets[eth] + 13]), axis=1), 0)
    not_ip = eth[~np.isin(et, IP_ETHERTYPES)]
    if len(raw) < HEAD:
        none = np.empty(0, dtype=np.int64)
        return FastPath(RtpBatch(none), RtpBatch(none), FlowCounts(none), not_ip)
    ip = _ip_offsets(raw, idx)
    # each frame shifted so that its IP header is where Ethernet's would be
    base, lb = idx.offsets + ip - ETH, idx.lengths - (ip - ETH)
    ok = (ip >= 0) & (base >= 0) & (lb >= UDP_PAYLOAD + 12) & (base <= len(raw) - HEAD)
    cand = np.flatnonzero(ok)
    # Every HEAD-byte window of the file as a row (a view, no copy); taking the rows at
    # the frame offsets copies only the headers.
    windows = np.lib.stride_tricks.as_strided(
        raw, shape=(len(raw) - HEAD + 1, HEAD), strides=(1, 1)
    )
    h = windows[base[cand]]
    lengths = lb[cand]
    ok = (h[:, 14] == 0x45) & (((h[:, 20] & 0x3F) | h[:, 21]) == 0)
    total = _be16(h, 16)
    ok &= (total <= lengths - ETH) & (total >= 40)
    doff = (h[:, 46] >> 4).astype(np.int64) * 4
    bare = ok & (h[:, 23] == 6) & (h[:, 47] & 0x07 == 0) & (doff >= 20) & (total == 20 + doff)
    acks = _count(h[bare], cand[bare])
    ok &= h[:, 23] == 17
    ok &= ~np.isin(_be16(h, 34), SERVICE_PORTS) & ~np.isin(_be16(h, 36), SERVICE_PORTS)
    cand, h, total = cand[ok], h[ok], total[ok]
    b0, b1 = h[:, UDP_PAYLOAD], h[:, UDP_PAYLOAD + 1]
    direct = (b0 >= 128) & (b0 <= 191) & ~((b1 >= 192) & (b1 <= 223)) & (total >= 40)
    plain = _group(h[direct], cand[direct], total[direct] - 28, times, UDP_PAYLOAD, [])
    size = _be16(h, UDP_PAYLOAD + 2)
    i0, i1 = h[:, UDP_PAYLOAD + 4], h[:, UDP_PAYLOAD + 5]
    ch = (b0 >= 0x40) & (b0 <= 0x4F) & (size >= 12) & (size + 4 <= total - 28)
    ch &= (i0 >= 128) & (i0 <= 191) & ~((i1 >= 192) & (i1 <= 223))
    channel = [UDP_PAYLOAD, UDP_PAYLOAD + 1]
    relayed = _group(h[ch], cand[ch], size[ch], times, UDP_PAYLOAD + 4, channel, total[ch] - 28)
    return FastPath(plain, relayed, acks, not_ip)


def _ip_offsets(raw: np.ndarray, idx: FrameIndex) -> np.ndarray:
    """Where each frame's IPv4 header starts, as net.decode finds it, or -1: not IPv4, or
    an encapsulation left to the per-frame walk (more than two VLAN tags)."""
    off, links = idx.offsets, idx.links
    avail = np.maximum(np.minimum(idx.lengths, len(raw) - off), 0)  # bytes in the file
    ip = np.full(len(off), -1, dtype=np.int64)

    def be16(at: int, where: np.ndarray) -> np.ndarray:
        """The 16-bit value at `at` of each frame (0 where the frame is shorter)."""
        ok = where & (avail >= at + 2)
        pos = np.where(ok, off + at, 0)
        return np.where(ok, raw[pos].astype(np.int64) << 8 | raw[pos + 1], 0)

    def byte(at: int, where: np.ndarray) -> np.ndarray:
        ok = where & (avail >= at + 1)
        return np.where(ok, raw[np.where(ok, off + at, 0)], 0)

    tagged = links == 1  # Ethernet, then up to two VLAN tags
    for at in (12, 16, 20):
        et = be16(at, tagged)
        ip[tagged & (et == 0x0800)] = at + 2
        tagged &= np.isin(et, VLAN)
    ip[(links == LINK_SLL) & (be16(14, links == LINK_SLL) == 0x0800)] = 16
    ip[(links == LINK_SLL2) & (be16(0, links == LINK_SLL2) == 0x0800)] = 20
    bare = np.isin(links, LINK_RAW)
    ip[bare & (avail >= 1) & (byte(0, bare) >> 4 == 4)] = 0
    loop = np.isin(links, LINK_NULL) & (avail >= 4)
    family = np.where(byte(0, loop) != 0, byte(0, loop), byte(3, loop))
    ip[loop & (family == 2)] = 4
    return ip


def _keys(h: np.ndarray, cols_at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key bytes per row, rows in group order, where each group starts in that order + end).

    Rows keep their frame order within a group, so a group's first row is its first frame.
    """
    width = len(cols_at)
    padded = np.zeros((len(h), -(-width // 8) * 8), dtype=np.uint8)
    padded[:, :width] = h[:, cols_at]
    keys, words = padded[:, :width], padded.view(np.uint64)
    # Group on a 64-bit digest of the key's words (one quick sort, then a radix sort of
    # the small group numbers, which keeps frame order), then check it did not collide.
    digest = words[:, 0].copy()
    for c in range(1, words.shape[1]):
        digest = digest * np.uint64(1099511628211) + words[:, c]
    _, inverse = np.unique(digest, return_inverse=True)
    inverse = inverse.ravel()
    order, bounds = _sorted(inverse)
    first = order[bounds[:-1]]  # each group's first row
    if np.array_equal(words, np.take(words[first], inverse, axis=0)):
        # Groups in the order of the byte-wise digest (the order flows list their
        # streams in, so the JSON output stays the same as before).
        ranks = np.zeros(len(first), dtype=np.uint64)
        for c in range(width):
            ranks = ranks * np.uint64(1099511628211) + keys[first, c]
        rank = ranks if len(np.unique(ranks)) == len(ranks) else None
    else:
        rank = None  # a digest collision: group on the bytes themselves
    if rank is None:
        _, inverse = np.unique(
            np.ascontiguousarray(keys).view(np.dtype((np.void, width))).ravel(),
            return_inverse=True,
        )
        inverse = inverse.ravel()
    else:
        position = np.empty(len(rank), dtype=np.int64)
        position[np.argsort(rank)] = np.arange(len(rank))
        inverse = position[inverse]
    order, bounds = _sorted(inverse)
    return keys, order, bounds


def _sorted(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows by group number, in row order within a group; where each group starts, + end."""
    bounds = np.concatenate(([0], np.cumsum(np.bincount(groups))))
    small = groups.astype(np.uint16) if len(bounds) <= 1 << 16 else groups  # a radix sort
    return np.argsort(small, kind="stable"), bounds


def _count(h: np.ndarray, frames: np.ndarray) -> FlowCounts:
    out = FlowCounts(frames)
    if not len(frames):
        return out
    keys, order, bounds = _keys(h, np.array(FLOW_COLUMNS))
    ordered = frames[order]  # ascending within each group
    out.keys = [keys[i].tobytes() for i in order[bounds[:-1]]]
    out.counts = np.diff(bounds).tolist()
    out.first = ordered[bounds[:-1]].tolist()
    out.last = ordered[bounds[1:] - 1].tolist()
    return out


def _group(
    h: np.ndarray,
    frames: np.ndarray,
    size: np.ndarray,
    times: np.ndarray,
    at: int,
    extra: list[int],
    outer: np.ndarray | None = None,
) -> RtpBatch:
    """Split frames per (flow key + `extra` key bytes + SSRC) into RTP columns."""
    batch = RtpBatch(frames)
    if not len(frames):
        return batch
    cols_at = np.array([*FLOW_COLUMNS, *extra, *range(at + 8, at + 12)], dtype=np.int64)
    keys, order, bounds = _keys(h, cols_at)
    seq = _be16(h, at + 2)
    ts = (_be16(h, at + 4) << 16) | _be16(h, at + 6)
    pt = (h[:, at + 1] & 0x7F).astype(np.int64)
    # Sorted by group once: each group's columns are then slices (views), not gathers.
    cols = tuple(c[order] for c in (frames + 1, times[frames], seq, ts, pt, size))
    outer_sums = np.add.reduceat(outer[order], bounds[:-1]).tolist() if outer is not None else []
    starts = bounds.tolist()
    for g, row in enumerate(order[bounds[:-1]].tolist()):
        lo, hi = starts[g], starts[g + 1]
        batch.keys.append(keys[row].tobytes())
        batch.columns.append(tuple(c[lo:hi] for c in cols))
        if outer is not None:
            batch.outer_bytes.append(int(outer_sums[g]))
    return batch


def _be16(h: np.ndarray, at: int) -> np.ndarray:
    return (h[:, at].astype(np.int64) << 8) | h[:, at + 1]
