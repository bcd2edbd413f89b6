"""SIP parsing: the compiled reader (`_sipparse.c`) against the Python one, on the SIP
messages of real captures, as they are and damaged.

Wherever the compiled reader answers it must give the same message (start line, every
header value in order, body) as `sip.parse_python`, or agree that the start line is not
SIP; where it declines (a non-ASCII head, a number too long for 64 bits) the Python one
reads.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import sip
from harness.analysis.analyzer import analyze_file
from harness.analysis.sip import SipMessage, parse, parse_python
from tests.fuzzing import examples

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = (
    ROOT / "tests" / "data" / "pcaps" / "sipp-udp.pcap",
    ROOT / "tests" / "data" / "pcaps" / "sipp-tcp.pcap",  # SIP over TCP, split from a stream
    ROOT / "tests" / "data" / "pcaps" / "sip-ws.pcap",  # SIP over WebSocket
    ROOT / "tests" / "data" / "pcaps" / "janus-dtmf-sip.pcap",  # SDP bodies, INFO
    ROOT / "tests" / "data" / "pcaps" / "sip-tls13.pcap",  # SIP over TLS, decrypted
    ROOT / "benchmarks" / "data" / "janus-sip-relayed.pcap",  # Janus' SIP leg, Kamailio
    ROOT / "tests" / "data" / "thirdparty" / "ndpi-sip.pcap",  # other user agents
    ROOT / "tests" / "data" / "thirdparty" / "ndpi-FAX-Call-t38-CA-TDM-SIP-FB-1.pcap",
    ROOT / "tests" / "data" / "thirdparty" / "sipp-g711a.pcap",
)
compiled = pytest.mark.skipif(
    sip._sipparse is None,
    reason="harness/analysis/_sipparse.c is not built (pip install -e . builds it)",
)


@functools.cache
def messages() -> list[bytes]:
    """The SIP messages the analyser reads in the captures (each distinct one once)."""
    seen: dict[bytes, None] = {}
    real = sip.parse

    def record(p: bytes) -> SipMessage | None:
        seen.setdefault(bytes(p))
        return real(p)

    sip.parse = record
    try:
        for path in CAPTURES:
            keys = path.with_suffix(".keys")
            analyze_file(path, keys if keys.is_file() else None)
    finally:
        sip.parse = real
    return list(seen)


def both(p: bytes) -> tuple[object, object]:
    """(compiled, Python) of one message, the headers' order compared too."""
    got = sip._sipparse.parse(p, SipMessage)
    expected = parse_python(p)
    if isinstance(got, SipMessage) and expected is not None:
        assert list(got.headers) == list(expected.headers)
    return got, expected


