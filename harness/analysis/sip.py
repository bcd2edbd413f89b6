"""SIP messages (RFC 3261) from datagrams or reassembled streams.

Headers are kept lower-cased with compact forms expanded; the body is kept as
text when it is SDP. Stream framing uses Content-Length (RFC 3261 18.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

METHODS = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
)
#: the first bytes of a SIP message: a request's method and space, or a response's version
STARTS = tuple(m.encode() + b" " for m in METHODS) + (b"SIP/2.0 ",)
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}
_TAG = re.compile(r";\s*tag=([^;>\s]+)", re.I)
_BRANCH = re.compile(r";\s*branch=([^;,\s]+)", re.I)
_LENGTH = re.compile(rb"\r\n(?:content-length|l)\s*:\s*(\d+)", re.I)

try:
    from harness.analysis import _sipparse  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: the Python version below reads the same
    _sipparse = None


@dataclass
class SipMessage:
    """One SIP request or response."""

    method: str
    status: int | None
    reason: str
    uri: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: str = ""

    def header(self, name: str) -> str:
        return self._first(name.lower())

    def _first(self, name: str) -> str:
        """The first value of header `name` (lower-case already), or ''."""
        values = self.headers.get(name)
        return values[0] if values else ""

    @property
    def is_request(self) -> bool:
        return self.status is None

    @property
    def call_id(self) -> str:
        return self._first("call-id").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        return _cseq(self._first("cseq"))

    @property
    def from_tag(self) -> str:
        return _tag(self._first("from"))

    @property
    def to_tag(self) -> str:
        return _tag(self._first("to"))

    @property
    def branch(self) -> str:
        return _branch(self._first("via"))

    @property
    def has_sdp(self) -> bool:
        return bool(self.body) and "application/sdp" in self.header("content-type").lower()

    @property
    def summary(self) -> str:
        if self.status is None:
            return f"{self.method} {self.uri}"
        return f"{self.status} {self.reason} ({self.cseq[1]})"


# What a header's value says, read once per distinct value: a dialog's messages repeat
# their From, To, Via and CSeq, and the session and the summary read them again.
@lru_cache(maxsize=4096)
def _tag(value: str) -> str:
    m = _TAG.search(value)
    return m.group(1) if m else ""


@lru_cache(maxsize=4096)
def _branch(value: str) -> str:
    m = _BRANCH.search(value)
    return m.group(1) if m else ""


@lru_cache(maxsize=4096)
def _cseq(value: str) -> tuple[int, str]:
    num, _, method = value.strip().partition(" ")
    return (int(num) if num.isascii() and num.isdigit() else -1, method.strip())


def looks_like_sip(p: bytes) -> bool:
    return p.startswith(STARTS)


def parse(p: bytes) -> SipMessage | None:
    """Decode one complete SIP message, or None if the start line is not SIP.

    Compiled (`_sipparse.c`) when built: that hands unusual input (a non-ASCII head, a
    number too long for 64 bits) back to `parse_python`.
    """
    if _sipparse is not None:
        msg = _sipparse.parse(p, SipMessage)
        if msg is not None:
            return msg or None
    return parse_python(p)


def parse_python(p: bytes) -> SipMessage | None:
    """`parse` in Python: the fallback, and the reference for the compiled version."""
    head, sep, body = p.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = p.partition(b"\n\n")
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    start = lines[0].split(" ", 2)
    if len(start) < 3:
        return None
    if start[0] == "SIP/2.0":
        if not (start[1].isascii() and start[1].isdigit()):
            return None
        msg = SipMessage("", int(start[1]), start[2], "")
    elif start[0] in METHODS and start[2].startswith("SIP/2.0"):
        msg = SipMessage(start[0], None, "", start[1])
    else:
        return None
    name = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and name:
            msg.headers[name][-1] += " " + line.strip()
            continue
        key, colon, value = line.partition(":")
        if not colon:
            continue
        name = key.strip().lower()
        name = COMPACT.get(name, name)
        msg.headers.setdefault(name, []).append(value.strip())
    length = msg.header("content-length")
    if length.isascii() and length.isdigit():
        body = body[: int(length)]
    msg.body = body.decode("utf-8", "replace")
    if msg.status is not None:
        msg.method = msg.cseq[1]
    return msg


def split_stream_python(buf: bytes | bytearray) -> tuple[list[bytes], int]:
    """Complete messages at the start of a byte stream and how many bytes they used.

    `split_stream` is this, compiled when built (`_sipparse.split_stream`).
    """
    out: list[bytes] = []
    off = 0
    while True:
        while buf[off : off + 2] == b"\r\n":  # keep-alive CRLFs (RFC 5626)
            off += 2
        end = buf.find(b"\r\n\r\n", off)
        if end < 0:
            return out, off
        m = _LENGTH.search(buf, off, end)
        total = end + 4 + (int(m.group(1)) if m else 0)
        if total > len(buf):
            return out, off
        out.append(bytes(buf[off:total]))
        off = total


split_stream = split_stream_python if _sipparse is None else _sipparse.split_stream
