"""An RFC 5780 STUN server on two addresses x two ports, run inside a lab node.

`python -m harness.nat.stunserver --primary A1 --alternate A2` binds the four
sockets, prints one JSON line `{"ready": true, "ports": [P1, P2], ...}` and
answers Binding requests from the socket CHANGE-REQUEST asks for, until
SIGTERM or `--lifetime` seconds, so a forgotten server stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import sys

from harness.nat.stun import (
    BINDING_REQUEST,
    BINDING_SUCCESS,
    Address,
    Attr,
    Message,
    StunError,
    parse_change_request,
    parse_response_port,
)

SOFTWARE = b"rtc-harness nat probe"


class StunServer:
    """Four UDP sockets: (address index, port index) -> socket."""

    def __init__(self, addresses: tuple[str, str], ports: tuple[int, int]) -> None:
        self.addresses = addresses
        self.ports = ports
        self.sockets: dict[tuple[int, int], socket.socket] = {}
        self.answered = 0

    def bind(self) -> None:
        try:
            for a, addr in enumerate(self.addresses):
                for p, port in enumerate(self.ports):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    self.sockets[(a, p)] = sock
                    sock.bind((addr, port))
                    sock.setblocking(False)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()

    def response(
        self, data: bytes, source: Address, at: tuple[int, int]
    ) -> tuple[bytes, tuple[int, int], Address] | None:
        """The answer to a datagram received on socket `at`: (bytes, socket to use, destination)."""
        try:
            req = Message.decode(data)
            change_ip, change_port = parse_change_request(req.get(Attr.CHANGE_REQUEST))
            port = parse_response_port(req.get(Attr.RESPONSE_PORT))
        except StunError:
            return None
        if req.type != BINDING_REQUEST:
            return None
        out = (at[0] ^ change_ip, at[1] ^ change_port)
        resp = Message(BINDING_SUCCESS, req.transaction_id)
        resp.add_address(Attr.XOR_MAPPED_ADDRESS, source)
        resp.add_address(Attr.MAPPED_ADDRESS, source)
        resp.add_address(Attr.RESPONSE_ORIGIN, (self.addresses[out[0]], self.ports[out[1]]))
        resp.add_address(Attr.OTHER_ADDRESS, (self.addresses[1 - at[0]], self.ports[1 - at[1]]))
        resp.add(Attr.SOFTWARE, SOFTWARE)
        return resp.encode(), out, (source[0], port or source[1])

    async def serve(self, lifetime: float) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        for at, sock in self.sockets.items():
            loop.add_reader(sock.fileno(), self._on_readable, at)
        try:
            await asyncio.wait_for(stop.wait(), lifetime)
        except TimeoutError:
            pass
        finally:
            for sock in self.sockets.values():
                loop.remove_reader(sock.fileno())

    def _on_readable(self, at: tuple[int, int]) -> None:
        try:
            data, source = self.sockets[at].recvfrom(2048)
        except BlockingIOError:
            return
        answer = self.response(data, source, at)
        if answer is not None:
            payload, out, dest = answer
            try:
                self.sockets[out].sendto(payload, dest)
                self.answered += 1
            except OSError as exc:  # e.g. no route back: the probe sees no answer
                print(f"send to {source} failed: {exc}", file=sys.stderr, flush=True)


def bind_free_ports(addresses: tuple[str, str], first: int | None) -> StunServer:
    """Two ports free on both addresses: `first` and first+1, else random pairs."""
    candidates = [first] if first else []
    candidates += [random.randrange(20000, 60000, 2) for _ in range(20)]
    for p in candidates:
        server = StunServer(addresses, (p, p + 1))
        try:
            server.bind()
            return server
        except OSError:
            continue
    raise OSError(f"no two free UDP ports on {addresses}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--primary", required=True)
    ap.add_argument("--alternate", required=True)
    ap.add_argument("--port", type=int, default=None, help="first port (default: any free pair)")
    ap.add_argument("--lifetime", type=float, default=300.0)
    args = ap.parse_args(argv)
    server = bind_free_ports((args.primary, args.alternate), args.port)
    ready = {"ready": True, "addresses": list(server.addresses), "ports": list(server.ports)}
    print(json.dumps(ready), flush=True)
    try:
        asyncio.run(server.serve(args.lifetime))
    finally:
        server.close()
    print(json.dumps({"stopped": True, "answered": server.answered}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
