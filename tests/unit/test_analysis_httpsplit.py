"""HTTP framing: the compiled reader (`_httpsplit.c`) against the Python one, on damaged
real streams, and the Python reader resumed segment by segment against one read.

The streams are the HTTP directions of real captures (Janus' REST API with chunked
replies, a WebSocket upgrade, plain HTTP from a third-party capture) as the analyser
reassembles them. Wherever the compiled reader answers, it must give the same messages
and the same byte count as `read_http_python`; where it declines, the Python one reads.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.analysis import http
from harness.analysis.analyzer import analyze_file
from harness.analysis.http import HttpMessage, read_http, read_http_python

SCALE = float(os.environ.get("HARNESS_FUZZ_SCALE", "1"))  # e.g. 20 for a long hunt
ROOT = Path(__file__).resolve().parents[2]
CAPTURES = (
    ROOT / "benchmarks" / "data" / "janus-sip-relayed.pcap",  # Janus HTTP, chunked replies
    ROOT / "tests" / "data" / "pcaps" / "sip-ws.pcap",  # a WebSocket upgrade
    ROOT / "tests" / "data" / "thirdparty" / "zeek-http-vlan-0.pcap",  # plain HTTP
)
compiled = pytest.mark.skipif(
    http._httpsplit is None,
    reason="harness/analysis/_httpsplit.c is not built (pip install -e . builds it)",
)


@functools.cache
def streams() -> list[bytes]:
    """Buffers the analyser hands to read_http in the captures that hold a whole message."""
    seen: dict[bytes, None] = {}
    real, real_bodies = http.read_http, http.read_bodies

    def record(
        buf: bytes | bytearray, head: http._Head | None
    ) -> tuple[list[HttpMessage], int, http._Head | None]:
        seen.setdefault(bytes(buf))
        return real(buf, head)

    def record_bodies(
        buf: bytes | bytearray, head: http._Head | None
    ) -> tuple[int, int, http._Head | None, bool, list[bytes]]:
        seen.setdefault(bytes(buf))
        return real_bodies(buf, head)

    http.read_http = record
    http.read_bodies = record_bodies
    try:
        for path in CAPTURES:
            analyze_file(path)
    finally:
        http.read_http = real
        http.read_bodies = real_bodies
    whole = [b for b in seen if read_http_python(b, None)[0]]  # a message or more
    return whole[:: max(1, len(whole) // 300)]


#: bytes that steer the readers: line ends, separators, hex digits, non-ASCII, white space
TRICKY = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b":", b" ", b"\t", b"\x0b", b"\x1c", b";", b"0"]
    + [b"a", b"F", b"x", b"-", b"+", b"_", b"\x80", b"\xb2", b"\xa0", b"\xff", b"\x00"]
    + [b"chunked", b"Content-Length: ", b"Transfer-Encoding: chunked", b"Upgrade: websocket"]
    + [b"HTTP/1.1 101 ", b"101", b"0\r\n\r\n", b"99999999999999999999", b"7fffffffffffffff"]
    + [b"\r\nContent-Length: 3", b"\r\nTransfer-Encoding: chunked"]
)
#: header lines whose names and values need str.strip()'s and str.lower()'s rules
HEADERS = st.sampled_from(
    [
        b"\x1cContent-LENGTH\x0b:\x1f3\x1d",
        b"content-length: 0",
        b"Content-Length",
        b"\rContent-Length:1",
    ]
    + [b"\x0cTransfer-Encoding\t:\x1eChunKed ", b"transfer-encoding: gzip", b"Content-Length: 12"]
    + [b"Upgrade:\x1cWebSocket\x1c", b"UPGRADE : x", b" upgrade: websocket\n", b"X: \xe9"]
    + [b"Transfer-Encoding: chunked", b"Content-Length:\t7 ", b"Content-Length: 1\x85"]
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A real stream with a few bytes overwritten, inserted or cut, maybe ended early."""
    b = bytearray(draw(st.sampled_from(streams())))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(b)))
        what = draw(st.sampled_from(["set", "insert", "cut", "header"]))
        piece = draw(TRICKY | st.binary(min_size=1, max_size=4))
        ends = [i for i in range(len(b)) if b[i : i + 4] == b"\r\n\r\n"]
        lines = [i for i in range(len(b)) if b[i : i + 2] == b"\r\n"]
        if what == "header" and lines:  # a header line: the last of a head, or anywhere
            last_of_head = bool(ends) and draw(st.booleans())  # drawn only if there are ends
            at = draw(st.sampled_from(ends if last_of_head else lines))
            b[at:at] = b"\r\n" + draw(HEADERS)
        elif what == "set" and at < len(b):
            b[at : at + len(piece)] = piece[: len(b) - at]
        elif what == "insert":
            b[at:at] = piece
        else:
            del b[at : at + draw(st.integers(1, 64))]
    if draw(st.booleans()):  # half of them end early, anywhere
        del b[draw(st.integers(0, len(b))) :]
    return bytes(b)


