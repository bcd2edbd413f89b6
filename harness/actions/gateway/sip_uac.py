"""A SIP extension the harness plays itself, to offer what no extension here offers:
audio plus real-time text (`m=text`, T.140 with RED, RFC 4103) or MSRP (`m=message`,
RFC 4975). It calls through the proxy over TCP, follows the route set, streams a
PCMU tone from its audio port, counts what comes back, and hangs up.

`sip_call_from` starts the call in the background (the callee's step answers it);
`sip_call_result` waits for it and reports the answer: which sections the far end
accepted, which it rejected (port 0), and the audio both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness.actions.gateway.common import component
from harness.actions.gateway.sip_raw import Dialog, read_message
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext

EXTRA_MEDIA = {
    # RFC 4103 with redundancy (RFC 2198), as in the Janus talk's example
    "text": [
        "m=text {port} RTP/AVP 99 98",
        "a=rtpmap:98 t140/1000",
        "a=rtpmap:99 red/1000",
        "a=fmtp:99 98/98/98",
        "a=sendrecv",
    ],
    # RFC 4975 / RFC 6135
    "message": [
        "m=message {port} TCP/MSRP *",
        "a=accept-types:message/cpim text/plain",
        "a=path:msrp://{ip}:{port}/{session};tcp",
        "a=setup:active",
    ],
}


def offer_sdp(ip: str, audio_port: int, extra: list[str]) -> str:
    lines = [
        "v=0",
        f"o=harness {secrets.randbelow(1 << 30)} 1 IN IP4 {ip}",
        "s=-",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {audio_port} RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=ptime:20",
        "a=sendrecv",
    ]
    for i, kind in enumerate(extra):
        port = audio_port + 2 * (i + 1)
        lines += [
            x.format(port=port, ip=ip, session=secrets.token_hex(4)) for x in EXTRA_MEDIA[kind]
        ]
    return "\r\n".join(lines) + "\r\n"


def media_lines(sdp: str) -> list[str]:
    return re.findall(r"^m=.*$", sdp, re.M)


@dataclass
class CallOutcome:
    status: int = 0
    reason: str = ""
    responses: list[str] = field(default_factory=list)
    answer: str = ""
    sent: int = 0
    received: int = 0
    bye: str = ""


async def _media(
    netns: str, local: tuple[str, int], remote: tuple[str, int], seconds: float, tone: bytes
) -> tuple[int, int]:
    """Send PCMU (20 ms packets) to `remote` for `seconds`, count what arrives on `local`."""
    from harness.components.ports import netns_socket

    sock = netns_socket(netns, socket.SOCK_DGRAM)
    sock.bind(local)
    loop = asyncio.get_running_loop()
    ssrc, sent, received = secrets.randbits(32), 0, 0
    t_end = time.monotonic() + seconds
    try:
        while time.monotonic() < t_end:
            chunk = tone[(sent * 160) % len(tone) :][:160].ljust(160, b"\xff")
            header = bytes([0x80, 0]) + (sent & 0xFFFF).to_bytes(2, "big")
            header += (sent * 160 & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
            await loop.sock_sendto(sock, header + chunk, remote)
            sent += 1
            deadline = time.monotonic() + 0.02
            while (left := deadline - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(loop.sock_recv(sock, 2048), left)
                    received += 1
                except TimeoutError:
                    break
    finally:
        sock.close()
    return sent, received


async def call(
    netns: str,
    local: str,
    proxy: tuple[str, int],
    uri: str,
    sdp: str,
    seconds: float,
    tone: bytes,
    timeout: float,
) -> CallOutcome:
    from harness.components.ports import netns_socket

    out = CallOutcome()
    loop = asyncio.get_running_loop()
    sock = netns_socket(netns)
    sock.bind((local, 0))
    await asyncio.wait_for(loop.sock_connect(sock, proxy), timeout)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        d = Dialog(local, sock.getsockname()[1], uri, user="rtt")
        writer.write(d.request("INVITE", 1, f"<{uri}>", sdp))
        await writer.drain()
        async with asyncio.timeout(timeout):
            while True:
                start, fields, body = await read_message(reader)
                if not start.startswith("SIP/2.0 "):
                    continue
                out.responses.append(start)
                code, _, out.reason = start[8:].partition(" ")
                out.status = int(code)
                if out.status >= 200:
                    break
        to = fields.get("to", [f"<{uri}>"])[0]
        if out.status >= 300:
            writer.write(d.request("ACK", 1, to))
            await writer.drain()
            return out
        out.answer = body
        routes = list(reversed([r for v in fields.get("record-route", []) for r in v.split(",")]))
        target = re.search(r"<([^>]+)>", fields.get("contact", [""])[0])
        remote_uri = target.group(1) if target else uri
        writer.write(d.request("ACK", 1, to, uri=remote_uri, routes=routes))
        await writer.drain()
        c = re.search(r"^c=IN IP4 (\S+)", body, re.M)
        m = re.search(r"^m=audio (\d+)", body, re.M)
        if c and m and int(m.group(1)):
            audio_port = int(re.search(r"^m=audio (\d+)", sdp, re.M).group(1))  # type: ignore[union-attr]
            out.sent, out.received = await _media(
                netns, (local, audio_port), (c.group(1), int(m.group(1))), seconds, tone
            )
        writer.write(d.request("BYE", 2, to, uri=remote_uri, routes=routes))
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while not out.bye:
                    start, fields, _ = await read_message(reader)
                    cseq = fields.get("cseq", [""])[0]
                    if start.startswith("SIP/2.0 ") and "BYE" in cseq and int(start[8:11]) >= 200:
                        out.bye = start
        return out
    finally:
        writer.close()


def calls(ctx: ScenarioContext) -> dict[str, asyncio.Task[CallOutcome]]:
    return ctx.extras.setdefault("sip_uac", {})


@action("sip_call_from")
class SipCallFrom(Action):
    """The harness's own SIP UA on `node` calls `user` at `registrar` offering PCMU audio plus
    `extra` sections (text: T.140/RED; message: MSRP), streams `seconds` of a tone, hangs up.
    Runs in the background under `name`; `sip_call_result` collects it."""

    node: str
    user: str
    registrar: str = "kamailio"
    extra: list[Literal["text", "message"]] = []
    seconds: float = 3.0
    tone_hz: int = 800
    name: str = "uac"
    audio_port: int = 30000

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.components.sipp import ulaw_tone

        kam = component(ctx, self.registrar, "kamailio", "sip_call_from")
        if self.node not in ctx.lab.topology.nodes:
            raise StepError(f"sip_call_from: no node {self.node!r}")
        local = str(ctx.lab.topology.node(self.node).iface().address)
        sdp = offer_sdp(local, self.audio_port, list(self.extra))
        uri = f"sip:{self.user}@{kam.listen_address()}"
        task = asyncio.create_task(
            call(
                ctx.lab.netns(self.node),
                local,
                (kam.listen_address(), kam.options.sip_port),
                uri,
                sdp,
                self.seconds,
                ulaw_tone(self.tone_hz),
                self.timeout,
            )
        )
        calls(ctx)[self.name] = task
        return {"uri": uri, "offer_media": media_lines(sdp)}


@action("sip_call_result")
class SipCallResult(Action):
    """Wait for the background call `name`; it must end with `expect_status` (default 200).
    The detail says what the far end did with each offered section."""

    name: str = "uac"
    expect_status: int = 200
    min_received: int = 0
    """Audio packets the UA must have received (0: not judged)."""

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        task = calls(ctx).pop(self.name, None)
        if task is None:
            raise StepError(f"sip_call_result: no call {self.name!r} (sip_call_from first)")
        try:
            out = await asyncio.wait_for(task, self.timeout)
        except (OSError, TimeoutError) as exc:
            raise StepError(f"sip_call_result: the call failed: {exc!r}") from None
        detail = {
            "status": out.status,
            "reason": out.reason,
            "responses": out.responses,
            "answer_media": media_lines(out.answer),
            "audio_sent": out.sent,
            "audio_received": out.received,
            "bye": out.bye,
        }
        ctx.extras.setdefault("sip_uac_done", {})[self.name] = out
        if out.status != self.expect_status:
            raise StepError(
                f"sip_call_result: {out.status} {out.reason}, expected {self.expect_status}: {detail}"
            )
        if out.received < self.min_received:
            raise StepError(
                f"sip_call_result: {out.received} audio packets back < {self.min_received}: {detail}"
            )
        return detail


@action("rtt_bridge")
class RttBridge(Action):
    """Is the extra section of call `name` bridged to the browser (T.140 to a data channel,
    RFC 8865; MSRP, RFC 8873)? Judged from the call's evidence: when the gateway refused the
    call or declined the section (port 0), the verdict is unsupported with that evidence as
    the reason. Accepted sections would need characters verified end to end, which no
    gateway here gives the chance to build: that is a failure, never a pass."""

    name: str = "uac"
    gateway: str

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.errors import UnsupportedError

        out: CallOutcome | None = ctx.extras.get("sip_uac_done", {}).get(self.name)
        if out is None:
            raise StepError(f"rtt_bridge: no finished call {self.name!r} (sip_call_result first)")
        extra = [m for m in media_lines(out.answer) if not m.startswith("m=audio")]
        if out.status >= 300:
            raise UnsupportedError(
                f"{self.gateway} refused the call ({out.status} {out.reason}): nothing bridges "
                "real-time text or MSRP to a WebRTC data channel here"
            )
        declined = [m.strip() for m in extra if re.match(r"m=\w+ 0 ", m)]
        if declined or not extra:
            raise UnsupportedError(
                f"the answer through {self.gateway} declined the section ({', '.join(declined) or 'dropped'} in the "
                "answer): nothing bridges real-time text or MSRP to a WebRTC data channel here"
            )
        raise StepError(
            f"rtt_bridge: {self.gateway} accepted {extra}: verifying characters end to end "
            "is not implemented"
        )
