"""The vectorised fast path: RTP over IPv4 or IPv6 UDP found and grouped with numpy.

Media is most of any call capture; reading its headers column-wise (one numpy gather
per field over every frame) instead of frame by frame is what makes `harness analyze`
faster than tshark. The test is RFC 7983's first byte (128-191) minus the RTCP packet
types (RFC 5761), the same demultiplexing the per-frame path applies. RTP relayed in
TURN ChannelData (RFC 8656 section 12.4) is found the same way, four bytes further in;
which peer a channel stands for is known only after the per-frame walk has read the
ChannelBind requests, so those groups carry their channel number and are resolved then.
The IP header may follow Ethernet (up to two VLAN tags, then up to two MPLS labels or a
PPPoE session header), Linux cooked v1 or v2 (what
`tcpdump -i any` writes), BSD loopback or nothing (raw IP): each frame is read as if its
IP header were at Ethernet's offset, so the header window and key columns are the same
for every link. IPv6 (without extension headers) has its own columns and groups, listed
after IPv4's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any, TypeVar

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

T = TypeVar("T", "RtpBatch", "FlowCounts")

ETH = 14
UDP_PAYLOAD = 42
UDP_PAYLOAD6 = ETH + 40 + 8
#: DNS, DHCP, NTP, NetBIOS, mDNS, LLMNR: their first byte can fall in RTP's range
SERVICE_PORTS = (53, 67, 68, 123, 137, 138, 5353, 5355)
#: flow key (addresses and ports, as net.decode builds it), IPv4 and IPv6
FLOW_COLUMNS = tuple(range(26, 38))
FLOW_COLUMNS6 = tuple(range(22, 58))


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
HEAD6 = UDP_PAYLOAD6 + 4 + 12
#: ethertypes that carry IP (VLAN tags, MPLS labels and PPPoE sessions before it)
IP_ETHERTYPES = (0x0800, 0x86DD, 0x8100, 0x88A8, 0x8847, 0x8848, 0x8864)
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
    not_ip, acks, plain, relayed, acks6, plain6, relayed6, rest, rest_times = _fastpath.scan(
        data, idx.offsets, idx.lengths, idx.links, idx.times
    )
    counted = _counts(acks, acks6)
    fast = FastPath(
        _batch(plain, plain6), _batch(relayed, relayed6), counted, memoryview(not_ip).cast("q")
    )
    fast.rest, fast.rest_times = memoryview(rest).cast("q"), memoryview(rest_times).cast("d")
    return fast


def _counts(*scanned: tuple) -> FlowCounts:
    """FlowCounts from `_fastpath.scan`'s acks of IPv4 and of IPv6, in that order."""
    out = FlowCounts(memoryview(b"".join(s[0] for s in scanned)).cast("q"))
    for _, keys, counts, first, last in scanned:
        out.keys += keys
        out.counts += counts
        out.first += first
        out.last += last
    return out


