"""The compiled JSEP scan (_jsepscan.c) answers what `http.signalling` reads, or nothing.

Wherever `_jsepscan.jsep` answers, its (type, sdp, session) must be what
`http.jsep_read_python` takes from json's decoding; it may decline (None) anything. Real
Janus bodies, hand-made ones at each rule, generated JSON and damaged bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import http
from harness.analysis.analyzer import analyze_file
from tests.fuzzing import FAST, SLOW

pytestmark = pytest.mark.skipif(
    http._jsepscan is None, reason="harness/analysis/_jsepscan.c is not built"
)
ROOT = Path(__file__).resolve().parents[2]
#: JSEPs over HTTP: aiortc's signalling, and Janus's (one call of the benchmark's case c)
CAPTURES = [
    ROOT / "tests" / "data" / "pcaps" / name
    for name in ("aiortc-direct.pcap", "aiortc-long.pcap", "aiortc-relayed.pcap")
] + [ROOT / "benchmarks" / "data" / "janus-sip-relayed.pcap"]


def check(body: bytes) -> bool:
    """The compiled answer is the reference's, if any; whether it answered."""
    got = http._jsepscan.jsep(body)
    assert got is None or got == http.jsep_read_python(body), body
    return got is not None


def jsep_bodies() -> list[bytes]:
    """The JSON bodies of the captures that the walk found a "jsep" in."""
    seen: list[bytes] = []
    real = http.signalling

    def record(body: bytes) -> Any:
        seen.append(body)
        return real(body)

    http.signalling = record
    try:
        for path in CAPTURES:
            analyze_file(path)
    finally:
        http.signalling = real
    return seen


def test_real_bodies_are_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "jsep_read", lambda body: None)  # every body to signalling
    bodies = jsep_bodies()
    assert len([b for b in bodies if http.jsep_read_python(b)]) >= 8
    assert all(check(b) for b in bodies if http.jsep_read_python(b))
    assert any(b.lstrip().startswith(b"[") for b in bodies)  # a long poll's batch


SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    "doc",
    [
        {"janus": "event", "session_id": 12, "jsep": {"type": "offer", "sdp": SDP}},
        {"janus": "event", "sender": 7, "session_id": 0, "jsep": {"sdp": SDP}},
        {"session_id": "", "sender": "abc", "jsep": {"type": "answer", "sdp": ""}},
        {"session_id": None, "sender": False, "jsep": {"type": "x", "sdp": '\t"\\/\b\f'}},
        {"session_id": -5, "jsep": {"type": "offer", "sdp": SDP}, "n": [1.5e3, -0, 0.25]},
        [{"janus": "ack"}, 3, {"jsep": 1}, {"jsep": {"sdp": SDP}, "sender": 4}, {"jsep": {}}],
        [{"a": [[], {}, "x"]}, {"jsep": {"type": "offer", "sdp": SDP}, "session_id": 99}],
    ],
)
def test_answered(doc: object) -> None:
    for text in (
        json.dumps(doc),
        json.dumps(doc, indent=3),
        json.dumps(doc, separators=(",", ":")),
    ):
        assert check(text.encode()), text
        assert check(b"\x0b \n" + text.encode() + b"\r\n\x0c"), text


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "session_id": true}',  # str(True)
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "session_id": 1.5}',  # repr of a float
        b'{"jsep": {"type": null, "sdp": "v=0"}}',  # str(None)
        b'{"jsep": {"type": "offer", "sdp": "v=\\u0030"}}',  # a \u escape in the SDP
        b'{"js\\u0065p": {"type": "offer", "sdp": "v=0"}}',  # a key spelled with \u
        b'{"jsep": {"type": "offer", "sdp": "v=0\xc3\xa9"}}',  # UTF-8
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "jsep": 1}',  # the last one counts
        b'{"jsep": {"type": "offer", "sdp": 1}}',
        b'[{"jsep": {"type": "offer"}}, {"jsep": {"sdp": "v=0"}}]',  # the first JSEP counts
        b'{"jsep": {"type": "offer", "sdp": "v=0"}} x',
        b'{"jsep": {"type": "offer", "sdp": "v=0"},}',
        b'{"jsep": {"type": "offer", "sdp": "v=0\x01"}}',
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "n": 01}',
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "n": 1.}',
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "n": -}',
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "n": "\\x"}',
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "n": ' + b"1" * 1001 + b"}",
        b'{"jsep": {"type": "offer", "sdp": "v=0"}, "n": ' + b"[" * 70 + b"]" * 70 + b"}",
        b'{"jsep": {"type": "offer", "sdp": "v=0"}',
        b"",
        b"{",
        b"[]",
    ],
)
def test_declined(body: bytes) -> None:
    assert http._jsepscan.jsep(body) is None
    assert http.jsep_read(body) is None
    check(body)


def test_numbers_and_words_are_read_as_json_reads_them() -> None:
    for value in (b"NaN", b"-Infinity", b"Infinity", b"1e5", b"1E+5", b"-0.5e-3", b"1e", b"2E+"):
        body = b'{"n": ' + value + b', "jsep": {"type": "offer", "sdp": "v=0"}, "sender": 3}'
        assert check(body) == (http.jsep_read_python(body) is not None), body


def _values() -> st.SearchStrategy[Any]:
    text = st.text(st.sampled_from('ab"\\/\r\n\t\x08\x0c\x01é'), max_size=6)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), text)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(
                st.sampled_from(["jsep", "type", "sdp", "sender", "x"]), inner, max_size=4
            ),
        ),
        max_leaves=12,
    )


@FAST
@given(_values(), st.sampled_from([None, 0, 3, (",", ":")]), st.booleans())
def test_generated_json(doc: Any, indent: Any, ascii_only: bool) -> None:
    if isinstance(indent, tuple):
        text = json.dumps(doc, separators=indent, ensure_ascii=ascii_only)
    else:
        text = json.dumps(doc, indent=indent, ensure_ascii=ascii_only)
    check(text.encode("utf-8", "surrogatepass"))
    body = {"janus": "event", "session_id": doc, "jsep": {"type": "offer", "sdp": SDP}, "x": doc}
    check(json.dumps(body, allow_nan=True).encode())


@SLOW
@given(st.data())
def test_damaged_bodies(data: st.DataObject) -> None:
    body = bytearray(
        json.dumps({"janus": "event", "sender": 8, "jsep": {"type": "offer", "sdp": SDP}}).encode()
    )
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        op = data.draw(st.sampled_from(["set", "cut", "insert"]))
        byte = data.draw(st.sampled_from(b'{}[]",:\\ \x00\x0babu0-.eE9\x80tfn'))
        if op == "set":
            body[at] = byte
        elif op == "cut":
            del body[at]
        else:
            body.insert(at, byte)
    check(bytes(body))


def test_every_separator_replaced_is_read_as_json_reads_it() -> None:
    """A comma or colon of a real body replaced (by a blank, a semicolon, a letter, the
    other separator) or removed: the scan declines or gives json's answer, at each one."""
    body = json.dumps(
        [{"janus": "ack"}, {"janus": "event", "sender": 8, "jsep": {"type": "offer", "sdp": SDP}}]
    ).encode()
    seps = [i for i, c in enumerate(body) if c in b",:"]
    assert len(seps) > 6
    for at in seps:
        for byte in (b" ", b";", b"a", b":" if body[at] == ord(",") else b",", b""):
            check(body[:at] + byte + body[at + 1 :])
