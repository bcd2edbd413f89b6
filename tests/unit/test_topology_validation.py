"""Bad topology input: one clear error naming file, line and key; nothing built."""

from __future__ import annotations

import textwrap

import pytest

from harness.config.topology import parse_topology
from harness.errors import ConfigError

GOOD = """\
name: t
networks:
  internet: {subnet: 198.18.0.0/24}
  lan-a: {subnet: 192.168.1.0/24}
routers:
  nat-a: {lan: lan-a, wan: internet, nat: symmetric}
hosts:
  peer-a:
    interfaces:
      eth0: {network: lan-a}
  server:
    interfaces:
      eth0: {network: internet}
"""


def err(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_topology(textwrap.dedent(text), "topo.yaml")
    return info.value


def test_good_topology_resolves_addresses_and_gateways() -> None:
    t = parse_topology(GOOD, "topo.yaml")
    assert str(t.node("nat-a").iface("lan").address) == "192.168.1.1"
    assert str(t.node("peer-a").iface("eth0").gateway) == "192.168.1.1"
    assert t.node("peer-a").default_route == "eth0"
    assert t.node("server").iface().gateway is None
    nat = t.node("nat-a").nat
    assert nat is not None and nat.label == "symmetric"


def test_malformed_yaml_names_the_line() -> None:
    e = err(GOOD.replace("  lan-a: {subnet: 192.168.1.0/24}", "  lan-a: {subnet: 192.168.1.0/24"))
    assert e.file == "topo.yaml" and e.line in (4, 5)
    assert "invalid YAML" in e.message


def test_unknown_key() -> None:
    e = err(GOOD.replace("eth0: {network: lan-a}", "eth0: {network: lan-a, mtu: 1400}"))
    assert (e.line, e.key, e.message) == (10, "hosts.peer-a.interfaces.eth0.mtu", "unknown key")
    assert str(e).startswith("topo.yaml:10: hosts.peer-a.interfaces.eth0.mtu: unknown key")


def test_host_on_missing_network() -> None:
    e = err(GOOD.replace("eth0: {network: internet}", "eth0: {network: internt}"))
    assert e.line == 13 and e.key == "hosts.server.interfaces.eth0.network"
    assert "no network named 'internt'" in e.message


def test_overlapping_subnets() -> None:
    e = err(GOOD.replace("192.168.1.0/24", "198.18.0.128/25"))
    assert e.line == 4 and e.key == "networks.lan-a.subnet" and "overlaps" in e.message


def test_duplicate_names() -> None:
    e = err(GOOD.replace("  server:\n", "  peer-a:\n"))
    assert e.line == 11 and "duplicate key" in e.message
    e = err(GOOD.replace("  server:\n", "  nat-a:\n"))
    assert e.key == "hosts.nat-a" and "router" in e.message


def test_unknown_nat_preset() -> None:
    e = err(GOOD.replace("nat: symmetric", "nat: cone"))
    assert e.line == 6 and e.key == "routers.nat-a.nat"
    assert "unknown NAT preset 'cone'" in e.message


def test_nat_knobs_override_a_preset() -> None:
    t = parse_topology(GOOD.replace("nat: symmetric", "nat: {preset: full-cone, udp_timeout: 30}"))
    nat = t.node("nat-a").nat
    assert nat is not None and nat.udp_timeout == 30 and nat.label == "full-cone"
    e = err(GOOD.replace("nat: symmetric", "nat: {mapping: sideways}"))
    assert e.key == "routers.nat-a.nat.mapping"


def test_addresses_outside_lab_ranges_are_refused() -> None:
    e = err(GOOD.replace("198.18.0.0/24", "8.8.8.0/24"))
    assert e.line == 3 and "outside the lab ranges" in e.message


def test_explicit_address_outside_subnet_and_twice() -> None:
    e = err(
        GOOD.replace("eth0: {network: internet}", "eth0: {network: internet, address: 198.18.1.5}")
    )
    assert e.key == "hosts.server.interfaces.eth0.address" and "not a usable address" in e.message
    e = err(
        GOOD.replace(
            "eth0: {network: internet}", "eth0: {network: internet, address: 198.18.0.9}"
        ).replace("nat: symmetric", "nat: symmetric, wan_address: 198.18.0.9")
    )
    assert "used twice" in e.message


def test_missing_required_key() -> None:
    e = err("name: t\nhosts: {}\n")
    assert e.key == "networks" and "required" in e.message


@pytest.mark.parametrize(
    "name",
    [
        "open-internet",
        "full-cone",
        "address-restricted",
        "port-restricted",
        "symmetric",
        "cgnat-double",
        "udp-blocked",
        "dual-homed",
    ],
)
def test_shipped_topologies_validate(name: str) -> None:
    from harness.config.topology import load_topology

    t = load_topology(f"topologies/{name}.yaml")
    assert "server" in t.nodes and "peer-a" in t.nodes


def test_a_topology_file_is_read_once_per_version_and_each_caller_owns_its_copy(
    tmp_path: object,
) -> None:
    import os
    import shutil
    from pathlib import Path

    from harness.config.topology import load_topology

    root = Path(__file__).resolve().parents[2]
    path = Path(str(tmp_path)) / "t.yaml"
    shutil.copy(root / "topologies/address-restricted.yaml", path)
    a, b = load_topology(path), load_topology(path)
    assert a == b and a is not b
    node = next(iter(a.nodes))
    a.nodes[node].routes.append(("x", "y"))  # type: ignore[arg-type]  # any change will do
    a.nodes[node].interfaces.clear()
    assert b.nodes[node].interfaces and ("x", "y") not in b.nodes[node].routes
    assert load_topology(path) == b
    shutil.copy(root / "topologies/janus-behind-nat.yaml", path)  # a new version of the file
    os.utime(path, ns=(1, 1))  # another mtime even within the clock's resolution
    assert load_topology(path).nodes.keys() != b.nodes.keys()
