"""The measuring half of the NAT probe, run inside a lab host.

`python -m harness.nat.probeclient --server A1:P1 [--bind ADDR]` runs the
RFC 5780 tests against an `harness.nat.stunserver` and prints one JSON object
of raw observations (addresses seen, answers received); `harness.nat.probe`
turns them into behaviours. Each socket has one job, so a test never sees the
state an earlier test left in the NAT.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.nat.stun import (
    BINDING_REQUEST,
    BINDING_SUCCESS,
    Address,
    Attr,
    Message,
    StunError,
    change_request,
    response_port,
)

FIRST_RTO = 0.1
FIRST_WAIT = 3.0
"""The first request also waits out a lost ARP (retried after 1 s), e.g. on a fresh bridge port."""


def send_times(wait: float) -> list[float]:
    """When to (re)send one request: 0, then doubling intervals from 0.1 s, all before `wait`."""
    times, rto = [0.0], FIRST_RTO
    while times[-1] + rto < wait:
        times.append(times[-1] + rto)
        rto *= 2
    return times


@dataclass
class Answer:
    """What one Binding request brought back (None fields: no answer)."""

    sent_to: Address
    mapped: Address | None = None
    origin: Address | None = None
    other: Address | None = None
    received_from: Address | None = None


@dataclass
class Observations:
    local: Address
    mapping: list[Answer] = field(default_factory=list)
    """Tests I, II, III of RFC 5780 4.3 from one socket (II and III only if I answered)."""
    filtering_local: Address | None = None
    filtering: dict[str, Answer] = field(default_factory=dict)
    """"plain", "change-ip-port", "change-port" (RFC 5780 4.4) from a second socket."""
    hairpin_local: Address | None = None
    hairpin_from: Address | None = None
    """Source address of our own request, sent to our mapped address, as it came back."""


def _socket(bind: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind, 0))
    return sock


def _receive(sock: socket.socket, deadline: float, accept: bytes) -> tuple[Message, Address] | None:
    """The first STUN message with transaction id `accept` before `deadline`."""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, source = sock.recvfrom(2048)
        except TimeoutError:
            return None
        try:
            msg = Message.decode(data)
        except StunError:
            continue
        if msg.transaction_id == accept:
            return msg, source
    return None


def exchange(
    out: socket.socket, to: Address, req: Message, into: socket.socket, wait: float
) -> tuple[Message, Address] | None:
    """Send `req` from `out` to `to` with retransmissions until its id arrives on `into`."""
    data = req.encode()
    start = time.monotonic()
    times = send_times(wait)
    for i, at in enumerate(times):
        time.sleep(max(0.0, start + at - time.monotonic()))
        out.sendto(data, to)
        until = start + (times[i + 1] if i + 1 < len(times) else wait)
        got = _receive(into, until, req.transaction_id)
        if got is not None:
            return got
    return None


def transact(sock: socket.socket, to: Address, wait: float, change: bytes | None = None) -> Answer:
    """One Binding request; an empty Answer if nothing came back."""
    req = Message(BINDING_REQUEST)
    if change is not None:
        req.add(Attr.CHANGE_REQUEST, change)
    answer = Answer(sent_to=to)
    got = exchange(sock, to, req, sock, wait)
    if got is not None and got[0].type == BINDING_SUCCESS:
        msg, answer.received_from = got
        answer.mapped = msg.address(Attr.XOR_MAPPED_ADDRESS) or msg.address(Attr.MAPPED_ADDRESS)
        answer.origin = msg.address(Attr.RESPONSE_ORIGIN)
        answer.other = msg.address(Attr.OTHER_ADDRESS)
    return answer


def observe(server: Address, bind: str, wait: float) -> Observations:
    with _socket(bind) as m:
        obs = Observations(local=m.getsockname())
        first = transact(m, server, max(wait, FIRST_WAIT))
        obs.mapping.append(first)
        if first.mapped is None or first.other is None:
            return obs  # no UDP path, or not an RFC 5780 server: nothing more to learn
        alt_addr, alt_port = first.other
        obs.mapping.append(transact(m, (alt_addr, server[1]), wait))
        obs.mapping.append(transact(m, (alt_addr, alt_port), wait))

        with _socket(bind) as f:
            obs.filtering_local = f.getsockname()
            obs.filtering["plain"] = transact(f, server, wait)
            both = change_request(change_ip=True, change_port=True)
            obs.filtering["change-ip-port"] = transact(f, server, wait, both)
            port = change_request(change_ip=False, change_port=True)
            obs.filtering["change-port"] = transact(f, server, wait, port)

        with _socket(bind) as h:
            # RFC 5780 4.6: from another socket, send to our own mapped address
            obs.hairpin_local = h.getsockname()
            got = exchange(h, first.mapped, Message(BINDING_REQUEST), m, wait)
            obs.hairpin_from = got[1] if got else None
    return obs


def lifetimes(server: Address, bind: str, idle: list[float], wait: float) -> dict[str, Any]:
    """For each idle time, a fresh mapping; after that long, does the server still reach it?

    The server answers a request from another socket to our mapped port
    (RESPONSE-PORT, RFC 5780 4.6), from the address:port the mapping was made
    towards, so any filtering lets it through while the mapping lives.
    """
    socks = [(t, _socket(bind)) for t in sorted(idle)]
    try:
        mapped = {t: transact(s, server, max(wait, FIRST_WAIT)).mapped for t, s in socks}
        start = time.monotonic()
        alive: dict[str, bool | None] = {}
        with _socket(bind) as other:
            for t, s in socks:
                seen = mapped[t]
                if seen is None:
                    alive[str(t)] = None
                    continue
                time.sleep(max(0.0, start + t - time.monotonic()))
                req = Message(BINDING_REQUEST).add(Attr.RESPONSE_PORT, response_port(seen[1]))
                alive[str(t)] = exchange(other, server, req, s, wait) is not None
    finally:
        for _, s in socks:
            s.close()
    return {"mapped": {str(t): m for t, m in mapped.items()}, "alive_after": alive}


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, type=_address, help="primary address:port")
    ap.add_argument("--bind", default="0.0.0.0", help="local address (picks the interface)")
    ap.add_argument("--wait", type=float, default=0.8, help="seconds to wait for one answer")
    ap.add_argument("--idle", help="instead: mapping alive after these idle seconds? (1,5,30)")
    args = ap.parse_args(argv)
    if args.idle:
        idle = [float(t) for t in args.idle.split(",")]
        print(json.dumps(lifetimes(args.server, args.bind, idle, args.wait)))
    else:
        print(json.dumps(asdict(observe(args.server, args.bind, args.wait))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
