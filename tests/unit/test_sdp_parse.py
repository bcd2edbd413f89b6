"""SDP parsing: read on first use, and what the analyzer's walk reads without parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.analysis.sdp import clocks_python, parse
from tests.fuzzing import sip_call_pcap

DATA = Path(__file__).parent.parent / "data" / "sdp"
TEXTS = [
    d["sdp"]
    for f in sorted(DATA.glob("*.json"))
    for d in json.loads(f.read_text())["descriptions"]
    if d.get("sdp")
]
ODD = [
    "v=0\na=rtpmap:0 PCMU/8000\nm=audio 1 RTP/AVP 0 8\na=rtpmap:8 PCMA/8000",
    "v=0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\r\n\r\nm=video 2 RTP/AVP 97\r\n"
    "a=rtpmap:97 VP8/90000\r",
    "m=audio 1 RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=rtpmapx:1 y\na=rtpmap:",
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
    "",
]


def clock(rtpmap: str) -> list[tuple[int, int]]:
    """What one a=rtpmap value says of its type's clock (as the walk read each before)."""
    pt, _, enc = rtpmap.partition(" ")
    parts = enc.split("/")
    rate = parts[1] if len(parts) > 1 else ""
    if (pt + rate).isascii() and pt.isdigit() and rate.isdigit() and int(rate):
        return [(int(pt), int(rate))]
    return []


@pytest.mark.parametrize(
    "text",
    TEXTS
    + ODD
    + [
        "m=audio 1 RTP/AVP 96 97 98 99\na=rtpmap:96 x/0\na=rtpmap:97 x/00/2\na=rtpmap:98 y/08000"
        "\na=rtpmap:99 z/8000 \na=rtpmap:0100 PCMU/8000/1\r\r\na=rtpmap:\u00b9 x/8000",
        "v=0\nm=audio 1 RTP/AVP 1\na=rtpmap:123456789012345678901234 x/98765432109876543210\n",
    ],
)
def test_clocks_read_off_the_text_are_the_parsed_ones(text: str) -> None:
    parsed = [c for m in parse(text).media for _, v in m.attrs("rtpmap") for c in clock(v)]
    assert clocks_python(text) == parsed


@pytest.mark.parametrize("text", TEXTS + ODD)
def test_lines_and_body_as_read(text: str) -> None:
    """Numbered lines skip blank ones; sections list theirs after the m= line; the body is
    every line but o= (session part, then sections)."""
    sdp = parse(text)
    lines = [line.rstrip("\r") for line in text.replace("\r\n", "\n").split("\n")]
    numbered = [(no, t) for no, t in enumerate(lines, start=1) if t]
    got = [*sdp.session, *(x for m in sdp.media for x in (m.line, *m.lines))]
    assert got == numbered
    assert all(m.line[1].startswith("m=") for m in sdp.media)
    assert not any(t.startswith("m=") for _, t in sdp.session)
    body = "\n".join(t for _, t in sdp.session if not t.startswith("o="))
    body += "\n".join(t for m in sdp.media for _, t in (m.line, *m.lines))
    assert sdp.body == body


def test_parse_raises_where_reading_would() -> None:
    """A port of non-ASCII digits passes str.isdigit() but not int(): parse says so at once,
    as it did when it read every line there and then."""
    with pytest.raises(ValueError):
        parse("v=0\r\nm=audio \u00b2 RTP/AVP 0\r\n")
    assert parse("v=0\r\nm=audio 9 RTP/AVP \u00b2\r\n").media[0].formats == ["\u00b2"]
    assert parse("v=0\r\nm=audio x RTP/AVP 0\r\n").media[0].port == -1


def test_parsed_parts_are_read_once() -> None:
    sdp = parse(TEXTS[0])
    media = sdp.media
    assert sdp.media is media and sdp.session is sdp.session
    assert sdp.attrs("group") and media[0].attr("mid") is not None


@pytest.mark.parametrize(
    "body",
    [
        "v=0\r\nm=audio \u00b2 RTP/AVP 96\r\na=rtpmap:96 opus/48000\r\n",
        "v=0\r\nm=audio 5000 RTP/AVP 96 97\r\na=rtpmap:96 opus/48000\r\na=rtpmap:97 x/\u00b2\r\n",
    ],
)
def test_the_walk_counts_an_sdp_it_cannot_read(body: str) -> None:
    """Parsing waits for the end of the walk, but an SDP that reading would fail on (an m=
    port of digits int() refuses) is still a crash of its frame there (counted, no SDP
    event). An rtpmap clock rate of such digits is no number: the SDP is read, that
    payload type's rate unknown, the others' known."""
    from harness.analysis.analyzer import analyze_bytes
    from harness.analysis.report import summary
    from harness.analysis.session import build

    a = analyze_bytes(sip_call_pcap(body.encode()))
    port = "m=audio \u00b2" in body
    assert a.malformed["crash:ValueError"] == port and len(a.sdp) == (not port)
    rtp = summary(build(a))["rtp"]
    assert [r["clock_rate_known"] for r in rtp] == ["a=rtpmap:97" in body]
