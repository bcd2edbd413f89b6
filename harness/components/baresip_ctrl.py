"""baresip's ctrl_tcp interface: JSON commands in netstrings over TCP (inside the node).

It lets a scenario make an extension act mid-call (dial, send DTMF, hold, transfer,
send a SIP MESSAGE) rather than only at start-up. Each command opens a connection,
sends `{"command", "params", "token"}` and waits for the response with that token;
events baresip pushes meanwhile are kept for the caller.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from harness.components.ports import netns_socket
from harness.errors import HarnessError


class BaresipCommandError(HarnessError):
    """baresip refused a control command, or did not answer it in time."""


def netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


async def read_netstring(reader: asyncio.StreamReader) -> bytes:
    size = int((await reader.readuntil(b":"))[:-1])
    data = await reader.readexactly(size + 1)
    if data[-1:] != b",":
        raise BaresipCommandError(f"ctrl_tcp: bad netstring end {data[-1:]!r}")
    return data[:-1]


@dataclass
class BaresipControl:
    """Where one baresip's ctrl_tcp listens (address, port, the node's namespace)."""

    netns: str
    host: str
    port: int
    events: list[dict[str, Any]] = field(default_factory=list)

    async def command(self, command: str, params: str = "", timeout: float = 5.0) -> str:
        """Run `command` (e.g. "dial", "sndcode"); returns baresip's response text."""
        token = secrets.token_hex(4)
        loop = asyncio.get_running_loop()
        sock = netns_socket(self.netns)
        async with asyncio.timeout(timeout):
            try:
                await loop.sock_connect(sock, (self.host, self.port))
            except BaseException:
                sock.close()
                raise
            reader, writer = await asyncio.open_connection(sock=sock)
            try:
                msg = {"command": command, "params": params, "token": token}
                writer.write(netstring(json.dumps(msg).encode()))
                await writer.drain()
                while True:
                    reply = json.loads(await read_netstring(reader))
                    if reply.get("event"):
                        self.events.append(reply)
                        continue
                    if reply.get("response") and reply.get("token") == token:
                        break
            finally:
                writer.close()
        data = str(reply.get("data", ""))
        if not reply.get("ok"):
            raise BaresipCommandError(f"baresip {command} {params!r}: {data}")
        return data
