"""The network-namespace runtime: every node a namespace, every network a bridge.

Layout of a lab named L: node N lives in namespace `rh-L.N`; all networks are
bridges in one switch namespace `rh-L._sw`; each node interface is a veth pair
whose switch end is a bridge port (so link conditions and captures can attach
on either end). Nothing is created in the host namespace, so deleting the
namespaces removes every interface, bridge, route and nft table of the lab.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.topology import Node, Topology
from harness.errors import LabError
from harness.runtime.base import HostProcess, LinkRef, NodeProcess, Runtime
from harness.runtime.nftlib import load_ruleset
from harness.runtime.nsutil import (
    create_netns,
    delete_netns,
    list_netns,
    netns_path,
    netns_pids,
    parallel,
    run_in_netns,
    setns_fd,
    write_sysctls,
)
from harness.runtime.rtnl import IF_OPER_UP, Rtnl

if TYPE_CHECKING:
    from harness.runtime.docker import ContainerPlacement

PREFIX = "rh-"
SWITCH = "_sw"
POLICY_TABLE_BASE = 100
NODE_IFINDEX_BASE = 1000

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

_SPAWN_SCRIPT = (
    'mount --bind "$RH_RESOLV" /etc/resolv.conf && '
    'mount --bind "$RH_HOSTS" /etc/hosts && '
    'unset RH_RESOLV RH_HOSTS && exec "$@"'
)


@dataclass
class _Switch:
    """The switch namespace as node threads see it: ready once its bridges exist."""

    bridges: dict[str, str]  # network -> bridge name
    index: dict[str, int] = field(default_factory=dict)  # network -> bridge ifindex
    ready: threading.Event = field(default_factory=threading.Event)


def netns_name(lab: str, node: str) -> str:
    return f"{PREFIX}{lab}.{node}"


def lab_of_netns(ns: str) -> str | None:
    if not ns.startswith(PREFIX) or "." not in ns:
        return None
    return ns[len(PREFIX) :].rsplit(".", 1)[0]


class NetnsRuntime(Runtime):
    name = "netns"

    def __init__(self, lab: str, etc_dir: Path) -> None:
        self.lab = lab
        self.etc_dir = etc_dir  # holds the lab's resolv.conf and hosts
        self.topology: Topology | None = None
        self.processes: list[HostProcess] = []
        self._links: dict[tuple[str, str], LinkRef] = {}
        self._ifindex: dict[tuple[str, str], int] = {}
        self._containers: ContainerPlacement | None = None

    @property
    def containers(self) -> ContainerPlacement:
        """Where programs with an image run (made on first use: no engine needed before)."""
        if self._containers is None:
            from harness.runtime.docker import ContainerPlacement

            self._containers = ContainerPlacement(self.lab, self.netns, self.etc_dir)
        return self._containers

    # ------------------------------------------------------------ naming

    def netns(self, node: str) -> str:
        return netns_name(self.lab, SWITCH if node == "@switch" else node)

    @property
    def namespaces(self) -> list[str]:
        assert self.topology is not None
        return [self.netns("@switch")] + [self.netns(n) for n in self.topology.nodes]

    def link(self, node: str, iface: str) -> LinkRef:
        try:
            return self._links[(node, iface)]
        except KeyError:
            raise KeyError(f"no interface {node}.{iface} in lab {self.lab}") from None

    # ------------------------------------------------------------ build

    def up(self, topology: Topology) -> None:
        """Build every namespace on its own thread, in process: a thread makes its
        namespace (unshare and a bind mount, as `ip netns add`), writes its sysctls,
        loads its rules (libnftables) and makes its links, addresses and routes over
        rtnetlink. No program runs, and the namespaces are built at the same time."""
        self.topology = topology
        self._write_etc(topology)
        self.up_links_only(topology)
        bridges = {net: f"b{i}{net}"[:15] for i, net in enumerate(topology.networks)}
        switch = _Switch(bridges)
        jobs = [lambda: self._build_switch(topology, switch)]
        jobs += [(lambda n=node: self._build_node(n, switch)) for node in topology.nodes.values()]
        try:
            parallel(jobs, workers=len(jobs))  # a node waits for the switch: never queued
        except OSError as exc:
            raise LabError(f"lab {self.lab}: {exc}") from None

    def _build_switch(self, topology: Topology, switch: _Switch) -> None:
        try:
            create_netns(self.netns("@switch"))
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

    def _build_node(self, node: Node, switch: _Switch) -> None:
        assert self.topology is not None
        sysctls = dict(COMMON_SYSCTLS)
        sysctls["net.ipv4.ip_forward"] = "1" if node.is_router else "0"
        rules = None
        if node.is_router:
            from harness.nat.ruleset import router_ruleset

            rules = router_ruleset(node, fresh=True)
            sysctls.update(rules.sysctls)
        create_netns(self.netns(node.name))
        write_sysctls(sysctls)
        if rules is not None and rules.nft.strip():
            try:
                load_ruleset(rules.nft)
            except OSError as exc:
                raise OSError(f"loading router rules on {node.name}: {exc}") from None
        with Rtnl() as nl:
            nl.set_link("lo", up=True)
            if not switch.ready.wait(10.0) or len(switch.index) < len(switch.bridges):
                raise OSError(f"{node.name}: the switch namespace was not built")
            with self._switch_rtnl() as (sw_fd, swnl):
                ports = []
                for iface in node.interfaces.values():
                    peer = self._links[(node.name, iface.name)].ifname
                    nl.add_veth(iface.name, self._ifindex[(node.name, iface.name)], peer, sw_fd)
                    swnl.set_link(
                        peer,
                        alias=f"{node.name}.{iface.name}",
                        master=switch.index[iface.network],
                        up=True,
                    )
                    ports.append(peer)
                self._configure_node(nl, node, self.topology.sinks)
                self._wait_links_up(swnl, ports)

    @contextlib.contextmanager
    def _switch_rtnl(self) -> Iterator[tuple[int, Rtnl]]:
        """The switch namespace open as a file, and a netlink socket in it, made from a
        thread that stays in its own namespace."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        sw_fd = os.open(netns_path(self.netns("@switch")), os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns_fd(sw_fd, "switch")
            try:
                swnl = Rtnl()
            finally:
                setns_fd(own, "own namespace")
            with swnl:
                yield sw_fd, swnl
        finally:
            os.close(own)
            os.close(sw_fd)

    @staticmethod
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

    def up_links_only(self, topology: Topology) -> None:
        """Name the switch end of every interface (also for attaching to a running lab)."""
        sw = self.netns("@switch")
        index = 0
        for ni, node in enumerate(topology.nodes.values()):
            for iface in node.interfaces.values():
                peer = f"n{ni}{iface.name}"[:15]
                self._links[(node.name, iface.name)] = LinkRef(sw, peer, node.name, iface.name)
                # Distinct ifindexes on the two ends: the kernel treats a veth whose peer
                # has its own ifindex as a non-urgent link event and brings it to operstate
                # UP up to 1 s later, dropping the first packets (seen: a first ARP lost).
                self._ifindex[(node.name, iface.name)] = NODE_IFINDEX_BASE + index
                index += 1

    @staticmethod
    def _configure_node(nl: Rtnl, node: Node, topology_sinks: dict[str, IPv4Address]) -> None:
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
                (
                    (i, topology_sinks[i.network])
                    for i in node.interfaces.values()
                    if i.network in topology_sinks
                ),
                None,
            )
            if sink is not None:
                nl.add_route(via=sink[1], dev=index[sink[0].name])
            else:
                nl.add_route(blackhole=True)

    def _write_etc(self, topology: Topology) -> None:
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        # nothing answers DNS in a lab: fail fast rather than hang (sofia-sip, Chromium)
        (self.etc_dir / "resolv.conf").write_text(
            "# rtc-harness lab: no name server\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
        )
        lines = ["127.0.0.1 localhost"]
        for node in topology.nodes.values():
            for i, iface in enumerate(node.interfaces.values()):
                names = f"{node.name}-{iface.name}" + (f" {node.name}" if i == 0 else "")
                lines.append(f"{iface.address} {names}")
        (self.etc_dir / "hosts").write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------ processes

    def _nsenter(self, node: str) -> list[str]:
        ns = self.netns(node)
        if not os.path.exists(netns_path(ns)):
            raise LabError(f"lab {self.lab} has no node {node!r} (namespace {ns} is missing)")
        return ["nsenter", f"--net={netns_path(ns)}"]

    def spawn(
        self,
        node: str,
        argv: Sequence[str],
        *,
        name: str,
        cwd: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        image: str | None = None,
        mounts: Sequence[Path] = (),
    ) -> NodeProcess:
        if image is not None:
            return self.containers.spawn(
                node, image, argv, name=name, cwd=cwd, log_path=log_path, env=env, mounts=mounts
            )
        full = [
            *self._nsenter(node),
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _SPAWN_SCRIPT,
            "sh",
            *argv,
        ]
        penv = dict(os.environ if env is None else env)
        penv["RH_RESOLV"] = str(self.etc_dir / "resolv.conf")
        penv["RH_HOSTS"] = str(self.etc_dir / "hosts")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                full,
                cwd=cwd,
                env=penv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )
        proc = HostProcess(node, name, list(argv), log_path, popen=popen)
        self.processes.append(proc)
        return proc

    def run(
        self,
        node: str,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._nsenter(node), *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    def prepare_images(self, wanted: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
        from harness.runtime import engine

        errors = engine.check_images([(image, prog) for _, image, prog in wanted])
        if not errors:
            self.containers.prepare(sorted({node for node, _, _ in wanted}))
        return errors

    def socket(self, node: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """Made in the node's namespace, which its containers share: one way for both."""

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, kind)
            sock.setblocking(False)
            return sock

        self._nsenter(node)  # a clear error for a missing node
        return run_in_netns(self.netns(node), make)

    # ------------------------------------------------------------ tear-down

    def down(self) -> None:
        if self._containers is not None:
            self._containers.down()
        for proc in reversed(self.processes):
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        for proc in self.processes:
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.popen.wait(5)
            else:
                proc.send_signal(signal.SIGKILL)  # children that outlived their leader
        self.processes.clear()
        destroy_lab_namespaces(self.lab)


def destroy_lab_namespaces(lab: str, names: list[str] | None = None) -> list[str]:
    """Remove a lab's containers, kill whatever still runs in its namespaces, then delete
    them. Idempotent; also what `harness lab gc` does for a lab whose owner died."""
    from harness.runtime.engine import remove_lab_containers

    remove_lab_containers(lab)
    names = names if names is not None else [ns for ns in list_netns() if lab_of_netns(ns) == lab]
    names = [ns for ns in names if os.path.exists(netns_path(ns))]
    if not names:
        return []
    killed = False
    for pid in netns_pids(*names):
        try:
            os.kill(pid, signal.SIGKILL)
            killed = True
        except ProcessLookupError:
            pass
    if killed:
        time.sleep(0.05)
    for ns in names:
        with contextlib.suppress(OSError):
            delete_netns(ns)
    left = [ns for ns in names if os.path.exists(netns_path(ns))]
    if left:
        raise LabError(f"could not delete namespaces: {', '.join(left)}")
    return names
