"""Router port forwards: the YAML checks (file:line:key) and the nftables text they render."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
import uuid

import pytest

from harness.config.topology import parse_topology
from harness.errors import ConfigError
from harness.nat.ruleset import router_ruleset

TOPO = """\
name: t
networks:
  internet: {subnet: 198.18.0.0/24}
  lan-t: {subnet: 192.168.5.0/24}
routers:
  nat-t:
    lan: lan-t
    wan: internet
    nat: port-restricted
    wan_address: 198.18.0.20
    forwards:
      - {protocol: udp, port: 3478, to: turn}
      - {protocol: tcp, port: 3478, to: turn}
      - {protocol: udp, port: 49152-49407, to: turn}
      - {protocol: tcp, port: 8443, to: "turn:443"}
hosts:
  turn:
    interfaces: {eth0: {network: lan-t, address: 192.168.5.10}}
  server:
    interfaces: {eth0: {network: internet}}
"""


def chain(nft: str, name: str) -> list[str]:
    m = re.search(rf"chain {name} {{\n(.*?)\n  }}", nft, re.S)
    assert m, f"no chain {name}"
    return [line.strip() for line in m.group(1).splitlines()]


def err(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_topology(textwrap.dedent(text), "topo.yaml")
    return info.value


def test_forwards_resolve_to_the_lan_host() -> None:
    fwd = parse_topology(TOPO).node("nat-t").forwards
    assert [(f.protocol.value, f.ports, str(f.address), f.to_port) for f in fwd] == [
        ("udp", "3478", "192.168.5.10", None),
        ("tcp", "3478", "192.168.5.10", None),
        ("udp", "49152-49407", "192.168.5.10", None),
        ("tcp", "8443", "192.168.5.10", 443),
    ]


def test_forwards_render_dnat_first_and_a_static_snat() -> None:
    nft = router_ruleset(parse_topology(TOPO).node("nat-t")).nft
    pre = chain(nft, "prerouting")
    assert pre[1:5] == [
        'iifname "wan" ip daddr 198.18.0.20 udp dport 3478 dnat ip to 192.168.5.10',
        'iifname "wan" ip daddr 198.18.0.20 tcp dport 3478 dnat ip to 192.168.5.10',
        'iifname "wan" ip daddr 198.18.0.20 udp dport 49152-49407 dnat ip to 192.168.5.10',
        'iifname "wan" ip daddr 198.18.0.20 tcp dport 8443 dnat ip to 192.168.5.10:443',
    ]
    post = chain(nft, "postrouting")
    # before the mapping chain: what the host sends from a forwarded port keeps that port
    assert post[1:5] == [
        'oifname "wan" ip saddr 192.168.5.10 udp sport 3478 snat ip to 198.18.0.20',
        'oifname "wan" ip saddr 192.168.5.10 tcp sport 3478 snat ip to 198.18.0.20',
        'oifname "wan" ip saddr 192.168.5.10 udp sport 49152-49407 snat ip to 198.18.0.20',
        'oifname "wan" ip saddr 192.168.5.10 tcp sport 443 snat ip to 198.18.0.20:8443',
    ]
    assert post[5].endswith("jump udp_mapping")


def test_a_router_without_forwards_renders_no_forward_rules() -> None:
    text = TOPO.split("    forwards:")[0] + TOPO.split('to: "turn:443"}\n')[1]
    nft = router_ruleset(parse_topology(text).node("nat-t")).nft
    assert "dnat" not in "\n".join(chain(nft, "prerouting"))


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "message"),
    [
        (
            "port: 3478, to: turn}",
            "port: 3478, to: server}",
            12,
            "routers.nat-t.forwards[0].to",
            "'server' is not a host on nat-t's LAN (lan-t)",
        ),
        (
            "port: 3478, to: turn}",
            "port: 3478, to: nat-t}",
            12,
            "routers.nat-t.forwards[0].to",
            "'nat-t' is not a host on nat-t's LAN",
        ),
        (
            "port: 49152-49407, to: turn}",
            "port: 49407-49152, to: turn}",
            14,
            "routers.nat-t.forwards[2].port",
            "ports are 1-65535 and LOW <= HIGH",
        ),
        (
            "port: 49152-49407, to: turn}",
            "port: 3000-3500, to: turn}",
            14,
            "routers.nat-t.forwards[2].port",
            "udp 3000-3500 overlaps an earlier forward (3478)",
        ),
        (
            "port: 49152-49407, to: turn}",
            "port: 49152-49407, to: 'turn:5000'}",
            14,
            "routers.nat-t.forwards[2].to",
            "a range is forwarded port for port",
        ),
        (
            'port: 8443, to: "turn:443"}',
            'port: 8443, to: "turn:70000"}',
            15,
            "routers.nat-t.forwards[3].to",
            "port '70000' is not 1-65535",
        ),
        (
            'port: 8443, to: "turn:443"}',
            "port: https, to: turn}",
            15,
            "routers.nat-t.forwards[3].port",
            "'https' is not a port or a range",
        ),
        (
            "{protocol: udp, port: 3478",
            "{protocol: sctp, port: 3478",
            12,
            "routers.nat-t.forwards[0].protocol",
            "'udp' or 'tcp'",
        ),
        (
            "nat: port-restricted",
            "nat: none",
            11,
            "routers.nat-t.forwards",
            "port forwards need a NAT",
        ),
    ],
)
def test_bad_forwards_name_file_line_and_key(
    old: str, new: str, line: int, key: str, message: str
) -> None:
    assert old in TOPO
    e = err(TOPO.replace(old, new, 1))
    assert (e.file, e.line, e.key) == ("topo.yaml", line, key), str(e)
    assert message in e.message, str(e)


@pytest.mark.lab
def test_nft_loads_forwards_with_every_preset() -> None:
    """`nft -c` (check only) in a namespace of our own."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    ns = f"tfwd-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for preset in ("full-cone", "address-restricted", "port-restricted", "symmetric"):
            text = TOPO.replace("nat: port-restricted", f"nat: {preset}")
            nft = router_ruleset(parse_topology(text).node("nat-t")).nft
            proc = subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "-c", "-f", "-"],
                input=nft,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, f"{preset}:\n{proc.stderr}"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
