"""coturn behind a NAT: the option's checks and the lines it writes, against a real topology."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.components.coturn import Coturn
from harness.config.topology import Topology, load_topology, parse_topology
from harness.errors import ComponentError
from harness.lab.lab import Lab

TOPOLOGY = Path(__file__).parents[2] / "topologies" / "turn-behind-nat.yaml"


def coturn(options: dict[str, Any], topo: Topology | None = None) -> Coturn:
    c = Coturn("turn", "turn", options)
    # a Lab object only: nothing is brought up (that is Lab.__enter__'s)
    c.lab = Lab(topo or load_topology(TOPOLOGY), run_dir=Path("/nonexistent"))
    return c


def test_public_address_by_router_name_is_its_wan_address() -> None:
    c = coturn({"public_address": "nat-t"})
    assert c.public_ip() == "198.18.0.20"
    assert c.ice_server("udp")["urls"] == ["turn:198.18.0.20:3478?transport=udp"]
    assert c.stun_server()["urls"] == ["stun:198.18.0.20:3478"]


def test_turns_names_the_host_not_the_address() -> None:
    c = coturn({"tls": True})
    assert c.ice_server("tls")["urls"] == ["turns:turn-eth0:5349?transport=tcp"]
    with pytest.raises(ComponentError, match="forwards no tcp 5349-5349"):
        coturn({"tls": True, "public_address": "nat-t"}).ice_server("tls")
    text = TOPOLOGY.read_text().replace(
        "      - {protocol: tcp, port: 3478, to: turn}\n",
        "      - {protocol: tcp, port: 3478, to: turn}\n      - {protocol: tcp, port: 5349, to: turn}\n",
    )
    behind = coturn({"tls": True, "public_address": "nat-t"}, parse_topology(text))
    assert behind.ice_server("tls")["urls"] == ["turns:nat-t-wan:5349?transport=tcp"]


def test_bad_public_address_is_refused_when_options_are_read() -> None:
    with pytest.raises(ComponentError, match="neither an IPv4 address nor a router name"):
        Coturn("turn", "turn", {"public_address": "Not A Name"})


def test_router_must_forward_the_relay_range() -> None:
    text = TOPOLOGY.read_text().replace("port: 49152-49407", "port: 49152-49200")
    c = coturn({"public_address": "nat-t"}, parse_topology(text))
    with pytest.raises(ComponentError, match="forwards no udp 49152-49407 to 'turn'"):
        c.public_ip()
    c = coturn({"public_address": "peer-a"})
    with pytest.raises(ComponentError, match="'peer-a' is not a NAT router"):
        c.public_ip()