def _batch(*scanned: tuple) -> RtpBatch:
    """An RtpBatch from `_fastpath.scan`'s columns of IPv4 and of IPv6 (rows already in
    group order; IPv6's groups after IPv4's)."""
    batch = RtpBatch(memoryview(b"".join(s[0] for s in scanned)).cast("q"))
    for _, keys, bounds, no, t, seq, ts, pt, size, outer in scanned:
        batch.outer_bytes += outer or []
        if not keys:
            continue
        batch.keys += keys
        # memoryviews, not numpy: RtpStream.finish counts them in C (_rtpcount.c)
        cols = [memoryview(c).cast("d" if c is t else "q") for c in (no, t, seq, ts, pt, size)]
        batch.columns += [tuple(c[lo:hi] for c in cols) for lo, hi in pairwise(bounds)]
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
    """IP frames without options, extension headers or fragmentation only, after any
    link layer _ip_offsets knows; IPv4's groups, then IPv6's.

    One gather reads the first HEAD (HEAD6) bytes of every candidate frame, the tests
    below are column operations.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    eth = np.flatnonzero((idx.links == 1) & (idx.lengths >= ETH) & (idx.offsets <= len(raw) - ETH))
    et = _be16(np.stack((raw[idx.offsets[eth] + 12], raw[idx.offsets[eth] + 13]), axis=1), 0)
    not_ip = eth[~np.isin(et, IP_ETHERTYPES)]
    none = np.empty(0, dtype=np.int64)
    found = [(RtpBatch(none), RtpBatch(none), FlowCounts(none))] * 2
    ip, v6 = _ip_offsets(raw, idx)
    # each frame shifted so that its IP header is where Ethernet's would be
    base, lb = idx.offsets + ip - ETH, idx.lengths - (ip - ETH)
    for version, head, up in ((0, HEAD, UDP_PAYLOAD), (1, HEAD6, UDP_PAYLOAD6)):
        if len(raw) < head:
            continue
        ok = (ip >= 0) & (v6 == version) & (base >= 0) & (lb >= up + 12)
        cand = np.flatnonzero(ok & (base <= len(raw) - head))
        # Every head-byte window of the file as a row (a view, no copy); taking the rows
        # at the frame offsets copies only the headers.
        windows = np.lib.stride_tricks.as_strided(
            raw, shape=(len(raw) - head + 1, head), strides=(1, 1)
        )
        found[version] = _transports(
            windows[base[cand]], cand, lb[cand], times, version, raw, base[cand]
        )
    (plain, relayed, acks), (plain6, relayed6, acks6) = found
    return FastPath(
        _joined(plain, plain6), _joined(relayed, relayed6), _joined(acks, acks6), not_ip
    )


def _transports(
    h: np.ndarray,
    cand: np.ndarray,
    lengths: np.ndarray,
    times: np.ndarray,
    v6: int,
    raw: np.ndarray,
    base: np.ndarray,
) -> tuple[RtpBatch, RtpBatch, FlowCounts]:
    """Direct RTP, relayed RTP and bare ACKs among frames whose header windows are `h`
    (their IP header at ETH, the window at `base` in `raw`), IPv4 or IPv6."""
    if v6:
        plen = _be16(h, 18)
        ok = (h[:, 14] >> 4 == 6) & (plen <= lengths - ETH - 40) & (plen >= 20)
        l4, pay, proto, flow = ETH + 40, plen, h[:, 20], FLOW_COLUMNS6
    else:
        ok = (h[:, 14] == 0x45) & (((h[:, 20] & 0x3F) | h[:, 21]) == 0)
        total = _be16(h, 16)
        ok &= (total <= lengths - ETH) & (total >= 40)
        l4, pay, proto, flow = ETH + 20, total - 20, h[:, 23], FLOW_COLUMNS
    doff = (h[:, l4 + 12] >> 4).astype(np.int64) * 4
    bare = ok & (proto == 6) & (h[:, l4 + 13] & 0x07 == 0) & (doff >= 20) & (pay == doff)
    acks = _count(h[bare], cand[bare], flow)
    ok &= proto == 17
    ok &= ~np.isin(_be16(h, l4), SERVICE_PORTS) & ~np.isin(_be16(h, l4 + 2), SERVICE_PORTS)
    cand, h, pay, base = cand[ok], h[ok], pay[ok], base[ok]
    up = l4 + 8
    b0, b1 = h[:, up], h[:, up + 1]
    direct = (b0 >= 128) & (b0 <= 191) & ~((b1 >= 192) & (b1 <= 223)) & (pay >= 20)
    direct = _header_fits(raw, direct, base + up, b0, pay - 8)
    plain = _group(h[direct], cand[direct], pay[direct] - 8, times, up, [], flow)
    size = _be16(h, up + 2)
    i0, i1 = h[:, up + 4], h[:, up + 5]
    ch = (b0 >= 0x40) & (b0 <= 0x4F) & (size >= 12) & (size + 4 <= pay - 8)
    ch &= (i0 >= 128) & (i0 <= 191) & ~((i1 >= 192) & (i1 <= 223))
    ch = _header_fits(raw, ch, base + up + 4, i0, size)
    relayed = _group(h[ch], cand[ch], size[ch], times, up + 4, [up, up + 1], flow, pay[ch] - 8)
    return plain, relayed, acks


def _header_fits(
    raw: np.ndarray, rows: np.ndarray, at: np.ndarray, b0: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """rows & rtp.header_fits of each row: the RTP header at raw[at], whose first byte is
    b0, in a packet of n bytes that `rows` says lies in the frame (an extension's length
    is read past the header window, in the frame, so only there)."""
    hl = 12 + 4 * (b0 & 0x0F).astype(np.int64)
    x = (b0 & 0x10) != 0
    readable = rows & x & (hl + 4 <= n)
    pos = np.where(readable, at + hl + 2, 0)
    ext = np.where(readable, raw[pos].astype(np.int64) << 8 | raw[pos + 1], 0)
    return rows & np.where(x, readable & (hl + 4 + 4 * ext <= n), hl <= n)


def _joined(a: T, b: T) -> T:
    """IPv4's RtpBatch or FlowCounts followed by IPv6's: frames, then every list."""
    joined: dict[str, Any] = {
        f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(a)[1:]
    }
    return replace(a, frames=np.concatenate((a.frames, b.frames)).astype(np.int64), **joined)


def _ip_offsets(raw: np.ndarray, idx: FrameIndex) -> tuple[np.ndarray, np.ndarray]:
    """Where each frame's IP header starts, as net.decode finds it, or -1 (no IP, or an
    encapsulation left to the per-frame walk: more than two VLAN tags), and whether the
    link says IPv6 (1) or IPv4 (0); the header's own version is checked later."""
    off, links = idx.offsets, idx.links
    avail = np.maximum(np.minimum(idx.lengths, len(raw) - off), 0)  # bytes in the file
    ip = np.full(len(off), -1, dtype=np.int64)
    et = np.zeros(len(off), dtype=np.int64)
    if len(raw) < 2:  # no frame with a header fits
        return ip, et

    def be16(at: int, where: np.ndarray) -> np.ndarray:
        """The 16-bit value at `at` of each frame (0 where the frame is shorter)."""
        ok = where & (avail >= at + 2)
        pos = np.where(ok, off + at, 0)
        return np.where(ok, raw[pos].astype(np.int64) << 8 | raw[pos + 1], 0)

    def byte(at: int, where: np.ndarray) -> np.ndarray:
        ok = where & (avail >= at + 1)
        return np.where(ok, raw[np.where(ok, off + at, 0)], 0)

    def found(where: np.ndarray, at: int, types: np.ndarray) -> None:
        ip[where], et[where] = at, types[where]

    tagged = (links == 1) & (avail >= 14)  # Ethernet, then up to two VLAN tags
    for at in (12, 16, 20):
        types = be16(at, tagged)
        found(tagged & ~np.isin(types, VLAN), at + 2, types)
        tagged &= np.isin(types, VLAN) & (avail >= at + 6)

    def at_ip(extra: int, where: np.ndarray) -> np.ndarray:
        """The byte `extra` past each frame's IP offset so far (0 where it is past the end)."""
        ok = where & (avail >= ip + extra + 1)
        return np.where(ok, raw[np.where(ok, off + ip + extra, 0)], 0)

    # On Ethernet, MPLS: one or two labels, then IP by its version; a PPPoE session: PPP's
    # protocol (on other links, and deeper stacks, the walk reads them)
    ether = links == 1
    mpls = (et == 0x8847) & (ip >= 0) & ether
    for _ in range(2):
        mpls &= avail >= ip + 5
        bottom = mpls & (at_ip(2, mpls) & 1 == 1)
        ip[mpls] += 4
        version = at_ip(0, bottom)[bottom] >> 4
        et[bottom] = np.select([version == 4, version == 6], [0x0800, 0x86DD], 0)
        mpls &= ~bottom
    et[mpls] = 0  # a third label: left to the walk
    pppoe = (et == 0x8864) & (ip >= 0) & ether & (avail >= ip + 8)
    ppp = at_ip(6, pppoe).astype(np.int64) << 8 | at_ip(7, pppoe)
    et[pppoe] = np.select([ppp[pppoe] == 0x0021, ppp[pppoe] == 0x0057], [0x0800, 0x86DD], 0)
    ip[pppoe] += 8
    sll, sll2 = (links == LINK_SLL) & (avail >= 16), (links == LINK_SLL2) & (avail >= 20)
    found(sll, 16, be16(14, sll))
    found(sll2, 20, be16(0, sll2))
    bare = np.isin(links, LINK_RAW) & (avail >= 1)
    found(bare, 0, np.where(byte(0, bare) >> 4 == 4, 0x0800, 0x86DD))
    loop = np.isin(links, LINK_NULL) & (avail >= 4)
    family = np.where(byte(0, loop) != 0, byte(0, loop), byte(3, loop))
    found(loop, 4, np.where(family == 2, 0x0800, 0x86DD))
    ip[(et != 0x0800) & (et != 0x86DD)] = -1
    return ip, (et == 0x86DD).astype(np.int64)


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


def _count(h: np.ndarray, frames: np.ndarray, flow: tuple[int, ...]) -> FlowCounts:
    out = FlowCounts(frames)
    if not len(frames):
        return out
    keys, order, bounds = _keys(h, np.array(flow))
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
    flow: tuple[int, ...],
    outer: np.ndarray | None = None,
) -> RtpBatch:
    """Split frames per (flow key + `extra` key bytes + SSRC) into RTP columns."""
    batch = RtpBatch(frames)
    if not len(frames):
        return batch
    cols_at = np.array([*flow, *extra, *range(at + 8, at + 12)], dtype=np.int64)
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
