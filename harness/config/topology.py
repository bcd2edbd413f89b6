"""Topology model: networks, hosts, routers; validated with file:line errors.

The YAML says what a user means (a peer behind a symmetric NAT); `resolve()`
turns it into what the lab builds (addresses, gateways, routes), so every
runtime builds the same thing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.config.forwards import Forward, ForwardSpec, resolve_forwards
from harness.config.yamlsource import YamlSource, load_yaml, parse_yaml
from harness.nat.behaviour import NatBehaviour

# DEVELOPERS.md network rule: labs only use these ranges.
ALLOWED_RANGES = [
    IPv4Network("198.18.0.0/15"),  # emulated internet
    IPv4Network("100.64.0.0/10"),  # carrier NAT
    IPv4Network("192.168.0.0/16"),  # LANs
]
IFNAME = re.compile(r"^[a-z][a-z0-9_]{0,11}$")
NODENAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Firewall(StrEnum):
    OPEN = "open"
    UDP_BLOCKED = "udp-blocked"
    """Only TCP to ports 80 and 443 may leave the LAN (a corporate proxy-only network)."""


class NetworkSpec(Strict):
    subnet: IPv4Network
    description: str = ""

    @field_validator("subnet")
    @classmethod
    def _in_lab_ranges(cls, v: IPv4Network) -> IPv4Network:
        if not any(v.subnet_of(r) for r in ALLOWED_RANGES):
            raise ValueError(
                f"{v} is outside the lab ranges "
                "(198.18.0.0/15 internet, 100.64.0.0/10 carrier, 192.168.0.0/16 LAN)"
            )
        if v.prefixlen > 29:
            raise ValueError(f"{v} is too small for a lab segment (at most /29)")
        return v


class InterfaceSpec(Strict):
    network: str
    address: IPv4Address | None = None
    gateway: IPv4Address | None = None
    """Default gateway through this interface; found automatically when a router serves the network."""


class HostSpec(Strict):
    description: str = ""
    interfaces: dict[str, InterfaceSpec] = Field(min_length=1)
    default_route: str | None = None
    """Interface that carries the default route (default: the first one with a gateway)."""


class RouteSpec(Strict):
    to: IPv4Network
    via: IPv4Address


class RouterSpec(Strict):
    description: str = ""
    lan: list[str] = Field(min_length=1)
    wan: str
    nat: NatBehaviour = Field(default_factory=lambda: NatBehaviour.preset("none"))
    firewall: Firewall = Firewall.OPEN
    wan_address: IPv4Address | None = None
    routes: list[RouteSpec] = []
    forwards: list[ForwardSpec] = []
    """Port forwards (DNAT) from the WAN address to LAN hosts; needs `nat`."""

    @field_validator("lan", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class TopologySpec(Strict):
    name: str
    description: str = ""
    networks: dict[str, NetworkSpec] = Field(min_length=1)
    hosts: dict[str, HostSpec] = {}
    routers: dict[str, RouterSpec] = {}


# ---------------------------------------------------------------- resolved form


class NodeKind(StrEnum):
    HOST = "host"
    ROUTER = "router"


@dataclass
class Interface:
    """One interface of a node, attached to one network."""

    node: str
    name: str
    network: str
    address: IPv4Address
    prefixlen: int
    gateway: IPv4Address | None = None
    role: str = ""  # "lan" / "wan" on routers

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass
class Node:
    name: str
    kind: NodeKind
    interfaces: dict[str, Interface]
    default_route: str | None = None
    routes: list[tuple[IPv4Network, IPv4Address]] = field(default_factory=list)
    nat: NatBehaviour | None = None
    firewall: Firewall = Firewall.OPEN
    description: str = ""
    forwards: list[Forward] = field(default_factory=list)

    @property
    def is_router(self) -> bool:
        return self.kind is NodeKind.ROUTER

    def iface(self, name: str | None = None) -> Interface:
        if name is None:
            return next(iter(self.interfaces.values()))
        try:
            return self.interfaces[name]
        except KeyError:
            raise KeyError(
                f"node {self.name!r} has no interface {name!r} (has: {', '.join(self.interfaces)})"
            ) from None

    @property
    def wan(self) -> Interface:
        return next(i for i in self.interfaces.values() if i.role == "wan")

    @property
    def lans(self) -> list[Interface]:
        return [i for i in self.interfaces.values() if i.role == "lan"]


@dataclass
class Topology:
    """A topology with every address and route decided."""

    name: str
    description: str
    source: str
    networks: dict[str, IPv4Network]
    nodes: dict[str, Node]
    sinks: dict[str, IPv4Address] = field(default_factory=dict)
    """Per network without a LAN router: the address of 'the rest of the internet', where
    nodes without a gateway send what has no route; it silently drops it."""

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(
                f"topology {self.name!r} has no node {name!r} (has: {', '.join(self.nodes)})"
            ) from None

    def spare_addresses(self, network: str) -> list[IPv4Address]:
        """Addresses of `network` nothing in the lab uses (no interface, no sink), from the top.

        For what a run adds on the fly: a probe server's second address, a NAT's new
        public address.
        """
        net = self.networks[network]
        used = {i.address for n in self.nodes.values() for i in n.interfaces.values()}
        used |= set(self.sinks.values())
        return [a for a in reversed(list(net.hosts())) if a not in used]

    def hosts_on(self, network: str) -> list[Interface]:
        return [
            i for n in self.nodes.values() for i in n.interfaces.values() if i.network == network
        ]


_LOADED: dict[tuple[str, int, int], Topology] = {}


def load_topology(path: str | Path) -> Topology:
    """Load, validate and resolve a topology file. Raises ConfigError.

    Every cell of a matrix (and every scenario of a `validate` run) names a topology
    file: each is read once per version of the file, and each caller gets its own copy.
    """
    try:
        st = Path(path).stat()
    except OSError:
        return topology_from_source(load_yaml(path))  # load_yaml says why, with the path
    key = (str(path), st.st_mtime_ns, st.st_size)  # as spelled: errors quote the path
    if key not in _LOADED:
        _LOADED[key] = topology_from_source(load_yaml(path))
    return _copy(_LOADED[key])


def _copy(t: Topology) -> Topology:
    """A copy with containers of its own (addresses, NAT behaviours, forwards are frozen)."""
    nodes = {
        name: replace(
            n,
            interfaces={k: replace(i) for k, i in n.interfaces.items()},
            routes=list(n.routes),
            forwards=list(n.forwards),
        )
        for name, n in t.nodes.items()
    }
    return replace(t, networks=dict(t.networks), nodes=nodes, sinks=dict(t.sinks))


def parse_topology(text: str, file: str = "<string>") -> Topology:
    return topology_from_source(parse_yaml(text, file))


def topology_from_source(src: YamlSource) -> Topology:
    if not isinstance(src.data, dict):
        raise src.error((), "a topology must be a mapping with networks, hosts and routers")
    spec: TopologySpec = src.validate(TopologySpec)
    return _Resolver(spec, src).resolve()


class _Resolver:
    def __init__(self, spec: TopologySpec, src: YamlSource) -> None:
        self.spec = spec
        self.src = src
        self.used: dict[str, set[IPv4Address]] = {n: set() for n in spec.networks}

    def resolve(self) -> Topology:
        spec, src = self.spec, self.src
        self._check_names()
        self._check_subnets()
        nodes: dict[str, Node] = {}
        # explicit addresses first, so automatic ones never collide with them
        for hname, host in spec.hosts.items():
            for iname, ifc in host.interfaces.items():
                self._check_network(("hosts", hname, "interfaces", iname, "network"), ifc.network)
                if ifc.address is not None:
                    self._claim(
                        ("hosts", hname, "interfaces", iname, "address"), ifc.network, ifc.address
                    )
        for rname, r in spec.routers.items():
            for i, lan in enumerate(r.lan):
                self._check_network(("routers", rname, "lan", i), lan)
            self._check_network(("routers", rname, "wan"), r.wan)
            if r.wan in r.lan:
                raise src.error(("routers", rname, "wan"), f"network {r.wan!r} is both LAN and WAN")
            if r.wan_address is not None:
                self._claim(("routers", rname, "wan_address"), r.wan, r.wan_address)
        # routers: .1, .2 ... on their LANs
        lan_router: dict[str, tuple[str, IPv4Address]] = {}
        for rname, r in spec.routers.items():
            ifaces: dict[str, Interface] = {}
            for i, lan in enumerate(r.lan):
                addr = self._next(("routers", rname, "lan", i), lan, low=True)
                name = "lan" if len(r.lan) == 1 else f"lan{i}"
                net = spec.networks[lan].subnet
                ifaces[name] = Interface(rname, name, lan, addr, net.prefixlen, role="lan")
                lan_router.setdefault(lan, (rname, addr))
            nodes[rname] = Node(
                rname,
                NodeKind.ROUTER,
                ifaces,
                nat=r.nat if r.nat.enabled else None,
                firewall=r.firewall,
                description=r.description,
                routes=[(rt.to, rt.via) for rt in r.routes],
            )
        for rname, r in spec.routers.items():
            addr = r.wan_address or self._next(("routers", rname, "wan"), r.wan)
            net = spec.networks[r.wan].subnet
            gw = lan_router.get(r.wan, (None, None))[1]
            wan = Interface(rname, "wan", r.wan, addr, net.prefixlen, gateway=gw, role="wan")
            nodes[rname].interfaces["wan"] = wan
            nodes[rname].default_route = "wan" if gw else None
        for hname, host in spec.hosts.items():
            ifaces = {}
            for iname, ifc in host.interfaces.items():
                path = ("hosts", hname, "interfaces", iname)
                if not IFNAME.match(iname):
                    raise src.error(
                        path,
                        "interface names are lower-case, start with a letter, at most 12 characters",
                    )
                addr = ifc.address or self._next(path, ifc.network)
                net = spec.networks[ifc.network].subnet
                gw = ifc.gateway or lan_router.get(ifc.network, (None, None))[1]
                if ifc.gateway is not None and ifc.gateway not in net:
                    raise src.error(
                        path + ("gateway",), f"{ifc.gateway} is not in {ifc.network} ({net})"
                    )
                ifaces[iname] = Interface(
                    hname, iname, ifc.network, addr, net.prefixlen, gateway=gw
                )
            default = host.default_route
            if default is not None and default not in ifaces:
                raise src.error(
                    ("hosts", hname, "default_route"), f"no interface {default!r} on host {hname!r}"
                )
            if default is None:
                default = next((n for n, i in ifaces.items() if i.gateway), None)
            nodes[hname] = Node(
                hname, NodeKind.HOST, ifaces, default_route=default, description=host.description
            )
        self._route_back_to_plain_routers(nodes)
        for rname, r in spec.routers.items():
            nodes[rname].forwards = resolve_forwards(self.src, rname, r, nodes)
        sinks = {}
        for net_name, net_spec in spec.networks.items():
            sink = IPv4Address(int(net_spec.subnet.broadcast_address) - 1)
            if net_name not in lan_router and sink not in self.used[net_name]:
                sinks[net_name] = sink
        return Topology(
            spec.name,
            spec.description,
            src.file,
            {n: s.subnet for n, s in spec.networks.items()},
            nodes,
            sinks,
        )

    def _route_back_to_plain_routers(self, nodes: dict[str, Node]) -> None:
        """A router without NAT exposes its LANs: neighbours on its WAN need a route to them."""
        for r in nodes.values():
            if not r.is_router or r.nat is not None:
                continue
            wan = r.wan
            for other in nodes.values():
                if other is r:
                    continue
                if not any(i.network == wan.network for i in other.interfaces.values()):
                    continue
                for lan in r.lans:
                    other.routes.append((self.spec.networks[lan.network].subnet, wan.address))

    def _check_names(self) -> None:
        for section in ("hosts", "routers"):
            for name in getattr(self.spec, section):
                if not NODENAME.match(name):
                    raise self.src.error(
                        (section, name),
                        "node names are lower-case letters, digits and '-', at most 24 characters",
                    )
        for name in self.spec.hosts:
            if name in self.spec.routers:
                raise self.src.error(("hosts", name), f"name {name!r} is used by a router too")
        for name in self.spec.networks:
            if not NODENAME.match(name):
                raise self.src.error(
                    ("networks", name),
                    "network names are lower-case letters, digits and '-', at most 24 characters",
                )

    def _check_subnets(self) -> None:
        items = list(self.spec.networks.items())
        for i, (a, sa) in enumerate(items):
            for b, sb in items[:i]:
                if sa.subnet.overlaps(sb.subnet):
                    raise self.src.error(
                        ("networks", a, "subnet"),
                        f"{sa.subnet} overlaps network {b!r} ({sb.subnet})",
                    )

    def _check_network(self, path: tuple[str | int, ...], name: str) -> None:
        if name not in self.spec.networks:
            raise self.src.error(
                path, f"no network named {name!r} (networks: {', '.join(self.spec.networks)})"
            )

    def _claim(self, path: tuple[str | int, ...], network: str, addr: IPv4Address) -> None:
        net = self.spec.networks[network].subnet
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            raise self.src.error(path, f"{addr} is not a usable address of {network} ({net})")
        if addr in self.used[network]:
            raise self.src.error(path, f"{addr} is used twice on {network}")
        self.used[network].add(addr)

    def _next(self, path: tuple[str | int, ...], network: str, low: bool = False) -> IPv4Address:
        net = self.spec.networks[network].subnet
        start = 1 if low else min(10, net.num_addresses // 2)
        for offset in range(start, net.num_addresses - 1):
            addr = ipaddress.IPv4Address(int(net.network_address) + offset)
            if addr not in self.used[network]:
                self.used[network].add(addr)
                return addr
        raise self.src.error(path, f"network {network} ({net}) has no free address left")
