"""A minimal raw SIP client: one INVITE over TCP, read the answers, ACK (and BYE)."""

from __future__ import annotations

import asyncio
import secrets


async def invite_once(
    netns: str, local: str, target: tuple[str, int], user: str, sdp: str, timeout: float
) -> tuple[int, str, list[str]]:
    """One INVITE over TCP from `netns`; (final status, reason, status lines seen).

    TCP because a WebRTC offer makes the request larger than 1300 bytes (RFC 3261 18.1.1;
    over UDP it would be IP-fragmented). A 2xx is ACKed then ended with a BYE; a failure
    is ACKed (RFC 3261 17.1.1.3).
    """
    from harness.components.ports import netns_socket

    loop = asyncio.get_running_loop()
    sock = netns_socket(netns)
    sock.bind((local, 0))
    async with asyncio.timeout(timeout):
        await loop.sock_connect(sock, target)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            port = sock.getsockname()[1]
            call_id, tag = secrets.token_hex(8), secrets.token_hex(4)
            uri = f"sip:{user}@{target[0]}:{target[1]}"

            def request(method: str, cseq: int, to: str, body: str = "") -> bytes:
                via = f"SIP/2.0/TCP {local}:{port};branch=z9hG4bK{secrets.token_hex(6)}"
                lines = [
                    f"{method} {uri} SIP/2.0",
                    f"Via: {via}",
                    "Max-Forwards: 70",
                    f"From: <sip:webrtc@{local}>;tag={tag}",
                    f"To: {to}",
                    f"Call-ID: {call_id}",
                    f"CSeq: {cseq} {method}",
                    f"Contact: <sip:webrtc@{local}:{port};transport=tcp>",
                    *(["Content-Type: application/sdp"] if body else []),
                    f"Content-Length: {len(body.encode())}",
                ]
                return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

            body = sdp.replace("\r\n", "\n").replace("\n", "\r\n")
            writer.write(request("INVITE", 1, f"<{uri}>", body))
            await writer.drain()
            seen: list[str] = []
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode(errors="replace")
                lines = head.split("\r\n")
                fields = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(":") for x in lines[1:])
                }
                await reader.readexactly(int(fields.get("content-length", "0") or 0))
                if not lines[0].startswith("SIP/2.0 "):
                    continue
                seen.append(lines[0])
                code, _, reason = lines[0][8:].partition(" ")
                if int(code) < 200:
                    continue
                writer.write(request("ACK", 1, fields.get("to", f"<{uri}>")))
                if int(code) < 300:
                    writer.write(request("BYE", 2, fields.get("to", f"<{uri}>")))
                await writer.drain()
                await asyncio.sleep(0.2)  # let the ACK (and BYE) reach the wire before closing
                return int(code), reason, seen
        finally:
            writer.close()
