"""Router port forwards with real packets: what reaches the LAN host, from where, and back.

The lab is topologies/turn-behind-nat.yaml: `turn` (192.168.5.10) behind nat-t
(WAN 198.18.0.20), which forwards UDP+TCP 3478 and UDP 49152-49407 to it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab import Lab
from tests.integration.sockets import tcp_try, udp_exchange

pytestmark = pytest.mark.lab

TOPOLOGY = Path(__file__).parents[2] / "topologies" / "turn-behind-nat.yaml"
WAN = "198.18.0.20"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(TOPOLOGY, name=f"tfwd-{secrets.token_hex(2)}") as lab:
        yield lab


def test_forwarded_udp_reaches_the_lan_host_and_its_reply_comes_back(lab: Lab) -> None:
    received, replies = udp_exchange(lab, "server", "turn", 3478, sport=41000, count=2, to=WAN)
    # DNAT only: the LAN host sees the real sender; the reply leaves from the public address
    assert [r[:2] for r in received] == [["198.18.0.12", 41000]] * 2, received
    assert replies == ["echo:probe-0", "echo:probe-1"]


def test_forward_from_behind_another_nat(lab: Lab) -> None:
    received, replies = udp_exchange(lab, "peer-a", "turn", 49300, sport=42000, count=1, to=WAN)
    assert [r[:2] for r in received] == [["198.18.0.10", 42000]], received  # nat-a's mapping
    assert replies == ["echo:probe-0"]


def test_forwarded_tcp(lab: Lab) -> None:
    assert tcp_try(lab, "server", "turn", 3478, to=WAN).startswith("from 198.18.0.12 hello")


def test_a_port_not_forwarded_stays_closed(lab: Lab) -> None:
    received, replies = udp_exchange(lab, "server", "turn", 5000, count=1, timeout=0.5, to=WAN)
    assert received == [] and replies == []
    assert tcp_try(lab, "server", "turn", 5001, timeout=0.5, to=WAN).startswith("FAIL")


def test_the_lan_host_sends_from_a_forwarded_port_as_that_public_port(lab: Lab) -> None:
    # what a relay sends first to a peer must leave from the public port it announced
    received, replies = udp_exchange(lab, "turn", "server", 6000, sport=49200, count=1)
    assert [r[:2] for r in received] == [[WAN, 49200]], received
    assert replies == ["echo:probe-0"]
