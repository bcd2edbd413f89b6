"""The compiled bulk decode (_netdecode.c) answers exactly what net.decode answers.

It answers only the common case (Ethernet, VLAN tags, unfragmented IPv4 or IPv6 without
extension headers, UDP or TCP, or "other-transport" for any other protocol that is no
tunnel's) and None for the rest, which the walk decodes in Python.
Here every answer it gives is compared with net.decode on real captures, damaged where
the headers are, and the common case must actually be answered (a decoder that always
said None would be correct and useless).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import net, pcapio
from harness.analysis.pcapio import FrameIndex, ReadStats
from tests.fuzzing import SLOW, damaged_frames
from tests.relink import relinked

pytestmark = pytest.mark.skipif(
    net._netdecode is None,
    reason="harness/analysis/_netdecode.c is not built (pip install -e . builds it)",
)

DATA = Path(__file__).resolve().parents[1] / "data"
FILES = sorted(
    p for d in ("pcaps", "thirdparty") for p in (DATA / d).iterdir() if ".pcap" in p.suffix
)
#: TCP and UDP (aiortc-long), VLAN (zeek-http-vlan-0), IPv6 (zeek-ipv6), fragments (sipp),
#: MPLS (zeek-mixed-vlan-mpls)
IMAGES = {
    name: (DATA / name).read_bytes()
    for name in (
        "pcaps/aiortc-long.pcap",
        "thirdparty/zeek-http-vlan-0.pcap",
        "thirdparty/zeek-ipv6.pcap",
        "pcaps/sipp-udp-fragmented.pcap",
        "thirdparty/zeek-mixed-vlan-mpls.pcap",
    )
}
#: the call again behind two MPLS labels, and in a PPPoE session
IMAGES.update(
    {
        f"{kind}/aiortc-long": relinked(IMAGES["pcaps/aiortc-long.pcap"], kind)
        for kind in ("mpls", "pppoe")
    }
)


#: the links _netdecode.c reads (PPP, PKTAP, NFLOG and others are net.decode's alone)
COMPILED_LINKS = {1, 113, 276, 101, 12, 14, 228, 229, 0, 108}


def check(data: bytes, idx: FrameIndex) -> tuple[int, int, int]:
    """Compare every compiled answer with net.decode: (segments answered, segments,
    "other-transport" answers)."""
    todo = np.arange(len(idx), dtype=np.int64)
    answers = net.segments(data, idx, todo)
    assert len(answers) == len(idx)
    answered = segments = others = 0
    for i, seg in enumerate(answers):
        o, n, link = int(idx.offsets[i]), int(idx.lengths[i]), int(idx.links[i])
        decoded = net.decode(link, data[o : o + n])
        segments += type(decoded) is tuple
        if seg is not None:
            assert seg == decoded, f"frame {i + 1}"
            answered += type(seg) is tuple
            others += seg == "other-transport"
    return answered, segments, others


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_answer_matches_decode(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = path.read_bytes()
    idx = pcapio.index_frames(data, ReadStats())
    answered, segments, _ = check(data, idx)
    # Every segment of the common case is answered: on the links the compiled decode reads,
    # with no IPv6 extension header and in no tunnel (net.decode alone reads those: with
    # neither allowed, it gives no segment for them).
    frames = [data[int(o) :][: int(n)] for o, n in zip(idx.offsets, idx.lengths, strict=True)]
    monkeypatch.setattr(net, "TUNNELS", 0)
    monkeypatch.setattr(net, "_IPV6_EXT", frozenset())
    common = sum(
        int(link) in COMPILED_LINKS and type(net.decode(int(link), f)) is tuple
        for link, f in zip(idx.links, frames, strict=True)
    )
    assert answered == common


@SLOW
@given(st.sampled_from(sorted(IMAGES)), st.data())
def test_damaged_frames(name: str, data: st.DataObject) -> None:
    idx = pcapio.index_frames(IMAGES[name], ReadStats()).numpy()
    headers = [0, 1, 6, 0x11, 0x2C, 0x3A, 0x45, 0x4F, 0x60, 0x81, 0xDD, 0xFF]  # link, IP, L4
    image, lengths, links = damaged_frames(
        data, IMAGES[name], idx, 80, headers, [0, 1, 1, 12, 101, 108, 113, 228, 229, 276]
    )
    check(image, FrameIndex(idx.offsets, lengths, idx.times, links))


@pytest.mark.parametrize(
    ("name", "expected"),
    # IGMP (with IP options) and ICMP beside a call (janus-dtmf-sip); ICMP and ICMPv6 on a
    # Linux cooked v2 link (zeek-linux_dlt_sll2); OSPF between routers (tcpdump-erspan)
    [("pcaps/janus-dtmf-sip.pcap", 6), ("thirdparty/zeek-linux_dlt_sll2.pcap", 4),
     ("thirdparty/tcpdump-erspan-type-i-4.pcap", 16)],
)  # fmt: skip
def test_an_ip_packet_of_no_transport_is_answered_in_bulk(name: str, expected: int) -> None:
    """ICMP, IGMP and the like need no decode in Python: their reason comes in bulk (the
    same as net.decode's, compared in check)."""
    data = (DATA / name).read_bytes()
    idx = pcapio.index_frames(data, ReadStats())
    assert check(data, idx)[2] == expected


def test_bad_columns_are_errors_not_crashes() -> None:
    data = IMAGES["pcaps/aiortc-long.pcap"]
    idx = pcapio.index_frames(data, ReadStats()).numpy()
    decode = net._netdecode.segments
    with pytest.raises(IndexError):
        decode(data, idx.offsets, idx.lengths, idx.links, np.array([len(idx)], dtype=np.int64))
    with pytest.raises(ValueError):
        decode(data[:100], idx.offsets, idx.lengths, idx.links, np.arange(3, dtype=np.int64))
    with pytest.raises(ValueError):
        decode(data, idx.offsets[:1], idx.lengths, idx.links, np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError):
        decode(data, idx.offsets.astype(np.int32), idx.lengths, idx.links, idx.offsets[:0])
