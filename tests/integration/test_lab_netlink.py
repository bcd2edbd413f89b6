"""Bring-up over rtnetlink and libnftables builds what `ip` and `nft -f` build.

The oracle is iproute2 and nft themselves: for every node of every shipped topology,
a reference namespace gets the `ip` commands the lab used to run (on interfaces of the same
names) and the router's replacing ruleset through `nft -f`; the kernel's own
listings of both must be equal.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.config.topology import Node
from harness.lab import Lab
from harness.nat.ruleset import router_ruleset
from harness.pytest_plugin import MakeLab
from harness.runtime.netbuild import POLICY_TABLE_BASE

pytestmark = pytest.mark.lab

SHIPPED = sorted(p.stem for p in Path("topologies").glob("*.yaml"))


def ip_commands(node: Node, sinks: dict) -> list[str]:
    """What bring-up ran as `ip -batch` before it spoke rtnetlink itself."""
    cmds = ["link set lo up"]
    for n, iface in enumerate(node.interfaces.values()):
        cmds += [  # a veth whose other end stays here (this kernel has no dummy)
            f"link add {iface.name} type veth peer name ref{n}",
            f"link set ref{n} up",
            f"addr add {iface.cidr} dev {iface.name}",
            f"link set {iface.name} up",
        ]
    gateways = [i for i in node.interfaces.values() if i.gateway is not None]
    for metric, iface in enumerate(
        sorted(gateways, key=lambda i: i.name != node.default_route), start=1
    ):
        cmds.append(f"route add default via {iface.gateway} dev {iface.name} metric {metric * 100}")
    if len(node.interfaces) > 1 and not node.is_router:
        for idx, iface in enumerate(gateways):
            table = POLICY_TABLE_BASE + idx
            cmds += [
                f"route add default via {iface.gateway} dev {iface.name} table {table}",
                f"rule add from {iface.address} table {table} pref {1000 + idx}",
            ]
    for dest, via in node.routes:
        cmds.append(f"route add {dest} via {via}")
    if not gateways:
        sink = next(
            ((i, sinks[i.network]) for i in node.interfaces.values() if i.network in sinks), None
        )
        cmds.append(
            f"route add default via {sink[1]} dev {sink[0].name}"
            if sink
            else "route add blackhole default"
        )
    return cmds


def state(ns: str, ifnames: list[str]) -> dict[str, object]:
    def ip(*args: str) -> list[dict]:
        out = subprocess.run(["ip", "-n", ns, "-j", *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout or "[]")

    addrs = sorted(
        (a["ifname"], a["local"], a["prefixlen"], a.get("scope"), a.get("broadcast"))
        for link in ip("-4", "addr", "show")
        for a in [{**x, "ifname": link["ifname"]} for x in link["addr_info"]]
    )
    nft = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "list", "ruleset"], capture_output=True, text=True
    )
    links = {
        link["ifname"]: (link["mtu"], sorted(link["flags"]), link["operstate"], link["txqlen"])
        for link in ip("link", "show")
        if link["ifname"] in ["lo", *ifnames]
    }
    return {
        "links": links,
        "addresses": addrs,
        "routes": sorted(
            json.dumps(r, sort_keys=True) for r in ip("-4", "route", "show", "table", "all")
        ),
        "rules": ip("-4", "rule", "show"),
        "nft": nft.stdout,
    }


@pytest.mark.parametrize("topology", SHIPPED)
def test_nodes_equal_what_ip_and_nft_build(make_lab: MakeLab, topology: str) -> None:
    lab = make_lab(topology)
    for i, node in enumerate(lab.topology.nodes.values()):
        ref = f"rh-{lab.name}.ref{i}"  # a namespace of the lab: its tear-down removes it
        subprocess.run(["ip", "netns", "add", ref], check=True)
        batch = "\n".join(ip_commands(node, lab.topology.sinks)) + "\n"
        subprocess.run(["ip", "-n", ref, "-batch", "-"], input=batch, text=True, check=True)
        if node.is_router and router_ruleset(node).nft:
            subprocess.run(
                ["ip", "netns", "exec", ref, "nft", "-f", "-"],
                input=router_ruleset(node).nft,
                text=True,
                check=True,
            )
        names = list(node.interfaces)
        assert state(lab.netns(node.name), names) == state(ref, names), f"{topology}: {node.name}"


def test_switch_ports_are_named_enslaved_and_up(make_lab: MakeLab) -> None:
    lab = make_lab("dual-homed")
    out = lab.run(Lab.SWITCH, ["ip", "-j", "-d", "link", "show"]).stdout
    links = {link["ifname"]: link for link in json.loads(out)}
    kinds = {name: link.get("linkinfo", {}).get("info_kind") for name, link in links.items()}
    bridge = {net: f"b{i}{net}"[:15] for i, net in enumerate(lab.topology.networks)}
    assert all(kinds.get(br) == "bridge" for br in bridge.values()), kinds
    for node in lab.topology.nodes.values():
        for iface in node.interfaces.values():
            port = links[lab.link(node.name, iface.name).ifname]
            assert port["ifalias"] == f"{node.name}.{iface.name}"
            assert port["operstate"] == "UP"
            assert port["master"] == bridge[iface.network]
