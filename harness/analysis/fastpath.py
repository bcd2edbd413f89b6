"""The vectorised fast path: RTP over Ethernet/IPv4/UDP found and grouped with numpy.

Media is most of any call capture; reading its headers column-wise (one numpy gather
per field over every frame) instead of frame by frame is what makes `harness analyze`
faster than tshark. The test is RFC 7983's first byte (128-191) minus the RTCP packet
types (RFC 5761), the same demultiplexing the per-frame path applies. RTP relayed in
TURN ChannelData (RFC 8656 section 12.4) is found the same way, four bytes further in;
which peer a channel stands for is known only after the per-frame walk has read the
ChannelBind requests, so those groups carry their channel number and are resolved then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import as_strided

from harness.analysis.pcapio import FrameIndex
from harness.analysis.rtp import Columns

ETH = 14
UDP_PAYLOAD = 42
#: DNS, DHCP, NTP, NetBIOS, mDNS, LLMNR: their first byte can fall in RTP's range
SERVICE_PORTS = (53, 67, 68, 123, 137, 138, 5353, 5355)
#: flow key (addresses and ports, as net.decode builds it)
FLOW_COLUMNS = np.arange(26, 38)


@dataclass
class RtpBatch:
    """RTP frames taken by the fast path, split per key (flow [+ channel] + SSRC).

    `outer_bytes` is, per group, the UDP payload bytes of its frames (ChannelData
    headers included), for the TURN flow's byte count.
    """

    frames: np.ndarray
    keys: list[bytes] = field(default_factory=list)
    columns: list[Columns] = field(default_factory=list)
    outer_bytes: list[int] = field(default_factory=list)


HEAD = UDP_PAYLOAD + 4 + 12  # bytes read per frame: up to an RTP header inside ChannelData


def find_media(data: bytes, idx: FrameIndex, times: np.ndarray) -> tuple[RtpBatch, RtpBatch]:
    """(RTP directly over UDP, RTP in TURN ChannelData) of Ethernet/IPv4/UDP frames.

    Frames without options or fragmentation only; one gather reads the first HEAD
    bytes of every candidate frame, the tests below are column operations on it.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if len(raw) < HEAD:
        return RtpBatch(np.empty(0, dtype=np.int64)), RtpBatch(np.empty(0, dtype=np.int64))
    ok = (idx.links == 1) & (idx.lengths >= UDP_PAYLOAD + 12) & (idx.offsets <= len(raw) - HEAD)
    cand = np.flatnonzero(ok)
    # Every HEAD-byte window of the file as a row (a view, no copy); taking the rows at
    # the frame offsets copies only the headers.
    h = as_strided(raw, shape=(len(raw) - HEAD + 1, HEAD), strides=(1, 1))[idx.offsets[cand]]
    ok = (h[:, 12] == 8) & (h[:, 13] == 0) & (h[:, 14] == 0x45) & (h[:, 23] == 17)
    ok &= ((h[:, 20] & 0x3F) | h[:, 21]) == 0
    total = _be16(h, 16)
    ok &= (total <= idx.lengths[cand] - ETH) & (total >= UDP_PAYLOAD + 12 - ETH)
    ok &= ~np.isin(_be16(h, 34), SERVICE_PORTS) & ~np.isin(_be16(h, 36), SERVICE_PORTS)
    cand, h, total = cand[ok], h[ok], total[ok]
    b0, b1 = h[:, UDP_PAYLOAD], h[:, UDP_PAYLOAD + 1]
    direct = (b0 >= 128) & (b0 <= 191) & ~((b1 >= 192) & (b1 <= 223))
    plain = _group(h[direct], cand[direct], total[direct] - 28, times, UDP_PAYLOAD, [])
    size = _be16(h, UDP_PAYLOAD + 2)
    i0, i1 = h[:, UDP_PAYLOAD + 4], h[:, UDP_PAYLOAD + 5]
    ch = (b0 >= 0x40) & (b0 <= 0x4F) & (size >= 12) & (size + 4 <= total - 28)
    ch &= (i0 >= 128) & (i0 <= 191) & ~((i1 >= 192) & (i1 <= 223))
    channel = [UDP_PAYLOAD, UDP_PAYLOAD + 1]
    relayed = _group(h[ch], cand[ch], size[ch], times, UDP_PAYLOAD + 4, channel, total[ch] - 28)
    return plain, relayed


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
    cols_at = np.concatenate((FLOW_COLUMNS, np.array(extra, dtype=np.int64), at + np.arange(8, 12)))
    keys = np.ascontiguousarray(h[:, cols_at])
    # Group on a 64-bit digest of the key (fast to sort), then check it did not collide.
    digest = np.zeros(len(keys), dtype=np.uint64)
    for c in range(keys.shape[1]):
        digest = digest * np.uint64(1099511628211) + keys[:, c]
    unique, first, inverse = np.unique(digest, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if not np.array_equal(keys, keys[first][inverse]):  # a collision: group on the bytes
        width = keys.shape[1]
        _, first, inverse = np.unique(
            keys.view(np.dtype((np.void, width))).ravel(), return_index=True, return_inverse=True
        )
        inverse = inverse.ravel()
    seq = _be16(h, at + 2)
    ts = (_be16(h, at + 4) << 16) | _be16(h, at + 6)
    pt = (h[:, at + 1] & 0x7F).astype(np.int64)
    cols = (frames + 1, times[frames], seq, ts, pt, size)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=len(first)))))
    for g in range(len(first)):
        pick = order[bounds[g] : bounds[g + 1]]
        batch.keys.append(keys[first[g]].tobytes())
        batch.columns.append(tuple(c[pick] for c in cols))  # type: ignore[arg-type]
        if outer is not None:
            batch.outer_bytes.append(int(outer[pick].sum()))
    return batch


def _be16(h: np.ndarray, at: int) -> np.ndarray:
    return (h[:, at].astype(np.int64) << 8) | h[:, at + 1]
