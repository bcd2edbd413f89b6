"""Messages in a TCP byte stream: STUN/TURN over TCP and RFC 4571 (ICE-TCP) framing,
and where the first whole message is in a stream whose capture began mid-connection.

TURN over TCP (RFC 8656 section 12.5) interleaves STUN messages and ChannelData
padded to four bytes; ICE-TCP (RFC 6544) frames every STUN, DTLS, RTP or RTCP
packet with a two-byte length (RFC 4571). A capture that starts mid-connection
begins anywhere inside such a stream: `sync` finds the first offset from which
frames chain consistently, so the rest of the stream is read as if it had been
seen from the start. `sync_text` does the same for SIP and HTTP, which a capture of a
long-lived connection (a SIP trunk, a proxy's TCP link) usually joins mid-message, and
`sync_ws` for WebSocket frames after a gap.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from harness.analysis import http, sip
from harness.analysis.stun import MAGIC_BYTES

try:
    from harness.analysis import _framesync  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: sync_python tries each candidate offset
    _framesync = None

TURN = "turn"
RFC4571 = "rfc4571"
#: how far into a stream we look for the first frame before giving up
SCAN = 4096
#: frames that must chain (without a STUN magic cookie to vouch for them)
CHAIN = 3


def _stun_at(b: bytes | bytearray, i: int) -> int:
    """Length of the STUN message (RFC 8489 header with magic cookie) at `i`, or 0."""
    if i + 20 > len(b) or b[i] >= 4 or b[i + 4 : i + 8] != MAGIC_BYTES:
        return 0
    n = b[i + 2] << 8 | b[i + 3]
    return 20 + n if n % 4 == 0 else 0


def turn_frame(b: bytes | bytearray, i: int) -> int:
    """Size of the TURN-TCP frame at `i` (STUN or padded ChannelData); 0 if none, -1 if short."""
    if i + 4 > len(b):
        return -1
    c = b[i]
    if c < 4:
        if i + 20 > len(b):
            return -1
        return _stun_at(b, i)
    if 0x40 <= c <= 0x4F:
        return 4 + (((b[i + 2] << 8 | b[i + 3]) + 3) & ~3)
    return 0


def rfc4571_frame(b: bytes | bytearray, i: int) -> int:
    """Size of the RFC 4571 frame at `i` whose packet looks like STUN, DTLS or RTP/RTCP."""
    if i + 3 > len(b):
        return -1
    n = b[i] << 8 | b[i + 1]
    c = b[i + 2]
    if n < 4 or not (c < 4 or 20 <= c <= 63 or 128 <= c <= 191):
        return 0
    if c < 4 and i + 22 <= len(b) and not _stun_at(b, i + 2):
        return 0
    return 2 + n


def _chains(b: bytes | bytearray, i: int, frame) -> bool:  # type: ignore[no-untyped-def]
    """True when frames parse back to back from `i`, up to CHAIN of them or the end."""
    for _ in range(CHAIN):
        n = frame(b, i)
        if n == -1 or (n > 0 and i + n >= len(b)):
            return True  # consistent up to the end of what has arrived
        if n == 0:
            return False
        i += n
    return True


def sync(b: bytes | bytearray) -> tuple[str, int] | None:
    """(framing, offset of the first frame) of a stream's bytes, or None if neither fits
    (`sync_python`, compiled when built: `_framesync.c`)."""
    if _framesync is not None:
        return _framesync.sync(b, TURN, RFC4571)
    return sync_python(b)


def sync_python(b: bytes | bytearray) -> tuple[str, int] | None:
    """(framing, offset of the first frame) of a stream's bytes, or None if neither fits.

    A STUN magic cookie anchors a frame on its own; otherwise CHAIN frames must
    follow each other exactly, which random bytes almost never do. Only the offsets
    where such a frame can start are tried (a cookie 4 or 6 bytes on; a complete first
    frame's length and type bytes, `_candidates`), in order: the same answer as trying
    every offset, which cost milliseconds per segment of an unknown stream.
    """
    if len(b) < 4:
        return None
    limit = min(len(b) - 4, SCAN)
    anchored: set[int] = set()
    at = b.find(MAGIC_BYTES, 4)
    while 0 <= at <= limit + 8:
        anchored.update(i for i in (at - 4, at - 6) if 0 <= i <= limit)
        at = b.find(MAGIC_BYTES, at + 1)
    for i in sorted(anchored):
        if _stun_at(b, i) and _chains(b, i, turn_frame):
            return TURN, i
        if i + 22 <= len(b) and _stun_at(b, i + 2) and (b[i] << 8 | b[i + 1]) == _stun_at(b, i + 2):
            return RFC4571, i
    for m in _candidates(min(len(b) >> 8, 255)).finditer(b, 0, min(len(b), limit + 3)):
        i = m.start()
        if 0x40 <= b[i] <= 0x4F and _chains(b, i, turn_frame) and _full_chain(b, i, turn_frame):
            return TURN, i
        if _full_chain(b, i, rfc4571_frame):
            return RFC4571, i
    return None


@functools.cache
def _candidates(high: int) -> re.Pattern[bytes]:
    """Offsets where a complete frame can start in a stream of fewer than (high + 1) * 256
    bytes: ChannelData (0x40-0x4F, then a length whose high byte is at most `high`), or an
    RFC 4571 length so bounded followed by a STUN, DTLS or RTP/RTCP first byte."""
    h = re.escape(bytes([high]))
    return re.compile(
        rb"(?=[\x40-\x4f].[\x00-" + h + rb"]|[\x00-" + h + rb"].[\x00-\x03\x14-\x3f\x80-\xbf])",
        re.DOTALL,
    )


def first_frame(b: bytes | bytearray) -> str | None:
    """The framing of a binary stream the capture saw open, told at its first byte: TURN
    when it starts with a STUN message (RFC 8656 12.5: an Allocate comes first) or a chain
    of ChannelData, RFC4571 with a length-prefixed STUN message (RFC 6544: a connectivity
    check comes first) or a chain of framed packets (RTP over TCP, RFC 4571 alone);
    "other" when its first bytes start none of these; None while they cannot tell yet.

    No search at later offsets: `sync` is for streams the capture joined mid-connection
    (a search at every offset of every segment of an unknown stream cost 8 ms per
    direction: 16 s for a capture of 2,000 database connections).
    """
    if len(b) >= 8 and b[0] < 4 and b[4:8] == MAGIC_BYTES:
        return TURN
    if len(b) >= 10 and b[2] < 4 and b[6:10] == MAGIC_BYTES:
        return RFC4571
    if len(b) < 10:
        return None
    channel = 0x40 <= b[0] <= 0x4F
    if channel and _full_chain(b, 0, turn_frame):
        return TURN
    if _full_chain(b, 0, rfc4571_frame):
        return RFC4571
    maybe = _chains(b, 0, rfc4571_frame) or (channel and _chains(b, 0, turn_frame))
    return None if maybe and len(b) < SCAN else "other"


def _full_chain(b: bytes | bytearray, i: int, frame) -> bool:  # type: ignore[no-untyped-def]
    """CHAIN complete frames back to back from `i` (no benefit of the doubt)."""
    for _ in range(CHAIN):
        n = frame(b, i)
        if n <= 0 or i + n > len(b):
            return False
        i += n
    return True


def split(b: bytearray, framing: str) -> tuple[list[bytes], int]:
    """Complete frames of `b` (TURN: whole STUN or ChannelData; RFC 4571: the packet).

    Returns the frames and the bytes used. Bytes that fit no frame (a hole in the
    capture) make the caller resynchronise: `used` stops before them and the
    returned list ends with b"" as the marker.
    """
    out: list[bytes] = []
    i = 0
    frame = turn_frame if framing == TURN else rfc4571_frame
    while True:
        n = frame(b, i)
        if n == -1 or (n > 0 and i + n > len(b)):
            return out, i
        if n == 0:
            out.append(b"")
            return out, i
        out.append(bytes(b[i + 2 : i + n]) if framing == RFC4571 else bytes(b[i : i + n]))
        i += n


#: how far into a text stream we look for the first message's start line
TEXT_SCAN = 65536
#: a byte no SIP or HTTP head holds: a stream with one is binary
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_WORDS = b"|".join(sorted({*(m.strip() for m in http.METHODS), *(m.encode() for m in sip.METHODS)}))
#: a start line (RFC 3261 7.1, 7.2; RFC 9112 3, 4) with its CRLF
_START = re.compile(
    rb"(?:(?:"
    + _WORDS
    + rb") [!-~]+ (SIP/2\.0|HTTP/1\.[01])|(SIP/2\.0|HTTP/1\.[01]) [1-6]\d\d[^\r\n]*)\r\n"
)
_HTTP = (*http.METHODS, b"HTTP/1.")
#: where a start line may begin: a method, or a status line's protocol
_WORD = re.compile(rb"(?:" + _WORDS + rb"|SIP/|HTTP/)")
_LONGEST = max(len(w) for w in (*_WORDS.split(b"|"), b"HTTP/1.1"))
#: header lines (RFC 3261 7.3.1, RFC 9112 5), each a token and a colon or a folded
#: continuation, with its CRLF
_HEADERS = re.compile(rb"(?:(?:[!-9;-~]+[ \t]*:|[ \t])[^\r\n]*\r\n)*")
#: RFC 3261 8.1.1: every SIP message has a Call-ID and a CSeq (a sipfrag body has not)
_CALL_ID = re.compile(rb"\r\n(?:call-id|i)[ \t]*:", re.IGNORECASE)
_CSEQ = re.compile(rb"\r\ncseq[ \t]*:", re.IGNORECASE)


def is_text(b: bytes | bytearray, start: int = 0) -> bool:
    """No control byte but CR, LF, tab, VT, FF in the first SCAN bytes: SIP or HTTP may be
    in there (STUN, TURN and RFC 4571 framing always hold some). The bytes before `start`
    were found text by an earlier call."""
    return _BINARY.search(b, start, SCAN) is None


#: HAProxy's PROXY protocol v2 signature: a load balancer's binary header before the
#: stream proper (the protocol's spec, 2.2)
PROXY_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(b: bytes | bytearray) -> int | None:
    """Bytes of the PROXY protocol v2 header that `b` starts with (16 and the length its
    bytes 14-15 give: addresses and TLVs); 0 when it starts with none; None while it may
    still be one, not all of it here yet."""
    head = bytes(b[:16])
    if not PROXY_V2.startswith(head[:12]):
        return 0
    if len(b) < 16:
        return None
    if head[12] >> 4 != 2:  # version 2 in the high nibble
        return 0
    n = 16 + (head[14] << 8 | head[15])
    return n if len(b) >= n else None


_CRLFS = re.compile(rb"[\r\n]*")


def after_crlfs(b: bytes | bytearray) -> int:
    """Where `b` starts after any CRs and LFs (keep-alives, RFC 5626 4.4.1)."""
    m = _CRLFS.match(b)
    return m.end() if m else 0


def text_start(b: bytes | bytearray) -> str | None:
    """'sip' or 'http' when `b` starts as a message of that protocol does, else None."""
    return "sip" if b.startswith(sip.STARTS) else "http" if b.startswith(_HTTP) else None


def sync_text(b: bytes | bytearray, start: int = 0) -> tuple[str | None, int]:
    """('sip' or 'http', offset of the first whole message's start line) in a text
    stream; (None, offset to search on from) while none is there yet.

    A stream the capture saw open starts with one. Joined mid-message, a start line counts
    at the start of a line (SIP) or anywhere (HTTP: a JSON body ends without CRLF), once
    its head is complete; a SIP head also needs its Call-ID and CSeq. A head holds header
    lines only, so a body's text is no start (a sipfrag's "SIP/2.0 200 OK", RFC 3420).

    `start` is what an earlier call returned for the same stream's first bytes: a start
    line ends at its line's end, so what lies before the last complete line was judged
    already, and each segment is searched once, not the whole stream again (searching
    from 0 on every segment cost 3.8 s for 500 connections of text, tshark 0.25 s).
    """
    if start == 0:
        first = text_start(b)
        if first is not None:  # as the stream's first bytes: any start line the protocol allows
            end = b.find(b"\r\n\r\n")
            if end < 0:
                return None, 0
            if _headers_only(b, b.find(b"\r\n") + 2, end):
                return first, 0
    limit = min(len(b), TEXT_SCAN)
    for m in _starts(b, start, limit):
        at, proto = m.start(), m.group(1) or m.group(2)
        end = b.find(b"\r\n\r\n", m.end() - 2)
        if end < 0:
            return None, at  # its head is still coming
        if not _headers_only(b, m.end(), end):
            continue
        if proto == b"SIP/2.0":
            head = bytes(b[m.end() - 2 : end + 2])
            if at and b[at - 1] != 0x0A or not (_CALL_ID.search(head) and _CSEQ.search(head)):
                continue
            return "sip", at
        return "http", at
    # Judged for good: every offset whose line has ended (a match cannot cross a line
    # end), up to the first start word in the unfinished line or the last bytes, where a
    # word may be cut.
    line = max(start, b.rfind(b"\n", start, limit) + 1)
    word = _WORD.search(b, line, limit)
    return None, min(word.start() if word else limit, max(line, limit - _LONGEST))


def _starts(b: bytes | bytearray, pos: int, limit: int) -> Iterator[re.Match[bytes]]:
    """`_START.finditer(b, pos, limit)`, with the regex run only on lines that hold
    "SIP/2.0" or "HTTP/1." (every start line does), found by a plain byte search: the
    regex tried at every byte cost 60 ns a byte of a stream with no start line."""
    while True:
        sip_at, http_at = b.find(b"SIP/2.0", pos, limit), b.find(b"HTTP/1.", pos, limit)
        q = min(sip_at, http_at) if sip_at >= 0 and http_at >= 0 else max(sip_at, http_at)
        if q < 0:
            return
        # a start line holding it lies between the line ends before and after it
        line = max(pos, b.rfind(b"\n", pos, q) + 1, b.rfind(b"\r", pos, q) + 1)
        end = b.find(b"\r\n", q, limit)
        m = _START.search(b, line, limit if end < 0 else end + 2)
        if m is None:
            pos = q + 1
            continue
        yield m
        pos = m.end()


def _headers_only(b: bytes | bytearray, start: int, end: int) -> bool:
    """Are the lines from `start` to the CRLF at `end` header lines (none: start > end)?"""
    done = _HEADERS.match(b, start, end + 2)
    return start > end or (done is not None and done.end() == end + 2)


def sync_ws(b: bytes | bytearray) -> tuple[int, bool]:
    """After a gap in a WebSocket stream (RFC 6455 5.2): (offset of the first whole frame
    that carries a SIP message or a JSON document, True), or (bytes known to start none,
    False) while `b` cannot tell yet.

    Such a frame ends its message (FIN), has no extension bits, is text or binary with a
    length of at most TEXT_SCAN, and its payload, unmasked, is a SIP message's head (RFC
    7118: one SIP message per WebSocket message) or JSON (the Janus API). Control frames
    and the rest of a message cut by the gap are passed over.
    """
    i, wait = 0, None  # wait: the first frame that may carry one, its end still coming
    while i + 2 <= len(b):
        n, pos = b[i + 1] & 0x7F, i + 2
        if b[i] not in (0x81, 0x82) or n == 127:
            i += 1
            continue
        if n == 126:
            if pos + 2 > len(b):
                break
            n, pos = b[pos] << 8 | b[pos + 1], pos + 2
        mask = b[pos : pos + 4] if b[i + 1] & 0x80 else b"\0\0\0\0"
        pos += 4 if b[i + 1] & 0x80 else 0
        head = bytes(c ^ mask[k % 4] for k, c in enumerate(b[pos : pos + min(n, 8)]))
        if len(mask) < 4 or len(head) < min(n, 8):
            break  # its start is still coming
        if n >= 2 and (head.startswith(sip.STARTS) or head[:1] in (b"{", b"[")):
            if pos + n > len(b):
                if n <= TEXT_SCAN and wait is None:  # unless a later whole one is found,
                    wait = i  # in whose middle this would be: then this was none
            else:
                payload = http.unmask(b[pos : pos + n], mask)
                if payload.startswith(sip.STARTS) and b"\r\n\r\n" in payload:
                    return i, True
                if head[:1] in (b"{", b"[") and http.is_json(payload):
                    return i, True
        i += 1
    return (i if wait is None else wait), False
