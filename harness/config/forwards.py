"""Router port forwards: what arrives at a NAT router's WAN address on a port goes to a LAN host.

The YAML (`forwards:` on a router) says protocol, public port or range and the
target `node[:port]`; `resolve_forwards` checks it against the resolved nodes
(a host on one of the router's LANs, no overlapping ranges) with file:line
errors, and harness/nat/ruleset.py renders the DNAT and its static SNAT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from harness.config.topology import Node, RouterSpec
    from harness.config.yamlsource import YamlSource


class Protocol(StrEnum):
    UDP = "udp"
    TCP = "tcp"


class ForwardSpec(BaseModel):
    """A port forward: what arrives at the router's WAN address on `port` goes to `to`."""

    model_config = ConfigDict(extra="forbid")

    protocol: Protocol
    port: int | str
    """A public port (3478) or an inclusive range ("49152-49407", forwarded port for port)."""
    to: str
    """The LAN host, `node` (same port) or `node:port` (a single port only)."""


@dataclass(frozen=True)
class Forward:
    """A resolved port forward: `protocol` ports low..high on the WAN go to `address`."""

    protocol: Protocol
    low: int
    high: int
    node: str
    address: IPv4Address
    to_port: int | None = None
    """The LAN port of a single forwarded port when it differs (None: the same port)."""

    @property
    def ports(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def _port_range(v: int | str, error: Any) -> tuple[int, int]:
    """`3478` or `"49152-49407"` as (low, high); `error(message)` makes the exception."""
    text = str(v)
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", text.strip())
    if not m:
        raise error(f"{text!r} is not a port or a range LOW-HIGH")
    low = int(m.group(1))
    high = int(m.group(2) or low)
    if not 1 <= low <= high <= 65535:
        raise error(f"{text!r}: ports are 1-65535 and LOW <= HIGH")
    return low, high


def resolve_forwards(
    src: YamlSource, rname: str, r: RouterSpec, nodes: dict[str, Node]
) -> list[Forward]:
    """Resolve and check a router's port forwards (targets on its LANs, no overlaps)."""
    found: list[Forward] = []
    if r.forwards and not r.nat.enabled:
        raise src.error(
            ("routers", rname, "forwards"),
            "port forwards need a NAT (`nat:`); a router without one routes its LANs already",
        )
    for i, f in enumerate(r.forwards):
        path: tuple[str | int, ...] = ("routers", rname, "forwards", i)
        low, high = _port_range(f.port, lambda m, p=path: src.error(p + ("port",), m))
        name, _, port = f.to.partition(":")
        target = nodes.get(name)
        lan_nets = set(r.lan)
        ifc = next(
            (x for x in (target.interfaces.values() if target else []) if x.network in lan_nets),
            None,
        )
        if target is None or target.is_router or ifc is None:
            raise src.error(
                path + ("to",),
                f"{name!r} is not a host on {rname}'s LAN ({', '.join(r.lan)})",
            )
        to_port = None
        if port:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise src.error(path + ("to",), f"port {port!r} is not 1-65535")
            if low != high:
                raise src.error(
                    path + ("to",), "a range is forwarded port for port: give no `:port`"
                )
            to_port = int(port)
        for other in found:
            if other.protocol is f.protocol and low <= other.high and other.low <= high:
                raise src.error(
                    path + ("port",),
                    f"{f.protocol} {low}-{high} overlaps an earlier forward ({other.ports})",
                )
        found.append(Forward(f.protocol, low, high, name, ifc.address, to_port))
    return found
