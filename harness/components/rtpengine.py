"""rtpengine in userspace, controlled over its ng protocol (bencode over UDP).

Kamailio drives it for WebRTC<->RTP bridging; the harness speaks ng too, to check
it answers and to look at calls. The kernel forwarding module is not available in
a lab, so `--table=-1` keeps every packet in userspace, and `--config-file=none`
stops it from loading the packaged /etc/rtpengine/rtpengine.conf.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.components.base import Component, ComponentOptions, register
from harness.components.ports import (
    WILDCARD,
    Endpoint,
    PortRange,
    is_bound,
    netns_socket,
    parse_range,
    port_range,
)
from harness.errors import ComponentError

if TYPE_CHECKING:
    from harness.lab.lab import Lab


# ---------------------------------------------------------------- bencode


def bencode(value: Any) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list | tuple):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """Decode one bencoded value; byte strings come back as str (ng is text)."""
    value, end = _bdecode(data, 0)
    if end != len(data):
        raise ValueError(f"trailing bytes after bencoded value at {end}")
    return value


def _bdecode(data: bytes, i: int) -> tuple[Any, int]:
    c = data[i : i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i : i + 1] != b"e":
            item, i = _bdecode(data, i)
            out.append(item)
        return out, i + 1
    if c == b"d":
        d, i = {}, i + 1
        while data[i : i + 1] != b"e":
            key, i = _bdecode(data, i)
            d[key], i = _bdecode(data, i)
        return d, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        raw = data[colon + 1 : colon + 1 + n]
        return raw.decode(errors="surrogateescape"), colon + 1 + n
    raise ValueError(f"bad bencode at byte {i}: {data[i : i + 10]!r}")


async def ng_request(
    netns: str, address: str, port: int, command: dict[str, Any], timeout: float = 2.0
) -> dict[str, Any]:
    """Send one ng command from inside `netns`; return rtpengine's reply dictionary.

    An ng message is "<cookie> <bencoded dict>"; the reply echoes the cookie.
    """
    loop = asyncio.get_running_loop()
    cookie = secrets.token_hex(8).encode()
    sock = netns_socket(netns, socket.SOCK_DGRAM)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (address, port))
            await loop.sock_sendall(sock, cookie + b" " + bencode(command))
            while True:
                got_cookie, _, body = (await loop.sock_recv(sock, 65535)).partition(b" ")
                if got_cookie == cookie:
                    return bdecode(body)
    finally:
        sock.close()


# ---------------------------------------------------------------- component


class RtpengineOptions(ComponentOptions):
    address: IPv4Address | None = None
    """Media and control address (default: the node's first interface)."""
    ng_port: int = Field(2223, ge=1, le=65535)
    port_range: PortRange = "30000-30199"
    log_level: int = Field(6, ge=0, le=7)


@register
class Rtpengine(Component):
    kind = "rtpengine"
    Options = RtpengineOptions
    binary = "rtpengine"
    options: RtpengineOptions

    def listen_address(self) -> str:
        return str(self.options.address) if self.options.address else self.address

    @property
    def ng_address(self) -> str:
        """ "IP:PORT" of the ng socket, as Kamailio's rtpengine_sock wants it."""
        return f"{self.listen_address()}:{self.options.ng_port}"

    def ports(self) -> list[Endpoint]:
        o = self.options
        addr = str(o.address or WILDCARD)
        return [("udp", addr, o.ng_port), *port_range("udp", addr, *parse_range(o.port_range))]

    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        o = self.options
        low, high = parse_range(o.port_range)
        return [
            self.binary,
            "--config-file=none",
            "--table=-1",
            f"--interface={self.listen_address()}",
            f"--listen-ng={self.ng_address}",
            f"--port-min={low}",
            f"--port-max={high}",
            f"--log-level={o.log_level}",
            f"--pidfile={workdir / 'rtpengine.pid'}",
            "--foreground",
            "--log-stderr",
        ]

    def is_ready(self) -> bool:
        assert self.proc is not None
        return is_bound(self.proc.pid, "udp", self.options.ng_port, self.listen_address())

    async def ng(self, command: dict[str, Any], from_node: str | None = None) -> dict[str, Any]:
        """One ng command, sent from `from_node` (default: our own node); errors raise."""
        assert self.lab is not None
        netns = self.lab.netns(from_node or self.node)
        reply = await ng_request(netns, self.listen_address(), self.options.ng_port, command)
        if reply.get("result") == "error":
            raise ComponentError(
                self.name, f"ng {command.get('command')}: {reply.get('error-reason')}"
            )
        return reply

    async def ping(self, from_node: str | None = None) -> bool:
        return (await self.ng({"command": "ping"}, from_node)).get("result") == "pong"
