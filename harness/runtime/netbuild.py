"""Building a lab's namespaces: all at once, in process, no program run.

Each namespace is built on its own thread: the thread makes it (`unshare` and a bind
mount, as `ip netns add`), writes its sysctls, loads a router's rules (libnftables) and
makes its links, addresses and routes over rtnetlink. A fork and exec of `ip` or `nft`
costs 2-15 ms on a busy 2-core machine and bring-up needed eleven; threads let the
kernel work of the namespaces overlap. A node's veth is made from the node's namespace
with its other end in the switch namespace, enslaved there to its network's bridge.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address

from harness.config.topology import Node, Topology
from harness.runtime.base import LinkRef
from harness.runtime.ethtool import segmentation_off
from harness.runtime.nftlib import load_ruleset
from harness.runtime.nsutil import create_netns, netns_path, parallel, setns_fd, write_sysctls
from harness.runtime.rtnl import IF_OPER_UP, Rtnl

POLICY_TABLE_BASE = 100
NODE_IFINDEX_BASE = 1000
SWITCH = "@switch"

# sysctls of every namespace of a lab
COMMON_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",  # captures without IPv6 noise (RS, DAD, MLD)
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.ipv4.conf.all.rp_filter": "0",  # NAT hairpins and dual-homed hosts are asymmetric
    "net.ipv4.conf.default.rp_filter": "0",
}
SWITCH_SYSCTLS = {
    # br_netfilter is built in here: bridged frames must not meet conntrack/NAT
    "net.bridge.bridge-nf-call-iptables": "0",
    "net.bridge.bridge-nf-call-ip6tables": "0",
    "net.bridge.bridge-nf-call-arptables": "0",
    # the switch holds the internet's sink address: it must drop, not forward (and a new
    # namespace inherits the host's ip_forward)
    "net.ipv4.ip_forward": "0",
}


@dataclass
class _Switch:
    """The switch namespace as node threads see it: ready once its bridges exist."""

    name: str  # its namespace
    bridges: dict[str, str]  # network -> bridge name
    index: dict[str, int] = field(default_factory=dict)  # network -> bridge ifindex
    ready: threading.Event = field(default_factory=threading.Event)


def build(
    topology: Topology, netns: Callable[[str], str], links: dict[tuple[str, str], LinkRef]
) -> None:
    """Make the namespace `netns(node)` of every node and `netns("@switch")`, and the
    switch end `links[(node, iface)]` of every interface. Returns when every switch port
    is operationally up: the first packet crosses. On error, what was made stays for
    the caller's tear-down (all of it is named by `netns`)."""
    bridges = {net: f"b{i}{net}"[:15] for i, net in enumerate(topology.networks)}
    switch = _Switch(netns(SWITCH), bridges)
    # Distinct ifindexes on the two ends of a veth: the kernel treats a veth whose peer
    # has its own ifindex as a non-urgent link event and brings it to operstate UP up to
    # 1 s later, dropping the first packets (seen: a first ARP lost).
    ifindex = {key: NODE_IFINDEX_BASE + i for i, key in enumerate(links)}
    jobs: list[Callable[[], None]] = [
        lambda: _naming("the switch", lambda: _build_switch(topology, switch))
    ]

    def build(n: Node) -> None:
        _naming(n.name, lambda: _build_node(topology, n, netns(n.name), switch, links, ifindex))

    jobs += [partial(build, node) for node in topology.nodes.values()]
    parallel(jobs, workers=len(jobs))  # a node waits for the switch: none may queue


def _naming(what: str, fn: Callable[[], None]) -> None:
    """Run `fn`; its error names `what` (the node or the switch being built)."""
    try:
        fn()
    except OSError as exc:
        raise OSError(f"building {what}: {exc}") from None


def _build_switch(topology: Topology, switch: _Switch) -> None:
    try:
        create_netns(switch.name)
        write_sysctls(COMMON_SYSCTLS | SWITCH_SYSCTLS)
        with Rtnl() as nl:
            nl.set_link("lo", up=True)
            for br in switch.bridges.values():
                nl.add_bridge(br)
            index = {name: i for name, (i, _) in nl.links().items()}
            for net, br in switch.bridges.items():
                switch.index[net] = index[br]
                if net in topology.sinks:
                    prefix = topology.networks[net].prefixlen
                    nl.add_address(index[br], topology.sinks[net], prefix)
    finally:
        switch.ready.set()  # nodes wait for it, failed or not


