"""HTTP/1.1 and WebSocket framing over reassembled TCP, for signalling bodies.

Janus' HTTP and WebSocket APIs carry JSEP SDPs in JSON (`"jsep": {"type",
"sdp"}`); SIP over WebSocket (RFC 7118) carries one SIP message per frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import repeat

METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"OPTIONS ", b"HEAD ")
_COLON = repeat(":")

try:
    from harness.analysis import _httpsplit  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: the Python version below reads the same
    _httpsplit = None
try:  # what _json_body needs of a body with a JSEP, read without decoding it all
    from harness.analysis import _jsepscan  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: `signalling` decodes every such body
    _jsepscan = None


@dataclass(slots=True)
class HttpMessage:
    """One request or response with its body."""

    start: str
    head: bytes  # the start line and header lines, with the blank line that ends them
    body: bytes = b""
    is_upgrade_to_websocket: bool = False

    @property
    def headers(self) -> dict[str, str]:
        """Header names lower-cased; the last of repeated names wins."""
        return _headers(self.head)


def _headers(head: bytes) -> dict[str, str]:
    lines = head[:-4].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in map(str.partition, lines, _COLON)}


@dataclass(slots=True)
class _Head:
    """The parsed head of the message at the start of a stream's buffer, kept while its
    body is still arriving: the next segment resumes from here instead of re-reading it."""

    raw: bytes  # the head and its blank line, to check the buffer still starts with them
    start: str
    chunked: bool
    length: int
    upgrade: bool


def _head(raw: bytes) -> _Head:
    start = raw[:-4].decode("latin-1").split("\r\n", 1)[0]
    headers = _headers(raw)
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    n = 0
    if not chunked:
        length = headers.get("content-length", "0").strip()
        n = int(length) if length.isascii() and length.isdigit() else 0
    upgrade = start.split(" ")[1:2] == ["101"] and "websocket" in headers.get("upgrade", "").lower()
    return _Head(raw, start, chunked, n, upgrade)


def split_http(buf: bytes | bytearray) -> tuple[list[HttpMessage], int]:
    """Complete HTTP messages at the start of `buf` and the bytes they used."""
    out, used, _ = read_http(buf, None)
    return out, used


def read_http(
    buf: bytes | bytearray, head: _Head | None
) -> tuple[list[HttpMessage], int, _Head | None]:
    """`split_http`, resumable: also returns the head of an incomplete message at `used`.

    The caller keeps that head per stream and passes it back with the next call, when
    the buffer (trimmed by `used`) has grown. Compiled (`_httpsplit.c`) when built: that
    reads the head again each call (cheap in C) and hands unusual input back to Python.
    """
    if _httpsplit is not None:
        done = _httpsplit.split_http(buf, HttpMessage)
        if done is not None:
            return done[0], done[1], None
    return read_http_python(buf, head)


def read_bodies_python(
    buf: bytes | bytearray, head: _Head | None
) -> tuple[int, int, _Head | None, bool, list[bytes]]:
    """What the TCP walk keeps of `read_http`: (messages, used, head, upgrade, bodies).

    `upgrade`: the last message switches to WebSocket; `bodies`: the non-empty ones, in
    order. `read_bodies` is this, compiled when built (`_httpsplit.bodies`: no message
    object is made, as most segments of a long poll carry a head or a chunk and nothing
    else), and this where that declines.
    """
    items, used, head = read_http_python(buf, head)
    upgrade = bool(items) and items[-1].is_upgrade_to_websocket
    return len(items), used, head, upgrade, [h.body for h in items if h.body]


def read_http_python(
    buf: bytes | bytearray, head: _Head | None
) -> tuple[list[HttpMessage], int, _Head | None]:
    """read_http in Python: the fallback, and the reference for the compiled version.

    `head` is used only if the buffer still starts with its bytes.
    """
    out: list[HttpMessage] = []
    off = 0
    if head is not None and not buf.startswith(head.raw):
        head = None
    while True:
        if head is None:
            end = buf.find(b"\r\n\r\n", off)
            if end < 0:
                return out, off, None
            head = _head(bytes(buf[off : end + 4]))
        pos = off + len(head.raw)
        if head.chunked:
            body, pos = _dechunk(buf, pos)
            if pos < 0:
                return out, off, head
        else:
            pos += head.length
            if pos > len(buf):
                return out, off, head
            body = bytes(buf[pos - head.length : pos])
        out.append(HttpMessage(head.start, head.raw, body, head.upgrade))
        off = pos
        if head.upgrade:
            return out, off, None
        head = None


def _dechunk(buf: bytes | bytearray, pos: int) -> tuple[bytes, int]:
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return b"", -1
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            return b"", -1
        start = eol + 2
        if size == 0:
            trailer = buf.find(b"\r\n", start)
            return (bytes(body), trailer + 2) if trailer >= 0 else (b"", -1)
        if start + size + 2 > len(buf):
            return b"", -1
        body += buf[start : start + size]
        pos = start + size + 2


def split_ws(buf: bytes | bytearray, off: int = 0) -> tuple[list[tuple[int, bytes]], int]:
    """Complete WebSocket frames (RFC 6455) from `off` as (opcode, unmasked payload); the
    offset after the last."""
    out: list[tuple[int, bytes]] = []
    while off + 2 <= len(buf):
        op = buf[off] & 0x0F
        masked = buf[off + 1] & 0x80
        n = buf[off + 1] & 0x7F
        pos = off + 2
        if n == 126:
            if pos + 2 > len(buf):
                break
            n = int.from_bytes(buf[pos : pos + 2], "big")
            pos += 2
        elif n == 127:
            if pos + 8 > len(buf):
                break
            n = int.from_bytes(buf[pos : pos + 8], "big")
            pos += 8
        mask = b""
        if masked:
            mask = bytes(buf[pos : pos + 4])
            pos += 4
        if pos + n > len(buf):
            break
        data = bytes(buf[pos : pos + n])
        if masked and len(mask) == 4:
            data = unmask(data, mask)
        out.append((op, data))
        off = pos + n
    return out, off


def unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """A WebSocket payload XORed with its 4-byte masking key (RFC 6455 5.3), in one
    big-integer operation rather than a byte at a time."""
    n = len(data)
    key = (bytes(mask) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


_NOT_JSON = object()


def is_json(body: bytes) -> bool:
    """`body` is one JSON document (json.loads would read it)."""
    return _json(body.strip()) is not _NOT_JSON


_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # json's C scanner, as loads uses


def _json(body: bytes) -> object:
    """`json.loads` of a stripped body that starts like JSON, else _NOT_JSON.

    As json.loads reads it, without its per-call layers: UTF-8 unless the second byte
    is zero (then json.loads itself runs, for its encoding detection), one scan from
    the first byte (a stripped body has no leading white space), and only JSON's white
    space may follow the value.
    """
    text = body.strip()
    if not text.startswith((b"{", b"[")):
        return _NOT_JSON
    try:
        if len(text) > 1 and not text[1]:
            return json.loads(text)
        s = text.decode("utf-8", "surrogatepass")
        doc, end = _scan(s, 0)
    except (ValueError, UnicodeDecodeError, StopIteration):
        return _NOT_JSON
    if end != len(s) and s[end:].strip(" \t\n\r"):
        return _NOT_JSON  # json.loads: "Extra data"
    return doc


def without_jsep_python(body: bytes) -> bool:
    """True when `signalling(body)` surely finds no JSEP and raises nothing: its messages
    can be decoded later (model.JanusLog). No "jsep" spelled out or escaped (a \\u escape
    may spell a key), no NUL (json.loads then reads UTF-16 or UTF-32), and nesting far
    below where json's scanner raises RecursionError. `without_jsep` is this, compiled
    when built (`_httpsplit.without_jsep`, one pass over the body)."""
    return (
        b"jsep" not in body
        and b"\\u" not in body
        and b"\x00" not in body
        and body.count(b"[") + body.count(b"{") < 100
    )


def signalling(body: bytes) -> tuple[list[dict[str, object]], JsepFound | None]:
    """`janus_messages(body)` and `jsep(body)`, from one JSON parse."""
    doc = _json(body)
    if type(doc) is dict:  # one message (JSON makes exact dicts, lists and strs)
        j = doc.get("jsep")
        found = None
        if type(j) is dict and type(j.get("sdp")) is str:
            found = (str(j.get("type", "")), j["sdp"], doc)
        return ([doc] if type(doc.get("janus")) is str else []), found
    if doc is _NOT_JSON:
        return [], None
    return _janus_messages(doc), _jsep(doc)


JsepFound = tuple[str, str, dict[str, object]]
#: a JSEP as the walk reads it: type, SDP, the Janus session as text (`session_text`)
JsepRead = tuple[str, str, str | None]


def session_text(doc: dict[str, object]) -> str | None:
    """The session a Janus message names (its session_id, else its sender), as text."""
    session = doc.get("session_id") or doc.get("sender")
    return str(session) if session else None


def jsep_read_python(body: bytes) -> JsepRead | None:
    """What `jsep_read` answers, from `signalling`: for a JSON body carrying a JSEP, its
    type, SDP and session (else None). `jsep_read` is the compiled scan (`_jsepscan.jsep`:
    the same answer, or None for what it leaves to `signalling`), and without it nothing
    (`signalling` reads every body): this is its reference."""
    found = signalling(body)[1]
    return None if found is None else (found[0], found[1], session_text(found[2]))


def _not_read(body: bytes) -> JsepRead | None:
    """`jsep_read` when `_jsepscan` is not built: `signalling` reads the body."""
    return None


def jsep(body: bytes) -> JsepFound | None:
    """(type, sdp, whole JSON) when a JSON body carries a JSEP offer or answer."""
    doc = _json(body)
    return None if doc is _NOT_JSON else _jsep(doc)


def _jsep(doc: object) -> JsepFound | None:
    if isinstance(doc, list):  # Janus long-poll replies batch events in an array
        doc = next(
            (d for d in doc if isinstance(d, dict) and isinstance(d.get("jsep"), dict)), None
        )
    if not isinstance(doc, dict):
        return None
    j = doc.get("jsep")
    if isinstance(j, dict) and isinstance(j.get("sdp"), str):
        return str(j.get("type", "")), j["sdp"], doc
    return None


def janus_messages(body: bytes) -> list[dict[str, object]]:
    """The Janus API messages in a JSON body (long-poll replies batch them in an array)."""
    doc = _json(body)
    return [] if doc is _NOT_JSON else _janus_messages(doc)


def _janus_messages(doc: object) -> list[dict[str, object]]:
    docs = doc if isinstance(doc, list) else [doc]
    return [d for d in docs if isinstance(d, dict) and isinstance(d.get("janus"), str)]


def janus_label(msg: dict[str, object]) -> str:
    """`message register`, `event registered`, `success`, ...: what a ladder arrow says."""
    verb = str(msg["janus"])
    body = msg.get("body")
    if isinstance(body, dict) and body.get("request"):
        return f"{verb} {body['request']}"
    data = msg.get("plugindata")
    data = data.get("data") if isinstance(data, dict) else None
    if isinstance(data, dict):
        result = data.get("result")
        if isinstance(result, dict) and result.get("event"):
            return f"{verb} {result['event']}"
        if data.get("error"):
            return f"{verb} error {data.get('error_code', '')}".rstrip()
    return verb


jsep_read = _not_read if _jsepscan is None else _jsepscan.jsep

if _httpsplit is not None:
    _httpsplit.set_fallback(read_bodies_python)
    read_bodies = _httpsplit.bodies
    without_jsep = _httpsplit.without_jsep
else:
    read_bodies = read_bodies_python
    without_jsep = without_jsep_python