#: bytes that steer the reader: line ends, folding, separators, digits, non-ASCII
TRICKY = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n", b":", b" ", b"\t", b"\x0b", b"\x1c", b"\x00"]
    + [b"\r\n ", b"\r\n\t", b"\r\n :x", b"SIP/2.0", b"SIP/2.0 ", b"INVITE ", b"ACK sip:a "]
    + [b"0", b"9", b"-", b"\x80", b"\xc3\xa9", b"\xff", b"\xe2\x80\x85", b"99999999999999999999"]
)
#: header lines whose names and values need str.strip()'s and str.lower()'s rules
HEADERS = st.sampled_from(
    [
        b"\x1cContent-LENGTH\x0b:\x1f3\x1d",
        b"l: 0",
        b"L:2",
        b"Content-Length: 12345678901234567890",
        b"content-length: 1\x85",
        b"CSeq:\t 7 \x0c INVITE \x1f",
        b"cseq: 8",
        b"CSEQ: 9 BYE",
        b" folded on",
        b"\tand on \r",
        b": no name",
        b"no colon",
        b"I: another-call-id",
        b"X-Odd: caf\xc3\xa9",
        b"V: SIP/2.0/TCP h;branch=z9hG4bK-x",
    ]
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A real message with a few bytes overwritten, inserted or cut, or a header added."""
    b = bytearray(draw(st.sampled_from(messages())))
    for _ in range(draw(st.integers(0, 5))):
        at = draw(st.integers(0, len(b)))
        what = draw(st.sampled_from(["set", "insert", "cut", "header", "header"]))
        piece = draw(TRICKY | st.binary(min_size=1, max_size=4))
        lines = [i for i in range(len(b)) if b[i : i + 2] == b"\r\n"]
        if what == "header" and lines:
            at = draw(st.sampled_from(lines))
            b[at:at] = b"\r\n" + draw(HEADERS)
        elif what == "set" and at < len(b):
            b[at : at + len(piece)] = piece[: len(b) - at]
        elif what == "insert":
            b[at:at] = piece
        else:
            del b[at : at + draw(st.integers(1, 64))]
    if draw(st.integers(0, 4)) == 0:  # some end early, anywhere
        del b[draw(st.integers(0, len(b))) :]
    return bytes(b)


def test_real_messages_are_read_by_both() -> None:
    """Undamaged, the compiled reader takes every message itself, with the same result."""
    assert len(messages()) >= 50
    responses = sdp = 0
    for p in messages():
        expected = parse_python(p)
        assert expected is not None
        assert parse(p) == expected
        if sip._sipparse is not None:
            got, _ = both(p)
            assert got == expected
        responses += not expected.is_request
        sdp += expected.has_sdp
    assert responses and sdp  # methods from CSeq and bodies cut at Content-Length covered


@compiled
@examples(600)
@given(damaged())
def test_compiled_matches_python_on_damaged_messages(p: bytes) -> None:
    try:
        expected = parse_python(p)
    except ValueError:  # int() of more digits than it reads: the caller counts a crash
        assert sip._sipparse.parse(p, SipMessage) is None
        return
    got, _ = both(p)
    if got is False:
        assert expected is None
    else:
        assert got is None or got == expected
    assert parse(p) == expected
    assert sip._sipparse.parse(bytearray(p), SipMessage) == got


@compiled
def test_unusual_input_goes_to_python() -> None:
    """What UTF-8 decoding or int() reads by rules the C code does not repeat: declined."""
    ok = b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nl: 2\r\nContent-Type: application/sdp\r\n\r\nv=0"
    got, expected = both(ok)
    assert got == expected and isinstance(got, SipMessage)
    assert (got.method, got.body, got.has_sdp) == ("INVITE", "v=", True)
    for odd in (
        ok.replace(b"OK", b"\xc3\x89t\xc3\xa9"),  # UTF-8 in the reason
        ok.replace(b"200", b"2" * 19),  # a status code int() reads, C does not
        ok.replace(b"l: 2", b"l: " + b"2" * 19),
    ):
        assert sip._sipparse.parse(odd, SipMessage) is None, odd
        assert parse(odd) == parse_python(odd)
    accented = parse(ok.replace(b"OK", b"\xc3\x89t\xc3\xa9"))
    assert accented is not None and accented.reason == "\xc9t\xe9"
    for not_sip in (b"", b"SIP/2.0 2x0 OK\r\n\r\n", b"FOO sip:a SIP/2.0\r\n\r\n", b"INVITE x\r\n"):
        assert sip._sipparse.parse(not_sip, SipMessage) is False
        assert parse(not_sip) is None


@compiled
def test_folded_compact_and_bare_lines() -> None:
    """Folding onto the last named header, compact names, LF-only ends, lines without a colon."""
    for p in (
        b"INVITE sip:b@y SIP/2.0\r\nv: SIP/2.0/UDP h\r\n ;branch=z9hG4bK-1\r\n\tx\r\nnoise\r\n"
        b" more\r\nF: <sip:a@x>;tag=1\r\n: empty\r\n folded onto nothing\r\nI: c\r\n\r\nbody",
        b"BYE sip:b SIP/2.0\nCall-ID: z\nl: 1\n\nxyz",
        b"SIP/2.0 486 Busy Here\r\nCSeq:  12   INVITE  \r\n\r\n",
        b"SIP/2.0 180 \r\nCSeq: 3\r\n\r\n",
        b"ACK sip:a SIP/2.0x\r\r\nVia:\r\r\n\r\n",
    ):
        got, expected = both(p)
        assert isinstance(got, SipMessage) and got == expected, p


@compiled
def test_header_names_are_made_once_and_kept_apart() -> None:
    """A header name is one str in every message, whatever its case (the reader keeps the
    names it meets); a thousand names of one length, more than it keeps and so sharing
    its places, and names too long to keep, each read as the Python reader reads them."""
    one = sip._sipparse.parse(
        b"OPTIONS sip:a SIP/2.0\r\nVIA: 1\r\nX-Odd-Name: 2\r\n\r\n", SipMessage
    )
    two = sip._sipparse.parse(b"OPTIONS sip:b SIP/2.0\r\nv: 3\r\nx-odd-NAME: 4\r\n\r\n", SipMessage)
    assert isinstance(one, SipMessage) and isinstance(two, SipMessage)
    assert [a is b for a, b in zip(one.headers, two.headers, strict=True)] == [True, True]
    names = [f"X-{i:04d}".encode() for i in range(1000)] + [b"N" * n for n in (31, 32, 33, 90)]
    for start in range(0, len(names), 50):
        lines = b"".join(
            (name.swapcase() if i % 3 else name) + b": %d\r\n" % i
            for i, name in enumerate(names[start : start + 50] * 2)
        )
        got, expected = both(b"MESSAGE sip:a SIP/2.0\r\n" + lines + b"\r\n")
        assert isinstance(got, SipMessage) and got == expected


#: what steers stream framing: keep-alives, blank lines, Content-Length spellings
FRAMING = st.sampled_from(
    [b"\r\n", b"\r\n\r\n", b"\r\nl: 5", b"\r\nL:\t 12", b"\r\nCONTENT-length :\x0b3"]
    + [b"\r\ncontent-length:", b"\r\nl: x", b"\r\nl:" + b"9" * 19, b"\r\nl: 0\r\n\r\n"]
    + [b"\r\nContent-Lengthy: 4", b"\r\nl \r\n: 7", b"\x0c", b"\r\nl: 2" + b" " * 3]
)


@st.composite
def damaged_stream(draw: st.DrawFn) -> bytes:
    """A few real messages back to back (keep-alives between), then damaged."""
    picks = draw(st.lists(st.sampled_from(messages()), min_size=1, max_size=4))
    b = bytearray()
    for p in picks:
        b += b"\r\n" * draw(st.integers(0, 2)) + p
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(b)))
        piece = draw(FRAMING | TRICKY | st.binary(min_size=1, max_size=4))
        if draw(st.booleans()):
            b[at:at] = piece
        else:
            del b[at : at + draw(st.integers(1, 32))]
    if draw(st.booleans()):
        del b[draw(st.integers(0, len(b))) :]
    return bytes(b)


@compiled
def test_real_streams_are_split_by_both() -> None:
    """The compiled splitter gives the messages and byte count of `split_stream_python`."""
    ms = messages()
    for k in range(0, len(ms), 3):
        b = b"\r\n".join(ms[k : k + 3]) + b"\r\n\r\nINVITE sip:x SIP/2.0\r\nl: 9\r\n\r\nab"
        expected = sip.split_stream_python(b)
        assert len(expected[0]) >= 1
        assert sip._sipparse.split_stream(b) == expected
        assert sip._sipparse.split_stream(bytearray(b)) == expected
    assert sip.split_stream is sip._sipparse.split_stream


@compiled
@examples(600)
@given(damaged_stream())
def test_compiled_split_matches_python_on_damaged_streams(b: bytes) -> None:
    expected = sip.split_stream_python(b)
    assert sip._sipparse.split_stream(b) == expected
    assert sip._sipparse.split_stream(bytearray(b)) == expected


@compiled
def test_split_content_length_rules() -> None:
    """re's reading of Content-Length: only within the head, any case, \\s around ':'."""
    for b in (
        b"BYE a SIP/2.0\r\nL \x0b:\t 3\r\n\r\nabcBYE",
        b"BYE a SIP/2.0\r\ncontent-LENGTH:2\r\n\r\nab\r\n\r\nBYE b SIP/2.0\r\n\r\n",
        b"BYE a SIP/2.0\r\nl: x\r\nl: 1\r\n\r\nab",
        b"BYE a SIP/2.0\r\nl: " + b"9" * 19 + b"\r\n\r\nab",
        b"BYE a SIP/2.0\r\nl: 4\r\n\r\nab",
        b"BYE a SIP/2.0\r\nX: 1\r\n\r\n\r\nl: 5\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"",
    ):
        assert sip._sipparse.split_stream(b) == sip.split_stream_python(b), b
