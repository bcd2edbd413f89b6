"""Labs from the shipped topologies: real namespaces, real packets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.utils import rdpcap

from harness.lab import Lab
from harness.pytest_plugin import MakeLab
from tests.integration.sockets import tcp_try, udp_exchange

pytestmark = pytest.mark.lab

HARNESS = [sys.executable, "-m", "harness"]
SHIPPED = sorted(p.stem for p in Path("topologies").glob("*.yaml"))


def public_host(lab: Lab) -> str:
    """`server` where it is public, else the first host without a gateway."""
    hosts = [n for n in lab.topology.nodes.values() if not n.is_router]
    public = [n.name for n in hosts if all(i.gateway is None for i in n.interfaces.values())]
    return "server" if "server" in public else public[0]


@pytest.mark.parametrize("topology", SHIPPED)
def test_every_host_reaches_the_public_server(make_lab: MakeLab, topology: str) -> None:
    lab = make_lab(topology)
    target = public_host(lab)
    for node in lab.topology.nodes.values():
        if node.is_router or node.name == target:
            continue
        received, replies = udp_exchange(lab, node.name, target, 5000 + len(node.name), count=2)
        if lab.topology.name == "udp-blocked" and node.name == "peer-a":
            assert received == [] and replies == [], "UDP left a udp-blocked network"
            continue
        assert [r[2] for r in received] == ["probe-0", "probe-1"], f"{node.name} -> {target}"
        assert replies == ["echo:probe-0", "echo:probe-1"]


def test_hosts_have_their_addresses_and_no_ipv6(make_lab: MakeLab) -> None:
    lab = make_lab("port-restricted")
    out = lab.run("peer-a", ["ip", "-br", "addr", "show", "eth0"]).stdout
    assert "192.168.1.10/24" in out and "fe80" not in out
    route = lab.run("peer-a", ["ip", "route", "show", "default"]).stdout
    assert "via 192.168.1.1 dev eth0" in route
    assert lab.run("peer-a", ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "0"
    assert lab.run("nat-a", ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"


def test_nothing_routes_outside_the_lab(make_lab: MakeLab) -> None:
    lab = make_lab("port-restricted")
    sink = str(lab.topology.sinks["internet"])
    # public nodes send what has no route to the internet's sink ...
    for node in ("server", "nat-a"):
        out = lab.run(node, ["ip", "route", "get", "8.8.8.8"]).stdout
        assert f"via {sink}" in out, out
    # ... which lives in the switch namespace: no route onwards, no forwarding
    assert lab.run(Lab.SWITCH, ["ip", "route", "show", "default"]).stdout.strip() == ""
    assert lab.run(Lab.SWITCH, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "0"
    before = lab.run(Lab.SWITCH, ["nstat", "-az", "IpInAddrErrors"]).stdout.split()[-2]
    lab.run("peer-a", ["ping", "-c1", "-W1", "8.8.8.8"], check=False)
    after = lab.run(Lab.SWITCH, ["nstat", "-az", "IpInAddrErrors"]).stdout.split()[-2]
    assert int(after) == int(before) + 1  # dropped at the sink, silently


def test_spawned_process_gets_the_lab_resolv_conf_and_hosts(make_lab: MakeLab) -> None:
    lab = make_lab("open-internet")
    proc = lab.spawn("server", ["sh", "-c", "cat /etc/resolv.conf /etc/hosts; pwd"], name="etc")
    proc.wait(5)
    text = proc.log_tail(50)
    assert "rtc-harness lab: no name server" in text
    assert "198.18.0.12 server-eth0 server" in text
    assert str(lab.workdir("server", "etc")) in text
    assert "rtc-harness" not in Path("/etc/resolv.conf").read_text()  # host untouched


def test_cgnat_double_translates_twice(make_lab: MakeLab) -> None:
    lab = make_lab("cgnat-double")
    cap = lab.capture([("home", "wan"), ("cgn", "wan"), ("server", "eth0")])
    received, replies = udp_exchange(lab, "peer-a", "server", 3478, sport=41000, count=3)
    files = cap.stop()
    assert len(received) == 3 and len(replies) == 3
    home_wan = str(lab.topology.node("home").wan.address)
    cgn_wan = str(lab.topology.node("cgn").wan.address)
    peer = str(lab.topology.node("peer-a").iface().address)
    srcs = []
    for f in files[:2]:
        pkts = [p for p in rdpcap(str(f)) if UDP in p and p[UDP].dport == 3478]
        assert len(pkts) == 3, f"{f}: {len(pkts)} probes"
        srcs.append({p[IP].src for p in pkts})
    assert srcs[0] == {home_wan} and srcs[1] == {cgn_wan}, srcs
    assert {r[0] for r in received} == {cgn_wan}  # the server only sees the outer NAT
    assert peer not in {home_wan, cgn_wan}


def test_udp_blocked_drops_udp_and_passes_tcp_443(make_lab: MakeLab) -> None:
    lab = make_lab("udp-blocked")
    received, replies = udp_exchange(lab, "peer-a", "server", 3478, count=2, timeout=0.3)
    assert received == [] and replies == []
    assert tcp_try(lab, "peer-a", "server", 443).startswith("from 198.18.0.10 hello")  # NATed
    assert tcp_try(lab, "peer-a", "server", 80).startswith("from")
    assert tcp_try(lab, "peer-a", "server", 3478, timeout=0.5).startswith("FAIL")
    # the public side itself is not restricted
    received, _ = udp_exchange(lab, "peer-b", "server", 3479, count=1)
    assert len(received) == 1


def test_dual_homed_answers_from_each_interface(make_lab: MakeLab) -> None:
    lab = make_lab("dual-homed")
    default = lab.run("peer-a", ["ip", "route", "get", "198.18.0.13"]).stdout
    assert "dev wifi" in default
    for iface in ("wifi", "lte"):
        src = str(lab.topology.node("peer-a").iface(iface).address)
        out = lab.run("peer-a", ["ping", "-c1", "-W1", "-I", src, "198.18.0.13"], check=False)
        assert out.returncode == 0, f"{iface}: {out.stdout}{out.stderr}"


def test_capture_files_are_named_by_node_and_interface(make_lab: MakeLab) -> None:
    lab = make_lab("port-restricted")
    cap = lab.capture(["nat-a.wan", "peer-a"], bpf="icmp")
    lab.run("peer-a", ["ping", "-c3", "-i", "0.05", "198.18.0.12"])
    files = cap.stop()
    assert [f.name for f in files] == ["nat-a-wan.pcap", "peer-a-eth0.pcap"]
    assert all(f.parent == lab.run_dir for f in files)
    for p in cap.points:
        assert p.stats["captured"] == 6 and p.stats["dropped"] == 0, (
            p.stats
        )  # 3 requests + 3 replies


def test_lab_cli_up_exec_down() -> None:
    name = "clitest"
    subprocess.run([*HARNESS, "lab", "down", name], capture_output=True)
    up = subprocess.run(
        [*HARNESS, "lab", "up", "topologies/port-restricted.yaml", "--name", name],
        capture_output=True,
        text=True,
    )
    try:
        assert up.returncode == 0, up.stderr
        assert "192.168.1.10/24" in up.stdout
        ex = subprocess.run(
            [*HARNESS, "lab", "exec", name, "peer-a", "--", "ip", "-br", "addr", "show", "eth0"],
            capture_output=True,
            text=True,
        )
        assert "192.168.1.10/24" in ex.stdout
        ls = subprocess.run([*HARNESS, "lab", "list"], capture_output=True, text=True)
        assert name in ls.stdout
        # a detached lab survives gc
        subprocess.run([*HARNESS, "lab", "gc"], check=True, capture_output=True)
        assert Path(f"/run/netns/rh-{name}.peer-a").exists()
    finally:
        down = subprocess.run([*HARNESS, "lab", "down", name], capture_output=True, text=True)
    assert down.returncode == 0
    assert not any(p.name.startswith(f"rh-{name}.") for p in Path("/run/netns").glob("*"))


def test_two_labs_side_by_side(make_lab: MakeLab) -> None:
    a = make_lab("port-restricted")
    b = make_lab("port-restricted")
    assert a.netns("peer-a") != b.netns("peer-a")
    for lab in (a, b):
        received, _ = udp_exchange(lab, "peer-a", "server", 7000, count=1)
        assert len(received) == 1


def test_lab_name_collision_is_refused(make_lab: MakeLab) -> None:
    from harness.errors import LabError

    make_lab("open-internet", name="samename")
    with pytest.raises(LabError, match="exists already"):
        Lab("topologies/open-internet.yaml", name="samename").up()


def test_lab_links_carry_mtu_sized_packets(make_lab: MakeLab) -> None:
    """Segmentation offloads are off on both ends of every link (runtime/ethtool.py)."""
    lab = make_lab("port-restricted")
    show = (
        "from harness.runtime.ethtool import segmentation as s; import sys; print(s(sys.argv[1]))"
    )
    for node in lab.topology.nodes.values():
        for iface in node.interfaces:
            out = lab.run(node.name, [sys.executable, "-c", show, iface]).stdout.strip()
            assert out == "{'tso': False, 'gso': False}", f"{node.name}.{iface}: {out}"
            port = lab.link(node.name, iface).ifname
            out = lab.run(Lab.SWITCH, [sys.executable, "-c", show, port]).stdout.strip()
            assert out == "{'tso': False, 'gso': False}", f"switch port {port}: {out}"


def test_a_stopped_tcpdump_loses_nothing_of_a_thousand_packets(make_lab: MakeLab) -> None:
    """What a stalled machine does to tcpdump: its ring must hold what arrives meanwhile
    (with 64 KiB frames, as offloads make libpcap choose, it held 128 packets)."""
    lab = make_lab("open-internet")
    cap = lab.capture(["server"], bpf="udp port 40000")
    (point,) = cap.points
    assert point.proc is not None
    os.kill(point.proc.pid, signal.SIGSTOP)
    try:
        send = (
            "import socket, sys, time\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for i in range(1000):\n"
            "    s.sendto(b'x' * 200, (sys.argv[1], 40000)); time.sleep(0.0005)\n"
        )
        server = str(lab.topology.node("server").iface().address)
        lab.run("peer-a", [sys.executable, "-c", send, server])
    finally:
        os.kill(point.proc.pid, signal.SIGCONT)
    cap.stop()
    assert point.stats.get("captured") == 1000 and point.stats.get("dropped") == 0, point.stats
