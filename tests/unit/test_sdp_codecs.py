"""A section's codec lines read once per distinct set: what is shared is what those lines
decide, and nothing else of the SDP or of an earlier capture leaks into a finding."""

from __future__ import annotations

import pytest

from harness.analysis import sdp_codecs
from harness.analysis.memo import Memo
from harness.analysis.sdp import parse
from harness.analysis.sdp_rules import payload_types
from harness.analysis.sdplint import lint

CALL = """v=0\r
o=- {id} 1 IN IP4 198.18.0.10\r
s=-\r
t=0 0\r
m=audio {port} RTP/AVP 111 0 97 96\r
c=IN IP4 198.18.0.10\r
a=ice-ufrag:{ufrag}\r
{extra}a=rtpmap:111 opus/48000/2\r
a=rtpmap:97 rtx/48000\r
a=fmtp:97 apt=95\r
a=rtcp-fb:98 nack\r
"""


def call(n: int, extra: str = "") -> str:
    return CALL.format(id=n, port=5000 + n, ufrag=f"u{n:04d}", extra=extra)


def test_calls_that_repeat_codec_lines_share_their_reading() -> None:
    a, b = parse(call(1)).media[0], parse(call(2)).media[0]
    assert a.codec_lines is b.codec_lines
    assert a.codecs == {"111": "opus/48000/2", "0": "0", "97": "rtx/48000", "96": "96"}
    assert a.codec_lines.names == {"opus", "pcmu", "rtx", "96"}
    with pytest.raises(TypeError):  # shared: no caller may change it
        a.codec_lines.codec_map["0"] = "x"  # type: ignore[index]
    # a finding about the section quotes each call's own m= line
    for n in (1, 2):
        unmapped = [f for f in lint(parse(call(n)), "offer", "sip") if "dynamic" in f.message]
        assert [(f.line_no, f.line) for f in unmapped] == [
            (5, f"m=audio {5000 + n} RTP/AVP 111 0 97 96")
        ]


def test_the_same_lines_at_other_numbers_are_read_again() -> None:
    """Findings quote line numbers: a set moved down by a line is another set."""
    first = [(f.line_no, f.line) for f in payload_types(parse(call(1)).media[0])]
    assert first == [(11, "a=rtcp-fb:98 nack"), (10, "a=fmtp:97 apt=95")]
    moved = parse(call(3, extra="a=sendrecv\r\n")).media[0]
    got = [(f.line_no, f.line) for f in payload_types(moved)]
    assert got == [(12, "a=rtcp-fb:98 nack"), (11, "a=fmtp:97 apt=95")]


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdp_codecs, "_memo", Memo(sdp_codecs._read, limit=3))
    for n in range(10):
        lines = parse(call(1).replace("111", str(100 + n))).media[0].codec_lines
        assert str(100 + n) in lines.codec_map and len(sdp_codecs._memo) <= 3
