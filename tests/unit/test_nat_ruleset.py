"""Router ruleset renderer: what each knob puts into the nftables text, and that nft loads it."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import uuid

import pytest

from harness.config.topology import Node, parse_topology
from harness.nat.behaviour import PRESETS, Dependence
from harness.nat.ruleset import router_ruleset

DEPS = [d.value for d in Dependence]


def router(nat: str = "port-restricted", firewall: str = "open", lans: int = 1) -> Node:
    lan_nets = "".join(f"  lan{i}: {{subnet: 192.168.{i + 1}.0/24}}\n" for i in range(lans))
    lan_list = ", ".join(f"lan{i}" for i in range(lans))
    topo = parse_topology(
        "name: t\n"
        "networks:\n"
        "  internet: {subnet: 198.18.0.0/24}\n"
        f"{lan_nets}"
        "routers:\n"
        f"  r: {{lan: [{lan_list}], wan: internet, nat: {nat}, firewall: {firewall}}}\n"
    )
    return topo.node("r")


def chain(nft: str, name: str) -> str:
    m = re.search(rf"chain {name} {{\n(.*?)\n  }}", nft, re.S)
    assert m, f"no chain {name}"
    return m.group(1)


def test_plain_router_has_no_rules() -> None:
    rules = router("none")
    assert router_ruleset(rules).nft == ""
    assert router_ruleset(rules).sysctls["net.ipv4.ip_forward"] == "1"


def test_hosts_have_no_ruleset() -> None:
    topo = parse_topology(
        "name: t\nnetworks: {internet: {subnet: 198.18.0.0/24}}\n"
        "hosts: {h: {interfaces: {eth0: {network: internet}}}}\n"
    )
    with pytest.raises(ValueError, match="not a router"):
        router_ruleset(topo.node("h"))


def test_port_restricted_keeps_one_mapping_and_filters_everything() -> None:
    nft = router_ruleset(router("port-restricted")).nft
    assert "dnat" not in chain(nft, "prerouting")  # APDF: only conntrack replies come in
    mapping = chain(nft, "udp_mapping").splitlines()
    assert "@out_eim snat ip to ip saddr . udp sport map @out_eim" in mapping[0]
    assert mapping[-1].strip() == "snat ip to 198.18.0.10"  # preserves a free port
    assert "@used_ports" in mapping[1] and "fully-random" in mapping[1]


def test_symmetric_is_a_new_random_port_per_flow() -> None:
    nft = router_ruleset(router("symmetric")).nft
    assert chain(nft, "udp_mapping").strip() == "snat ip to 198.18.0.10 fully-random"
    assert "out_eim" not in nft and "in_map" not in nft and "chain learn" not in nft


def test_full_cone_lets_anyone_in_and_hairpins() -> None:
    nft = router_ruleset(router("full-cone")).nft
    pre = chain(nft, "prerouting").splitlines()[1:]  # after the hook line
    assert 'iifname "wan"' in pre[0] and "@perm" not in pre[0] and "map @in_map" in pre[0]
    assert 'iifname "lan"' in pre[1] and "meta mark set" in pre[1]
    assert "meta mark & 0x100000 == 0x100000 jump udp_mapping" in chain(nft, "postrouting")


def test_address_restricted_checks_permissions() -> None:
    nft = router_ruleset(router("address-restricted")).nft
    assert "udp dport . ip saddr @perm dnat" in chain(nft, "prerouting")
    assert "update @perm { ct reply proto-dst . ct original ip daddr }" in chain(nft, "learn_out")


def test_address_dependent_mapping_is_keyed_on_the_remote_address() -> None:
    nft = router_ruleset(router("{mapping: address-dependent}")).nft
    first = chain(nft, "udp_mapping").splitlines()[0]
    assert "ip saddr . udp sport . ct original ip daddr @out_adm" in first
    assert "@seen_src" in chain(nft, "udp_mapping")  # a second remote gets a second port


def test_timeout_goes_to_conntrack_and_to_every_set() -> None:
    rules = router_ruleset(router("{preset: full-cone, udp_timeout: 30}"))
    assert rules.sysctls["net.netfilter.nf_conntrack_udp_timeout"] == "30"
    assert rules.sysctls["net.netfilter.nf_conntrack_udp_timeout_stream"] == "30"
    timeouts = re.findall(r"timeout (\d+)s", rules.nft)
    assert timeouts and set(timeouts) == {"30"}


def test_udp_blocked_firewall() -> None:
    nft = router_ruleset(router("port-restricted", "udp-blocked")).nft
    fwd = chain(nft, "forward").splitlines()
    assert [r.strip() for r in fwd] == [
        "type filter hook forward priority filter; policy accept;",
        "ct state established,related accept",
        'iifname "lan" oifname "wan" tcp dport { 80, 443 } accept',
        'iifname "lan" oifname "wan" drop',
        'iifname "wan" oifname "lan" meta l4proto udp drop',
    ]
    assert "table ip rh_fw {" in nft and "table ip rh_nat {" in nft


def test_firewall_without_nat_and_several_lans() -> None:
    nft = router_ruleset(router("none", "udp-blocked", lans=2)).nft
    assert "rh_nat" not in nft
    assert 'iifname { "lan0", "lan1" } oifname "wan" drop' in nft


def test_tables_are_lab_tables_and_reloadable() -> None:
    nft = router_ruleset(router("full-cone", "udp-blocked")).nft
    assert set(re.findall(r"^table ip (\S+)", nft, re.M)) == {"rh_nat", "rh_fw"}
    assert "delete table ip rh_nat\n" in nft  # a reload replaces, never merges


KNOBS = [
    {"mapping": m, "filtering": f, "port_preservation": pp, "hairpinning": hp}
    for m, f, pp, hp in itertools.product(DEPS, DEPS, [True, False], [True, False])
]


@pytest.mark.lab
def test_nft_accepts_every_knob_combination() -> None:
    """`nft -c` (check only) in a namespace of our own, with the router's interfaces."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    ns = f"tnat-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for combo in KNOBS + [PRESETS[p] for p in PRESETS if p != "none"]:
            text = "{" + ", ".join(f"{k}: {str(v).lower()}" for k, v in combo.items()) + "}"
            nft = router_ruleset(router(text, "udp-blocked")).nft
            proc = subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "-c", "-f", "-"],
                input=nft,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, f"{combo}:\n{proc.stderr}"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