def test_real_streams_are_read_by_both() -> None:
    """Undamaged, the compiled reader takes every stream itself, with the same result."""
    assert len(streams()) >= 20
    chunked = 0
    for b in streams():
        expected = read_http_python(b, None)[:2]
        assert read_http(b, None)[:2] == expected
        if http._httpsplit is not None:
            assert http._httpsplit.split_http(b, HttpMessage) == expected
        chunked += any(b"chunked" in m.head.lower() for m in expected[0])
    assert chunked  # the Janus replies: chunked bodies are covered


@compiled
@settings(
    max_examples=int(400 * SCALE),
    deadline=None,
    derandomize=SCALE == 1,  # CI: the same examples every run; a long hunt: fresh ones
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged())
def test_compiled_matches_python_on_damaged_streams(b: bytes) -> None:
    try:
        expected = read_http_python(b, None)[:2]
    except ValueError:  # int() of a latin-1 digit such as "²": the caller counts a crash
        assert http._httpsplit.split_http(b, HttpMessage) is None
        return
    got = http._httpsplit.split_http(b, HttpMessage)
    assert got is None or got == expected
    assert read_http(b, None)[:2] == expected
    assert http._httpsplit.split_http(bytearray(b), HttpMessage) == got


@settings(
    max_examples=int(150 * SCALE),
    deadline=None,
    derandomize=SCALE == 1,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged(), st.lists(st.integers(1, 400), min_size=1, max_size=40))
def test_resumed_reading_matches_one_read(b: bytes, cuts: list[int]) -> None:
    """Segment by segment with the kept head, as tcpstreams feeds it, or whole each time."""

    def run(resume: bool) -> list[HttpMessage]:
        buf, head, out, at = bytearray(), None, [], 0
        for n in [*cuts, len(b)]:
            buf += b[at : at + n]
            at += n
            msgs, used, kept = read_http_python(buf, head if resume else None)
            head = kept
            out += msgs
            del buf[:used]
            if msgs and msgs[-1].is_upgrade_to_websocket:
                break
        return out

    try:
        whole = run(False)
    except ValueError:
        return
    assert run(True) == whole


def bodies_python(b: bytes) -> tuple[int, int, bool, list[bytes]]:
    """`read_bodies_python` without the head it keeps (the compiled reader keeps none)."""
    count, used, _, upgrade, found = http.read_bodies_python(b, None)
    return count, used, upgrade, found


def compiled_bodies(b: bytes | bytearray) -> tuple[int, int, bool, list[bytes]] | None:
    """`_httpsplit.bodies` where it reads the input itself; None where it declines."""
    declined = []

    def note(buf: bytes | bytearray, head: object) -> None:
        declined.append(buf)

    http._httpsplit.set_fallback(note)
    try:
        done = http._httpsplit.bodies(b, None)
    finally:
        http._httpsplit.set_fallback(http.read_bodies_python)
    if declined:
        assert done is None and declined == [b]
        return None
    count, used, head, upgrade, found = done
    assert head is None
    return count, used, upgrade, found