def _build_node(
    topology: Topology,
    node: Node,
    ns: str,
    switch: _Switch,
    links: dict[tuple[str, str], LinkRef],
    ifindex: dict[tuple[str, str], int],
) -> None:
    sysctls = dict(COMMON_SYSCTLS)
    sysctls["net.ipv4.ip_forward"] = "1" if node.is_router else "0"
    rules = None
    if node.is_router:
        from harness.nat.ruleset import router_ruleset

        rules = router_ruleset(node, fresh=True)
        sysctls.update(rules.sysctls)
    create_netns(ns)
    write_sysctls(sysctls)  # before any interface exists: they inherit `default`
    if rules is not None and rules.nft.strip():
        try:
            load_ruleset(rules.nft)
        except OSError as exc:
            raise OSError(f"loading router rules: {exc}") from None
    with Rtnl() as nl:
        nl.set_link("lo", up=True)
        if not switch.ready.wait(10.0) or len(switch.index) < len(switch.bridges):
            raise OSError("the switch namespace was not built")
        with _rtnl_in(switch.name) as (sw_fd, swnl, sw_sock):
            ports = []
            for iface in node.interfaces.values():
                key = (node.name, iface.name)
                port = links[key].ifname
                nl.add_veth(iface.name, ifindex[key], port, sw_fd)
                # MTU-sized packets on the wire and in every capture (runtime/ethtool.py)
                segmentation_off(iface.name)
                segmentation_off(port, sw_sock)
                alias = f"{node.name}.{iface.name}"
                swnl.set_link(port, alias=alias, master=switch.index[iface.network], up=True)
                ports.append(port)
            _configure_node(nl, node, topology.sinks)
            _wait_links_up(swnl, ports)


@contextlib.contextmanager
def _rtnl_in(ns: str) -> Iterator[tuple[int, Rtnl, socket.socket]]:
    """Namespace `ns` open as a file, a netlink socket and a UDP socket (for ioctls) in
    it, made from a thread that stays in its own namespace."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    fd = os.open(netns_path(ns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_fd(fd, ns)
        try:
            nl = Rtnl()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        finally:
            setns_fd(own, "own namespace")
        with nl, sock:
            yield fd, nl, sock
    finally:
        os.close(own)
        os.close(fd)


def _wait_links_up(swnl: Rtnl, ports: list[str], timeout: float = 2.0) -> None:
    """Return once each switch port is operationally up (so no first packet is lost)."""
    deadline = time.monotonic() + timeout
    while True:
        down = [p for p in ports if swnl.operstate(p) != IF_OPER_UP]
        if not down:
            return
        if time.monotonic() > deadline:
            raise OSError(f"links still down after {timeout} s: {', '.join(down)}")
        time.sleep(0.001)


def _configure_node(nl: Rtnl, node: Node, sinks: dict[str, IPv4Address]) -> None:
    """Addresses and routes of a node, in the calling thread's namespace."""
    index = {name: i for name, (i, _) in nl.links().items()}
    for iface in node.interfaces.values():
        nl.add_address(index[iface.name], iface.address, iface.prefixlen)
        nl.set_link(iface.name, up=True)
    gateways = [i for i in node.interfaces.values() if i.gateway is not None]
    for metric, iface in enumerate(
        sorted(gateways, key=lambda i: i.name != node.default_route), start=1
    ):
        nl.add_route(via=iface.gateway, dev=index[iface.name], metric=metric * 100)
    if len(node.interfaces) > 1 and not node.is_router:
        # answer from the interface a packet was addressed to, as phones do
        for idx, iface in enumerate(gateways):
            table = POLICY_TABLE_BASE + idx
            nl.add_route(via=iface.gateway, dev=index[iface.name], table=table)
            nl.add_rule(iface.address, table, 1000 + idx)
    for dest, via in node.routes:
        nl.add_route(dest, via=via)
    if not gateways:
        # Like the real internet, a packet to nowhere (a peer's private candidate) leaves
        # the host and vanishes: the default route points at the network's sink, an
        # address of the switch namespace, which does not forward and sends no error.
        # A local error instead (ENETUNREACH, or EINVAL from a blackhole route) made
        # coturn stop relaying and Chromium close its candidate's socket.
        sink = next(
            ((i, sinks[i.network]) for i in node.interfaces.values() if i.network in sinks),
            None,
        )
        if sink is not None:
            nl.add_route(via=sink[1], dev=index[sink[0].name])
        else:
            nl.add_route(blackhole=True)
