"""The NAT probe against real labs: measured behaviour == configured behaviour, knob by knob.

Each test builds a lab with the Lab API, runs the RFC 5780 server on a public host
and the client inside the probed host, and compares what came back with the
router's NatBehaviour. Nothing here reads the NAT settings to produce a result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest

from harness.config.topology import parse_topology
from harness.lab import Lab
from harness.nat.behaviour import Dependence, NatBehaviour
from harness.nat.probe import NatProbeResult, probe_mapping_lifetime, probe_nat
from harness.pytest_plugin import MakeLab

pytestmark = pytest.mark.lab

EIM = Dependence.ENDPOINT_INDEPENDENT
ADM = Dependence.ADDRESS_DEPENDENT
APDM = Dependence.ADDRESS_AND_PORT_DEPENDENT


def assert_measured(result: NatProbeResult, nat: NatBehaviour) -> None:
    """Field by field (clear failure messages), then the result's own comparison."""
    assert result.udp and result.nat, result.summary()
    measured = (
        result.mapping,
        result.filtering,
        result.port_preservation,
        result.hairpinning,
    )
    assert measured == (nat.mapping, nat.filtering, nat.port_preservation, nat.hairpinning), (
        result.to_json()
    )
    assert result.matches(nat) == []


@pytest.mark.parametrize(
    "preset", ["full-cone", "address-restricted", "port-restricted", "symmetric"]
)
def test_shipped_preset_is_what_the_probe_measures(make_lab: MakeLab, preset: str) -> None:
    lab = make_lab(preset)
    nat = lab.topology.node("nat-a").nat
    assert nat is not None and nat == NatBehaviour.preset(preset)
    result = probe_nat(lab, "peer-a")
    assert_measured(result, nat)
    wan = str(lab.topology.node("nat-a").wan.address)
    assert result.evidence["mapped"][0] == wan
    if nat.hairpinning:  # RFC 4787 REQ-9: hairpinned packets carry the external source
        assert result.evidence["hairpin_from"][0] == wan


def test_open_internet_has_no_nat(make_lab: MakeLab) -> None:
    lab = make_lab("open-internet")
    result = probe_nat(lab, "peer-a")
    assert result.udp and result.nat is False
    assert result.evidence["mapped"] == result.evidence["local"]
    assert result.matches(NatBehaviour.preset("none")) == []
    assert result.matches(NatBehaviour.preset("port-restricted")) != []


class Knobs(TypedDict):
    """NatBehaviour's fields a custom NAT sets (written into the topology's YAML too)."""

    mapping: Dependence
    filtering: Dependence
    port_preservation: bool
    hairpinning: bool


CUSTOM = {
    "eim-no-port-preservation": Knobs(
        mapping=EIM, filtering=APDM, port_preservation=False, hairpinning=False
    ),
    "adm-adf-hairpin": Knobs(mapping=ADM, filtering=ADM, port_preservation=True, hairpinning=True),
    "adm-apdf-random": Knobs(
        mapping=ADM, filtering=APDM, port_preservation=False, hairpinning=False
    ),
    "apdm-eif-preserving": Knobs(
        mapping=APDM, filtering=EIM, port_preservation=True, hairpinning=True
    ),
}


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_knobs_are_what_the_probe_measures(name: str, tmp_path: Path) -> None:
    knobs = CUSTOM[name]
    nat_yaml = "{" + ", ".join(f"{k}: {str(v).lower()}" for k, v in knobs.items()) + "}"
    topo = parse_topology(
        f"""
name: custom-{name}
networks:
  internet: {{subnet: 198.18.0.0/24}}
  lan-a: {{subnet: 192.168.1.0/24}}
routers:
  nat-a: {{lan: lan-a, wan: internet, nat: {nat_yaml}}}
hosts:
  peer-a: {{interfaces: {{eth0: {{network: lan-a}}}}}}
  server: {{interfaces: {{eth0: {{network: internet}}}}}}
"""
    )
    with Lab(topo, run_dir=tmp_path / "run") as lab:
        result = probe_nat(lab, "peer-a")
    assert_measured(result, NatBehaviour(**knobs))


def test_nat_chain_probes_as_the_combination(make_lab: MakeLab) -> None:
    """Home (port-restricted) behind a CGN (port-restricted): the pair acts as one."""
    lab = make_lab("cgnat-double")
    result = probe_nat(lab, "peer-a")
    assert_measured(result, NatBehaviour.preset("port-restricted"))
    assert result.evidence["mapped"][0] == str(lab.topology.node("cgn").wan.address)


def test_dual_homed_probes_each_interface(make_lab: MakeLab) -> None:
    lab = make_lab("dual-homed")
    wifi = probe_nat(lab, "peer-a", iface="wifi")
    lte = probe_nat(lab, "peer-a", iface="lte")
    assert_measured(wifi, NatBehaviour.preset("port-restricted"))
    assert_measured(lte, NatBehaviour.preset("symmetric"))
    assert wifi.evidence["mapped"][0] == str(lab.topology.node("home").wan.address)
    assert lte.evidence["mapped"][0] == str(lab.topology.node("cgn").wan.address)


def test_udp_blocked_network_gets_no_answer(make_lab: MakeLab) -> None:
    lab = make_lab("udp-blocked")
    result = probe_nat(lab, "peer-a")
    assert result.udp is False and result.mapping is None
    assert result.matches(NatBehaviour.preset("port-restricted")) != []
    # the probe cleaned up after itself: no second address left on the server
    addrs = lab.run("server", ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
    assert addrs.count(" inet ") == 1


def test_udp_timeout_is_measured(tmp_path: Path) -> None:
    """A 3 s mapping timeout is gone after 4.5 s idle; the default 120 s one is not."""
    topo = parse_topology(
        """
name: nat-timeout
networks:
  internet: {subnet: 198.18.0.0/24}
  lan-a: {subnet: 192.168.1.0/24}
  lan-b: {subnet: 192.168.2.0/24}
routers:
  nat-a: {lan: lan-a, wan: internet, nat: {preset: port-restricted, udp_timeout: 3}}
  nat-b: {lan: lan-b, wan: internet, nat: port-restricted}
hosts:
  peer-a: {interfaces: {eth0: {network: lan-a}}}
  peer-b: {interfaces: {eth0: {network: lan-b}}}
  server: {interfaces: {eth0: {network: internet}}}
"""
    )
    with Lab(topo, run_dir=tmp_path / "run") as lab:
        short = probe_mapping_lifetime(lab, "peer-a", [1.5, 4.5])
        default = probe_mapping_lifetime(lab, "peer-b", [4.5])
    assert short == {1.5: True, 4.5: False}
    assert default == {4.5: True}


def test_cli_probe_of_a_running_lab(make_lab: MakeLab) -> None:
    lab = make_lab("full-cone")
    cmd = [sys.executable, "-m", "harness", "nat", "probe", lab.name, "peer-a"]
    out = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["mapping"], data["filtering"], data["hairpinning"]) == (
        "endpoint-independent",
        "endpoint-independent",
        True,
    )
    human = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert "filtering: endpoint-independent" in human.stdout.splitlines()
    bad = subprocess.run([*cmd, "--iface", "wifi"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no interface 'wifi'" in bad.stderr
