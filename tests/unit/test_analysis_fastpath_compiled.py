"""The compiled fast path (`_fastpath.c`) against the numpy one, on damaged real captures.

Both must take the same frames, make the same groups in the same order and give the
same columns (values and dtypes): `harness analyze` prints the same either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import fastpath, pcapio
from harness.analysis.pcapio import FrameIndex, ReadStats
from tests.fuzzing import SLOW, damaged_frames
from tests.relink import ipv6, relinked

pytestmark = pytest.mark.skipif(
    fastpath._fastpath is None,
    reason="harness/analysis/_fastpath.c is not built (pip install -e . builds it)",
)

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
#: plain RTP and TCP (aiortc-long), RTP in TURN ChannelData (aiortc-relayed)
IMAGES = {name: (PCAPS / name).read_bytes() for name in ("aiortc-long.pcap", "aiortc-relayed.pcap")}


def same(a: fastpath.FastPath, b: fastpath.FastPath) -> None:
    def eq(x: np.ndarray, y: np.ndarray) -> bool:
        x, y = np.asarray(x), np.asarray(y)  # the compiled side's frames are memoryviews
        return x.dtype == y.dtype and np.array_equal(x, y)

    assert eq(a.not_ip, b.not_ip)
    assert eq(a.rest, b.rest) and eq(a.rest_times, b.rest_times)
    assert eq(a.acks.frames, b.acks.frames)
    assert (a.acks.keys, a.acks.counts, a.acks.first, a.acks.last) == (
        b.acks.keys,
        b.acks.counts,
        b.acks.first,
        b.acks.last,
    )
    for x, y in ((a.rtp, b.rtp), (a.relayed, b.relayed)):
        assert eq(x.frames, y.frames)
        assert (x.keys, x.outer_bytes) == (y.keys, y.outer_bytes)
        assert len(x.columns) == len(y.columns)
        for cx, cy in zip(x.columns, y.columns, strict=True):
            assert all(eq(u, v) for u, v in zip(cx, cy, strict=True))


@SLOW
@given(st.sampled_from(sorted(IMAGES)), st.data())
def test_compiled_fast_path_matches_numpy(name: str, data: st.DataObject) -> None:
    idx = pcapio.index_frames(IMAGES[name], ReadStats()).numpy()
    # Damage headers where the tests look (first 58 bytes of frames), and anywhere.
    headers = [0, 1, 6, 8, 17, 0x40, 0x45, 0x80, 0xC8, 0xFF]
    image, lengths, links = damaged_frames(data, IMAGES[name], idx, 60, headers, [0, 1, 1, 113])
    cut = data.draw(st.integers(24, len(image)))  # frames past the end: the window rule
    keep = idx.offsets + lengths <= cut
    damaged = FrameIndex(idx.offsets[keep], lengths[keep], idx.times[keep], links[keep])
    raw = bytes(image[:cut])
    same(fastpath.find_media(raw, damaged), fastpath.find_media_numpy(raw, damaged))


def test_same_service_ports() -> None:
    assert fastpath._fastpath.SERVICE_PORTS == fastpath.SERVICE_PORTS


def test_many_groups_and_tiny_files() -> None:
    """Thousands of streams (the group table grows), and files shorter than one header."""
    image = IMAGES["aiortc-long.pcap"]
    idx = pcapio.index_frames(image, ReadStats())
    raw = bytearray(image)
    for j, off in enumerate(idx.offsets.tolist()):  # a new SSRC for every frame
        raw[off + 50 : off + 54] = j.to_bytes(4, "big")
    a = fastpath.find_media(bytes(raw), idx)
    same(a, fastpath.find_media_numpy(bytes(raw), idx))
    assert len(a.rtp.keys) > 1000
    for size in (0, 20, 57):
        tiny = FrameIndex(*(np.zeros(1, dtype=t) for t in (np.int64, np.int64, float, np.int64)))
        tiny.lengths[0], tiny.links[0] = size, 1
        data = bytes(size)
        same(fastpath.find_media(data, tiny), fastpath.find_media_numpy(data, tiny))


#: the relayed call as `tcpdump -i any` (Linux cooked v1 and v2), behind VLAN tags, MPLS
#: labels or in a PPPoE session, and as raw IP and loopback captures would have recorded it
RELINKED = {
    kind: relinked(IMAGES["aiortc-relayed.pcap"], kind)
    for kind in ("sll", "sll2", "vlan", "qinq", "mpls", "pppoe", "raw", "loop", "null")
}
#: and both calls over IPv6, on Ethernet and as `tcpdump -i any` writes them
RELINKED |= {f"{name} ipv6": ipv6(image) for name, image in IMAGES.items()}
RELINKED["sll ipv6"] = relinked(RELINKED["aiortc-relayed.pcap ipv6"], "sll")


@SLOW
@given(st.sampled_from(sorted(RELINKED)), st.data())
def test_compiled_fast_path_matches_numpy_on_other_links(kind: str, data: st.DataObject) -> None:
    image = RELINKED[kind]
    idx = pcapio.index_frames(image, ReadStats()).numpy()
    headers = [0, 1, 2, 6, 8, 0x11, 0x21, 0x40, 0x45, 0x47, 0x57, 0x60, 0x64, 0x80, 0x81, 0x86]
    headers += [0x88, 0xA8, 0xDD, 0xFF]
    links = [0, 1, 12, 101, 108, 113, 228, 229, 276, int(idx.links[0])]
    image, lengths, links = damaged_frames(data, image, idx, 80, headers, links)
    damaged = FrameIndex(idx.offsets, lengths, idx.times, links)
    same(fastpath.find_media(image, damaged), fastpath.find_media_numpy(image, damaged))
