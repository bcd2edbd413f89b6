"""SDP line filing: the compiled scanner (`_sdpscan.c`) against the Python one, on the SDPs of
real captures and of tests/data/sdp, as they are and damaged.

Wherever the compiled scanner answers it must give what `sdp.scan_python` gives (line count,
attribute indexes in their keys' order, types, o=/c= lines, malformed lines, sections), and
its `clocks` what `sdp.clocks_python` gives; for a non-ASCII text both decline and the
Python ones read.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import sdp
from harness.analysis.analyzer import analyze_file
from harness.analysis.sdp import scan_python
from tests.fuzzing import examples

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CAPTURES = (
    DATA / "pcaps" / "aiortc-relayed.pcap",
    DATA / "pcaps" / "janus-dtmf-sip.pcap",
    DATA / "pcaps" / "sipp-tcp.pcap",
    DATA / "pcaps" / "sip-ws.pcap",
    DATA / "thirdparty" / "ndpi-sip.pcap",
)
compiled = pytest.mark.skipif(
    sdp._sdpscan is None,
    reason="harness/analysis/_sdpscan.c is not built (pip install -e . builds it)",
)


@functools.cache
def texts() -> list[str]:
    """The SDP texts of tests/data/sdp and of the captures (each distinct one once)."""
    seen: dict[str, None] = {}
    for f in sorted((DATA / "sdp").glob("*.json")):
        for d in json.loads(f.read_text())["descriptions"]:
            if d.get("sdp"):
                seen.setdefault(d["sdp"])
    for path in CAPTURES:
        for ev in analyze_file(path).sdp:
            seen.setdefault(ev.sdp.text)
    return list(seen)


def same(text: str) -> None:
    got, expected = sdp._sdpscan.scan(text), scan_python(text)
    clocks = sdp._sdpscan.clocks(text)
    if not text.isascii():
        assert got is None and clocks is None
        return
    assert clocks == sdp.clocks_python(text)
    assert got == expected
    # dicts compare without their order; the rules list attributes in the keys' order
    assert list(got[2]) == list(expected[2])
    assert [list(s[2]) for s in got[7]] == [list(s[2]) for s in expected[7]]


ODD = [
    "",
    "\n",
    "\r",
    "\r\n\r\n",
    "v=0",
    "m=",
    "m",
    "a=",
    "a",
    "a=:",
    "a=x:y:z",
    "x\nm=audio 1 RTP/AVP 0\ny\nA=x\n1=2\nc=IN IP4 1.2.3.4\nc=again\nc\nm\n",
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\no=second\r\nc=IN IP4 1.1.1.1\r\nc=x\r\na=group:BUNDLE 0"
    "\r\r\n\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:9\r\n"
    "a=mid\r\nm=video 0 RTP/AVP 96\ra=mid:1\r\n",
    "m=audio 1 RTP/AVP 0\na=rtpmap:0 PCMU/8000",
    "a=rtpmap:0 PCMU/8000\nm=audio 1 RTP/AVP 0\r\na=rtpmap:8 PCMA/8000/1\r\r\na=rtpmap:9 G/0"
    "\na=rtpmap:10 L/000\na=rtpmap:11 L/44100 \na=rtpmap:12  L/1\na=rtpmap:013 x/08\na=rtpmap:",
    "m=\na=rtpmap:1234567890123456789012 x/99999999999999999999/2\na=rtpmap:1 /1\na=rtpmap:2 x/",
    "v=0\nm=audio \u00b2 RTP/AVP 0\n",
    "v=0\na=x:\u00e9\n",
]


@compiled
@pytest.mark.parametrize("text", ODD)
def test_odd_texts(text: str) -> None:
    same(text)


@compiled
def test_real_sdps() -> None:
    assert len(texts()) > 20
    for text in texts():
        same(text)
        same(text.replace("\r\n", "\n"))


@compiled
def test_many_names() -> None:
    """More distinct names, short and long, than the scanner's table of interned names
    holds, twice over: names it finds there and names it makes are filed alike."""
    names = [f"x{i}" * (1 + i % 20) for i in range(1500)]
    text = "v=0\r\n" + "".join(f"a={n}:{i}\r\n" for i, n in enumerate(names))
    text += "m=audio 9 RTP/AVP 0\r\n" + "".join(f"a={n}\r\n" for n in reversed(names))
    same(text)
    same(text)


#: pieces that steer the scanner: line ends, types, separators, non-ASCII
TRICKY = st.sampled_from(
    ["\r", "\n", "\r\n", "\r\r\n", "\n\n", ":", " ", "\t", "=", "a=", "m=", "c=", "o=", "v="]
    + ["\na=", "\nm=", "\nc=", "\no=", "\nm=audio 9 RTP/AVP 0\n", "\na=mid:", "\x00", "\u00e9"]
    + ["\na=rtpmap:", "/", "0", "9", " 96 ", "/90000"]
)


@compiled
@examples(300)
@given(data=st.data())
def test_damaged_sdps(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(texts()))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 40)))
        text = text[:i] + data.draw(st.one_of(TRICKY, st.text(max_size=4))) + text[j:]
    same(text)
    same(text.encode("ascii", "replace").decode())


def test_parse_reads_the_same_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Sdp parsed from either scan has the same parts (`_parse` builds the sections)."""
    for text in texts()[:40] + ODD[:-2]:
        a = sdp.parse(text)
        assert a.media is not None  # parsed here, with the extension
        monkeypatch.setattr(sdp, "_sdpscan", None)
        b = sdp.parse(text)
        assert b.media is not None
        monkeypatch.undo()
        assert (a.media, a.session, a.origin, a.connection, a.types, a.malformed) == (
            b.media,
            b.session,
            b.origin,
            b.connection,
            b.types,
            b.malformed,
        )
        assert [(m.cline, m.lines, m._end, m._index) for m in a.media] == [
            (m.cline, m.lines, m._end, m._index) for m in b.media
        ]
        assert (a._index, a.body) == (b._index, b.body)
