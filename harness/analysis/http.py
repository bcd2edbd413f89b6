"""HTTP/1.1 and WebSocket framing over reassembled TCP, for signalling bodies.

Janus' HTTP and WebSocket APIs carry JSEP SDPs in JSON (`"jsep": {"type",
"sdp"}`); SIP over WebSocket (RFC 7118) carries one SIP message per frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"OPTIONS ", b"HEAD ")


@dataclass
class HttpMessage:
    """One request or response with its body."""

    start: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def is_upgrade_to_websocket(self) -> bool:
        return (
            self.start.split(" ")[1:2] == ["101"]
            and "websocket" in self.headers.get("upgrade", "").lower()
        )


def looks_like_http(p: bytes | bytearray) -> bool:
    return p.startswith(_METHODS) or p.startswith(b"HTTP/1.")


def split_http(buf: bytes | bytearray) -> tuple[list[HttpMessage], int]:
    """Complete HTTP messages at the start of `buf` and the bytes they used."""
    out: list[HttpMessage] = []
    off = 0
    while True:
        end = buf.find(b"\r\n\r\n", off)
        if end < 0:
            return out, off
        lines = bytes(buf[off:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        pos = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, pos = _dechunk(buf, pos)
            if pos < 0:
                return out, off
        else:
            length = headers.get("content-length", "0").strip()
            n = int(length) if length.isdigit() else 0
            if pos + n > len(buf):
                return out, off
            body, pos = bytes(buf[pos : pos + n]), pos + n
        out.append(HttpMessage(lines[0], headers, body))
        off = pos
        if out[-1].is_upgrade_to_websocket:
            return out, off


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


def split_ws(buf: bytes | bytearray) -> tuple[list[tuple[int, bytes]], int]:
    """Complete WebSocket frames (RFC 6455) as (opcode, unmasked payload)."""
    out: list[tuple[int, bytes]] = []
    off = 0
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
            key = (mask * (n // 4 + 1))[:n]
            data = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        out.append((op, data))
        off = pos + n
    return out, off


def jsep(body: bytes) -> tuple[str, str, dict[str, object]] | None:
    """(type, sdp, whole JSON) when a JSON body carries a JSEP offer or answer."""
    text = body.strip()
    if not text.startswith((b"{", b"[")):
        return None
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
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
    text = body.strip()
    if not text.startswith((b"{", b"[")):
        return []
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return []
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
