"""Ports of components: clashes found before start, bound ports seen in /proc, and
sockets made inside a node's namespace so the harness can reach a component port
without routing anything out of the lab.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from harness.errors import ComponentError

if TYPE_CHECKING:
    from harness.components.base import Component

Endpoint = tuple[str, str, int]
"""(protocol, address, port) as returned by Component.ports(); "0.0.0.0" means every address."""

WILDCARD = "0.0.0.0"


def port_range(proto: str, address: str, low: int, high: int) -> list[Endpoint]:
    """Every port of a media range, so two overlapping ranges clash like two equal ports."""
    return [(proto, address, p) for p in range(low, high + 1)]


def parse_range(text: str) -> tuple[int, int]:
    """ "20000-20199" -> (20000, 20199); a ValueError names what is wrong."""
    low_s, sep, high_s = text.partition("-")
    if not sep or not low_s.isdigit() or not high_s.isdigit():
        raise ValueError(f"port range {text!r} is not LOW-HIGH")
    low, high = int(low_s), int(high_s)
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"port range {text!r} must satisfy 1024 <= LOW <= HIGH <= 65535")
    return low, high


def _valid_range(text: str) -> str:
    parse_range(text)
    return text


PortRange = Annotated[str, AfterValidator(_valid_range)]
"""An option holding "LOW-HIGH", checked when the component's options are validated."""


def check_port_clashes(components: Iterable[Component]) -> None:
    """Raise ComponentError when two components on one node would bind the same port.

    Checked before anything starts, so the error names both components instead of
    one of them dying with "Address already in use" half-way through a scenario.
    """
    owners: dict[tuple[str, str, int], list[tuple[str, str]]] = {}  # (node, proto, port)
    for comp in components:
        for proto, addr, port in dict.fromkeys(comp.ports()):
            holders = owners.setdefault((comp.node, proto, port), [])
            clash = next(
                (
                    (name, a)
                    for name, a in holders
                    if name != comp.name and (a == addr or WILDCARD in (a, addr))
                ),
                None,
            )
            if clash is not None:
                raise ComponentError(
                    comp.name,
                    f"port clash on node {comp.node!r}: {proto} {addr}:{port} is also bound "
                    f"by {clash[0]!r} ({clash[1]}:{port})",
                )
            holders.append((comp.name, addr))


def bound_ports(pid: int | str, proto: str) -> set[tuple[str, int]]:
    """(address, port) pairs bound in the network namespace of `pid` (listening for TCP);
    `pid="thread-self"` reads the namespace the calling thread is in.

    Reads /proc/<pid>/net/<proto>: a ready check that sends no traffic at all.
    """
    path = Path(f"/proc/{pid}/net/{proto}")
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return set()
    found: set[tuple[str, int]] = set()
    for line in lines:
        fields = line.split()
        local, state = fields[1], fields[3]
        if proto.startswith("tcp") and state != "0A":  # 0A = LISTEN
            continue
        hex_addr, hex_port = local.split(":")
        addr = socket.inet_ntoa(int(hex_addr, 16).to_bytes(4, "little"))
        found.add((addr, int(hex_port, 16)))
    return found


def is_bound(pid: int, proto: str, port: int, address: str | None = None) -> bool:
    """True once something in the namespace of `pid` binds `port` (on `address` or all)."""
    return any(
        p == port and (address is None or a in (address, WILDCARD))
        for a, p in bound_ports(pid, proto)
    )


def netns_socket(netns: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A non-blocking IPv4 socket that lives in network namespace `netns`.

    A socket keeps the namespace it was made in, so the harness can talk to a
    component inside a node (or act from a peer's node) without a route out of it.
    """

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        sock.setblocking(False)
        return sock

    from harness.runtime.nsutil import run_in_netns  # ctypes: not for validation

    return run_in_netns(netns, make)
