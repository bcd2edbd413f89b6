"""The vectorised fast path: RTP over Ethernet/IPv4/UDP found and grouped with numpy.

Media is most of any call capture; reading its headers column-wise (one numpy gather
per field over every frame) instead of frame by frame is what makes `harness analyze`
faster than tshark. The test is RFC 7983's first byte (128-191) minus the RTCP packet
types (RFC 5761), the same demultiplexing the per-frame path applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.analysis.pcapio import FrameIndex
from harness.analysis.rtp import Columns
from harness.lazy import lazy

np = lazy("numpy")  # imported on first use: `harness validate` never needs it

ETH = 14
#: flow key (addresses and ports, as net.decode builds it) followed by the SSRC
KEY_COLUMNS = (*range(26, 38), *range(50, 54))


@dataclass
class RtpBatch:
    """RTP frames taken by the fast path, split per (flow key + SSRC)."""

    frames: np.ndarray
    keys: list[bytes] = field(default_factory=list)
    columns: list[Columns] = field(default_factory=list)


def find_rtp(data: bytes, idx: FrameIndex, times: np.ndarray) -> RtpBatch:
    """Every Ethernet/IPv4 (no options, no fragment)/UDP frame carrying RTP."""
    cand = np.flatnonzero((idx.links == 1) & (idx.lengths >= 54))
    if not len(cand):
        return RtpBatch(cand)
    raw = np.frombuffer(data, dtype=np.uint8)
    base = idx.offsets[cand]
    b0, b1 = raw[base + 42], raw[base + 43]
    ok = (b0 >= 128) & (b0 <= 191) & ~((b1 >= 192) & (b1 <= 223))
    ok &= (_be16(raw, base, 12) == 0x0800) & (raw[base + 14] == 0x45) & (raw[base + 23] == 17)
    ok &= (_be16(raw, base, 20) & 0x3FFF) == 0
    total = _be16(raw, base, 16)
    ok &= (total >= 40) & (total <= idx.lengths[cand] - ETH)
    frames, base, total, b1 = cand[ok], base[ok], total[ok], b1[ok]
    batch = RtpBatch(frames)
    if not len(frames):
        return batch
    keys = np.ascontiguousarray(raw[base[:, None] + np.array(KEY_COLUMNS)])
    unique, inverse = np.unique(keys.view(np.dtype((np.void, 16))).ravel(), return_inverse=True)
    seq = _be16(raw, base, 44)
    ts = (_be16(raw, base, 46) << 16) | _be16(raw, base, 48)
    cols = (frames + 1, times[frames], seq, ts, (b1 & 0x7F).astype(np.int64), total - 28)
    order = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse.ravel(), minlength=len(unique)))))
    for g, key in enumerate(unique):
        pick = order[bounds[g] : bounds[g + 1]]
        batch.keys.append(key.tobytes())
        batch.columns.append(tuple(c[pick] for c in cols))  # type: ignore[arg-type]
    return batch


def _be16(raw: np.ndarray, base: np.ndarray, at: int) -> np.ndarray:
    return (raw[base + at].astype(np.int64) << 8) | raw[base + at + 1]
