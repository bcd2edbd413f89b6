"""The probe's decisions (RFC 5780 4.3-4.6) from observations, and where its server goes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.config.topology import load_topology, parse_topology
from harness.errors import LabError
from harness.nat.behaviour import Dependence, NatBehaviour
from harness.nat.probe import classify, public_host

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
LOCAL = ["192.168.1.10", 40000]
WAN = "198.18.0.10"


def answer(mapped: list[Any] | None) -> dict[str, Any]:
    return {"sent_to": ["198.18.0.12", 3478], "mapped": mapped, "other": None}


def observations(
    mapped: Sequence[list[Any] | None],  # None: no answer
    filtering: tuple[bool, bool],
    hairpin: bool,
    filter_port: int = 41000,
) -> dict[str, Any]:
    both, port_only = filtering
    plain = [WAN, filter_port]
    return {
        "local": LOCAL,
        "mapping": [answer(m) for m in mapped],
        "filtering_local": ["192.168.1.10", 41000],
        "filtering": {
            "plain": answer(plain),
            "change-ip-port": answer(plain if both else None),
            "change-port": answer(plain if port_only else None),
        },
        "hairpin_from": [WAN, 42000] if hairpin else None,
    }


def test_port_restricted_observations() -> None:
    obs = observations([[WAN, 40000]] * 3, (False, False), hairpin=False)
    r = classify(obs, "peer-a", "eth0", "server")
    assert (r.udp, r.nat, r.mapping, r.filtering) == (
        True,
        True,
        Dependence.ENDPOINT_INDEPENDENT,
        Dependence.ADDRESS_AND_PORT_DEPENDENT,
    )
    assert r.port_preservation is True and r.hairpinning is False
    assert r.matches(NatBehaviour.preset("port-restricted")) == []
    assert r.matches(NatBehaviour.preset("symmetric")) == [
        "mapping: expected address-and-port-dependent, measured endpoint-independent",
        "port_preservation: expected no, measured yes",
    ]


def test_address_dependent_mapping_and_filtering() -> None:
    mapped = [[WAN, 40000], [WAN, 50001], [WAN, 50001]]
    r = classify(observations(mapped, (False, True), True), "peer-a", "eth0", "server")
    assert r.mapping is Dependence.ADDRESS_DEPENDENT
    assert r.filtering is Dependence.ADDRESS_DEPENDENT
    assert r.hairpinning is True


def test_symmetric_and_full_cone_filtering() -> None:
    mapped = [[WAN, 1111], [WAN, 2222], [WAN, 3333]]
    r = classify(observations(mapped, (True, True), False, 4444), "peer-a", "eth0", "server")
    assert r.mapping is Dependence.ADDRESS_AND_PORT_DEPENDENT
    assert r.filtering is Dependence.ENDPOINT_INDEPENDENT
    assert r.port_preservation is False


def test_no_answer_means_udp_blocked_and_nothing_decided() -> None:
    obs = observations([None], (False, False), False)
    r = classify(obs, "peer-a", "eth0", "server")
    assert r.udp is False and r.mapping is None and r.port_preservation is None
    assert r.matches(NatBehaviour.preset("none")) != []


def test_no_translation_is_no_nat() -> None:
    obs = observations([LOCAL] * 3, (True, True), True)
    r = classify(obs, "peer-a", "eth0", "server")
    assert r.nat is False
    assert r.matches(NatBehaviour.preset("none")) == []
    assert r.matches(NatBehaviour.preset("full-cone"))[0].startswith("expected a NAT")


@pytest.mark.parametrize(
    "topology, node, iface",
    [
        ("open-internet", "peer-a", "eth0"),
        ("port-restricted", "peer-b", "eth0"),
        ("cgnat-double", "peer-a", "eth0"),
        ("dual-homed", "peer-a", "lte"),
    ],
)
def test_server_goes_on_the_outermost_public_segment(topology: str, node: str, iface: str) -> None:
    topo = load_topology(TOPOLOGIES / f"{topology}.yaml")
    assert public_host(topo, node, topo.node(node).iface(iface)) == "server"


def test_without_a_server_host_the_first_public_host_is_used() -> None:
    topo = parse_topology(
        "name: t\n"
        "networks: {internet: {subnet: 198.18.0.0/24}, lan: {subnet: 192.168.1.0/24}}\n"
        "routers: {r: {lan: lan, wan: internet, nat: symmetric}}\n"
        "hosts:\n"
        "  a: {interfaces: {eth0: {network: lan}}}\n"
        "  stun: {interfaces: {eth0: {network: internet}}}\n"
    )
    assert public_host(topo, "a", topo.node("a").iface()) == "stun"
    alone = parse_topology(
        "name: t\nnetworks: {internet: {subnet: 198.18.0.0/24}}\n"
        "hosts: {a: {interfaces: {eth0: {network: internet}}}}\n"
    )
    with pytest.raises(LabError, match="no host"):
        public_host(alone, "a", alone.node("a").iface())


def test_mapping_timeout_is_judged_with_a_margin() -> None:
    obs = observations([[WAN, 40000]] * 3, (False, False), hairpin=False)
    r = classify(obs, "peer-a", "eth0", "server")
    r.alive_after = {1.5: True, 3.5: False, 4.5: False}
    short = NatBehaviour(
        **{**NatBehaviour.preset("port-restricted").model_dump(), "udp_timeout": 3}
    )
    assert r.matches(short) == []  # 3.5 s is within the margin of 3 s: not judged
    assert r.matches(NatBehaviour.preset("port-restricted")) == [
        "udp_timeout: expected 120s, mapping gone after 3.5s idle",
        "udp_timeout: expected 120s, mapping gone after 4.5s idle",
    ]
    assert "mapping alive after 1.5s idle: yes" in r.summary()
