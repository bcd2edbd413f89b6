"""rtp.parse_rtcp against an independent oracle: compounds of SR/RR packets built by aiortc.

aiortc writes the report blocks (cumulative loss as a signed 24-bit number, RFC 3550
6.4.1); the parser must read back what it wrote, and for SRTCP only each compound's
first header, which is all that is in the clear.
"""

from __future__ import annotations

from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtcpSenderInfo, RtcpSrPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.analysis import rtp

u32 = st.integers(0, 2**32 - 1)
blocks = st.builds(
    RtcpReceiverInfo,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-(2**23), 2**23 - 1),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
reports = st.lists(blocks, max_size=31)
sender = st.builds(RtcpSenderInfo, u32, u32, u32, u32)
packets = st.one_of(
    st.builds(RtcpRrPacket, ssrc=u32, reports=reports),
    st.builds(RtcpSrPacket, ssrc=u32, sender_info=sender, reports=reports),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, min_size=1, max_size=4), st.booleans())
def test_reports_read_back_as_aiortc_wrote_them(
    compound: list[RtcpRrPacket | RtcpSrPacket], encrypted: bool
) -> None:
    got = rtp.parse_rtcp(b"".join(bytes(p) for p in compound), encrypted)
    want = compound[:1] if encrypted else compound
    assert [(g.type, g.ssrc) for g in got] == [
        ("SR" if isinstance(p, RtcpSrPacket) else "RR", p.ssrc) for p in want
    ]
    for g, p in zip(got, want, strict=True):
        assert g.reports == (
            []
            if encrypted
            else [
                {
                    "ssrc": r.ssrc,
                    "fraction_lost": r.fraction_lost,
                    "cumulative_lost": r.packets_lost,
                    "jitter": r.jitter,
                }
                for r in p.reports
            ]
        )
