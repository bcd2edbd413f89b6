"""A minimal raw SIP client over TCP: one request, read the answers (ACK and BYE an INVITE).

Real SIP on the lab's wire from a node with no SIP stack of its own: a WebRTC offer
sent straight to a plain extension, a MESSAGE to a registered user.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field


@dataclass
class Dialog:
    """The fields one client transaction (and its ACK/BYE) share."""

    local: str
    port: int
    uri: str
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    user: str = "webrtc"

    def request(
        self,
        method: str,
        cseq: int,
        to: str,
        body: str = "",
        ctype: str = "application/sdp",
        uri: str | None = None,
        routes: list[str] | None = None,
    ) -> bytes:
        via = f"SIP/2.0/TCP {self.local}:{self.port};branch=z9hG4bK{secrets.token_hex(6)}"
        lines = [
            f"{method} {uri or self.uri} SIP/2.0",
            f"Via: {via}",
            *(f"Route: {r}" for r in routes or []),
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.local}>;tag={self.tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{self.local}:{self.port};transport=tcp>",
            *([f"Content-Type: {ctype}"] if body else []),
            f"Content-Length: {len(body.encode())}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def read_message(reader: asyncio.StreamReader) -> tuple[str, dict[str, list[str]], str]:
    """(start line, headers by lower-case name, body) of the next SIP message on a stream."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode(errors="replace")
    lines = head.split("\r\n")
    fields: dict[str, list[str]] = {}
    for x in lines[1:]:
        k, _, v = x.partition(":")
        if k.strip():
            fields.setdefault(k.strip().lower(), []).append(v.strip())
    size = int(fields.get("content-length", ["0"])[0] or 0)
    body = (await reader.readexactly(size)).decode(errors="replace")
    return lines[0], fields, body


async def request_once(
    netns: str,
    local: str,
    target: tuple[str, int],
    method: str,
    uri: str,
    body: str,
    timeout: float,
    ctype: str = "application/sdp",
    user: str = "webrtc",
) -> tuple[int, str, list[str]]:
    """One request over TCP from `netns`; (final status, reason, status lines seen).

    TCP because a WebRTC offer makes a request larger than 1300 bytes (RFC 3261 18.1.1;
    over UDP it would be IP-fragmented). An INVITE's 2xx is ACKed then ended with a BYE;
    a failure is ACKed (RFC 3261 17.1.1.3).
    """
    from harness.components.ports import netns_socket

    loop = asyncio.get_running_loop()
    sock = netns_socket(netns)
    sock.bind((local, 0))
    async with asyncio.timeout(timeout):
        await loop.sock_connect(sock, target)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            d = Dialog(local, sock.getsockname()[1], uri, user=user)
            text = body.replace("\r\n", "\n").replace("\n", "\r\n")
            writer.write(d.request(method, 1, f"<{uri}>", text, ctype))
            await writer.drain()
            seen: list[str] = []
            while True:
                start, fields, _ = await read_message(reader)
                if not start.startswith("SIP/2.0 "):
                    continue
                seen.append(start)
                code, _, reason = start[8:].partition(" ")
                if int(code) < 200:
                    continue
                if method == "INVITE":
                    to = fields.get("to", [f"<{uri}>"])[0]
                    writer.write(d.request("ACK", 1, to))
                    if int(code) < 300:
                        writer.write(d.request("BYE", 2, to))
                    await writer.drain()
                    await asyncio.sleep(0.2)  # let the ACK (and BYE) reach the wire
                return int(code), reason, seen
        finally:
            writer.close()


async def invite_once(
    netns: str, local: str, target: tuple[str, int], user: str, sdp: str, timeout: float
) -> tuple[int, str, list[str]]:
    """One INVITE with `sdp` to `user` at `target` (see request_once)."""
    uri = f"sip:{user}@{target[0]}:{target[1]}"
    return await request_once(netns, local, target, "INVITE", uri, sdp, timeout)