@compiled
def test_bodies_of_real_streams() -> None:
    """Undamaged, the compiled `bodies` reads every stream itself, as Python would, and
    the compiled `without_jsep` says of each body what the Python one says."""
    plain = jsep = 0
    for b in streams():
        expected = bodies_python(b)
        assert compiled_bodies(b) == expected
        for body in expected[3]:
            verdict = http.without_jsep_python(body)
            assert http._httpsplit.without_jsep(body) is verdict
            plain += verdict
            jsep += not verdict
    assert plain and jsep  # bodies with and without a JSEP are covered


@compiled
@settings(
    max_examples=int(300 * SCALE),
    deadline=None,
    derandomize=SCALE == 1,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged(), st.sampled_from([b"", b"jsep", b"\\u", b"\x00", b"[" * 60, b"{" * 99]))
def test_bodies_match_python_on_damaged_streams(b: bytes, extra: bytes) -> None:
    if extra and b"\r\n\r\n{" in b:  # what without_jsep looks for, put in a body
        b = b.replace(b"\r\n\r\n{", b"\r\n\r\n{" + extra, 1)
    assert http._httpsplit.without_jsep(b) is http.without_jsep_python(b)
    try:
        expected = bodies_python(b)
    except ValueError:  # int() of a latin-1 digit: declined, and the fallback raises
        assert compiled_bodies(b) is None
        with pytest.raises(ValueError):
            http.read_bodies(b, None)
        return
    got = compiled_bodies(b)
    assert got is None or got == expected
    assert compiled_bodies(bytearray(b)) == got
    count, used, head, upgrade, found = http.read_bodies(b, None)
    assert (count, used, upgrade, found) == expected
    for body in found:
        assert http._httpsplit.without_jsep(body) is http.without_jsep_python(body)


def test_without_jsep_rules() -> None:
    """The compiled test is `without_jsep_python`'s, each reason to decode at once seen."""
    for body, plain in (
        (b'{"janus":"ack"}', True),
        (b'{"jsep":{}}', False),
        (b'{"js\\u0065p":1}', False),
        (b'{"a":"\x00"}', False),
        (b"[" * 99 + b"]" * 99, True),
        (b"[" * 50 + b"{" * 50, False),
        (b"jse", True),
        (b"jsep", False),
        (b"\\", True),
        (b"\\u", False),
        (b"", True),
    ):
        assert http.without_jsep_python(body) is plain, body
        assert http.without_jsep(body) is plain, body
        assert http.without_jsep(bytearray(body)) is plain, body


@compiled
def test_unusual_input_goes_to_python() -> None:
    """What int() or latin-1 would read by rules the C code does not repeat: declined."""
    ok = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert http._httpsplit.split_http(ok, HttpMessage) == read_http_python(ok, None)[:2]
    for odd in (b"5;x=1", b"0x5", b" 5", b"+5", b"5_0", b"", b"0000000000000005"):
        b = ok.replace(b"\r\n5\r\n", b"\r\n" + odd + b"\r\n", 1)
        assert http._httpsplit.split_http(b, HttpMessage) is None, odd
    latin = b"POST / HTTP/1.1\r\nX: caf\xe9\r\nContent-Length: 2\r\n\r\nhi"
    assert http._httpsplit.split_http(latin, HttpMessage) is None
    assert read_http(latin, None)[:2] == (
        [HttpMessage("POST / HTTP/1.1", latin[:-2], b"hi")],
        len(latin),
    )
    huge = b"POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n"
    assert http._httpsplit.split_http(huge, HttpMessage) is None
    assert read_http(huge, None)[:2] == ([], 0)
