"""RFC 5780 NAT behaviour discovery in a running lab.

A STUN server on two addresses and two ports runs on a public host; the client
runs inside the probed host and reports what came back. The behaviours are
decided here from those observations only, never from the topology's NAT
settings, so `NatProbeResult.matches()` is a real end-to-end check of a NAT.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Protocol

from harness.config.topology import Interface, Topology
from harness.errors import LabError
from harness.nat.behaviour import Dependence, NatBehaviour

if TYPE_CHECKING:  # the lab's process handle; nat does not depend on a runtime
    from harness.runtime.base import NodeProcess

SERVER_READY_TIMEOUT = 5.0
TIMEOUT_MARGIN = 1.0
"""Idle times this close to a configured timeout are not judged (timer granularity)."""


class LabLike(Protocol):
    """The part of `harness.lab.Lab` the probe uses."""

    topology: Topology

    def run(
        self, node: str, argv: list[str], *, check: bool = ..., timeout: float = ...
    ) -> subprocess.CompletedProcess[str]: ...

    def spawn(self, node: str, argv: list[str], *, name: str) -> NodeProcess: ...


@dataclass
class NatProbeResult:
    """What the probe measured; None where a test could not decide."""

    node: str
    iface: str
    server: str
    udp: bool
    """Did the probe server answer at all (False: UDP is blocked on the way)."""
    nat: bool | None = None
    """Was the source address translated."""
    mapping: Dependence | None = None
    filtering: Dependence | None = None
    port_preservation: bool | None = None
    hairpinning: bool | None = None
    alive_after: dict[float, bool] | None = None
    """Idle seconds -> was the mapping still alive (only when asked for: it takes that long)."""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def matches(self, behaviour: NatBehaviour) -> list[str]:
        """Differences between this measurement and `behaviour`; empty if it matches."""
        if not self.udp:
            return ["no UDP answer from the probe server (UDP blocked on the path?)"]
        if not behaviour.enabled:
            return [] if not self.nat else [f"expected no NAT, saw {self._translation()}"]
        if not self.nat:
            return ["expected a NAT, saw none (the mapped address is the local one)"]
        wanted = {
            "mapping": behaviour.mapping,
            "filtering": behaviour.filtering,
            "port_preservation": behaviour.port_preservation,
            "hairpinning": behaviour.hairpinning,
        }
        seen = {k: getattr(self, k) for k in wanted}
        out = [
            f"{k}: expected {_show(wanted[k])}, measured {_show(seen[k])}"
            for k in wanted
            if wanted[k] != seen[k]
        ]
        timeout = behaviour.udp_timeout
        for idle, alive in (self.alive_after or {}).items():
            if abs(idle - timeout) >= TIMEOUT_MARGIN and alive != (idle < timeout):
                state = "alive" if alive else "gone"
                out.append(
                    f"udp_timeout: expected {timeout}s, mapping {state} after {idle:g}s idle"
                )
        return out

    def summary(self) -> list[str]:
        """One human line per property."""
        lines = [f"udp: {'yes' if self.udp else 'no answer (blocked?)'}"]
        if self.udp:
            lines.append(f"nat: {'yes, ' + self._translation() if self.nat else 'no'}")
            for k in ("mapping", "filtering", "port_preservation", "hairpinning"):
                lines.append(f"{k.replace('_', ' ')}: {_show(getattr(self, k))}")
            for idle, alive in (self.alive_after or {}).items():
                lines.append(f"mapping alive after {idle:g}s idle: {_show(alive)}")
        return lines

    def _translation(self) -> str:
        return f"{_ep(self.evidence.get('local'))} -> {_ep(self.evidence.get('mapped'))}"


def _show(v: object) -> str:
    if v is None:
        return "undetermined"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _ep(addr: Any) -> str:
    return f"{addr[0]}:{addr[1]}" if addr else "?"


def _same(a: Any, b: Any) -> bool:
    return a is not None and b is not None and tuple(a) == tuple(b)


def classify(obs: dict[str, Any], node: str, iface: str, server: str) -> NatProbeResult:
    """Decide RFC 4787 behaviours from the client's observations (RFC 5780 4.3-4.6)."""
    local = obs["local"]
    tests = obs["mapping"]
    first = tests[0]
    result = NatProbeResult(node, iface, server, udp=first["mapped"] is not None)
    result.evidence = {"local": local, "mapped": first["mapped"], "observations": obs}
    if not result.udp:
        return result
    result.nat = not _same(first["mapped"], local)
    if len(tests) == 3 and all(t["mapped"] for t in tests):
        i, ii, iii = (t["mapped"] for t in tests)
        result.evidence["mapped_per_destination"] = {
            "primary": i,
            "alternate address": ii,
            "alternate address and port": iii,
        }
        if _same(i, ii):
            result.mapping = Dependence.ENDPOINT_INDEPENDENT
        elif _same(ii, iii):
            result.mapping = Dependence.ADDRESS_DEPENDENT
        else:
            result.mapping = Dependence.ADDRESS_AND_PORT_DEPENDENT
    filt = obs["filtering"]
    if filt.get("plain", {}).get("mapped"):
        if filt["change-ip-port"]["mapped"]:
            result.filtering = Dependence.ENDPOINT_INDEPENDENT
        elif filt["change-port"]["mapped"]:
            result.filtering = Dependence.ADDRESS_DEPENDENT
        else:
            result.filtering = Dependence.ADDRESS_AND_PORT_DEPENDENT
        pairs = [(local, first["mapped"]), (obs["filtering_local"], filt["plain"]["mapped"])]
        result.port_preservation = all(lo[1] == m[1] for lo, m in pairs)
        result.evidence["ports"] = [[lo[1], m[1]] for lo, m in pairs]
    result.hairpinning = obs["hairpin_from"] is not None
    result.evidence["hairpin_from"] = obs["hairpin_from"]
    return result


# ---------------------------------------------------------------- running it in a lab


def public_host(topology: Topology, node: str, iface: Interface) -> str:
    """A host on the WAN network of the outermost router in front of `iface` ("server" first)."""
    network = iface.network
    seen = {network}
    while True:
        router = next(
            (
                n
                for n in topology.nodes.values()
                if n.is_router and any(lan.network == network for lan in n.lans)
            ),
            None,
        )
        if router is None or router.wan.network in seen:
            break
        network = router.wan.network
        seen.add(network)
    hosts = [
        i.node
        for i in topology.hosts_on(network)
        if i.node != node and not topology.node(i.node).is_router
    ]
    if not hosts:
        raise LabError(f"no host on network {network!r} to run the NAT probe server on")
    return "server" if "server" in hosts else hosts[0]


def _add_alternate_address(lab: LabLike, host: str, iface: Interface) -> IPv4Address:
    """Give the server host a second address, free in the topology and on the host."""
    shown = lab.run(host, ["ip", "-o", "-4", "addr", "show"]).stdout
    net = iface.network
    for candidate in lab.topology.spare_addresses(net):
        if f" {candidate}/" in shown:
            continue
        cidr = f"{candidate}/{iface.prefixlen}"
        proc = lab.run(host, ["ip", "addr", "add", cidr, "dev", iface.name], check=False)
        if proc.returncode == 0:
            return candidate
        if "exists" not in proc.stderr:
            raise LabError(f"{host}: ip addr add {cidr}: {proc.stderr.strip()}")
    raise LabError(f"no free address on {net} for the NAT probe's alternate address")


def _wait_ready(proc: NodeProcess) -> dict[str, Any]:
    deadline = time.monotonic() + SERVER_READY_TIMEOUT
    while time.monotonic() < deadline:
        for line in proc.log_tail(20).splitlines():
            if line.startswith('{"ready"'):
                return json.loads(line)
        if not proc.alive():
            break
        time.sleep(0.02)
    raise LabError(f"NAT probe server on {proc.node} did not start:\n{proc.log_tail(20)}")


def _run_probe(
    lab: LabLike,
    node: str,
    iface: str | None,
    server: str | None,
    client_args: list[str],
    timeout: float,
) -> tuple[dict[str, Any], str, str]:
    """Start the server, run the client in `node`; (client JSON, interface, server host)."""
    topo = lab.topology
    try:
        n = topo.node(node)
        ifc = n.iface(iface or n.default_route)
        server = server or public_host(topo, node, ifc)
        srv_if = topo.node(server).iface()
    except KeyError as exc:
        raise LabError(f"NAT probe in lab {topo.name!r}: {exc.args[0]}") from None
    alternate = _add_alternate_address(lab, server, srv_if)
    try:
        argv = [sys.executable, "-m", "harness.nat.stunserver", "--primary", str(srv_if.address)]
        argv += ["--alternate", str(alternate), "--lifetime", str(60 + timeout)]
        # a fresh name per probe: a log of an earlier probe must not look ready
        proc = lab.spawn(server, argv, name=f"natprobe-{node}-{secrets.token_hex(3)}")
        try:
            ports = _wait_ready(proc)["ports"]
            client = [sys.executable, "-m", "harness.nat.probeclient", "--bind", str(ifc.address)]
            client += ["--server", f"{srv_if.address}:{ports[0]}", *client_args]
            out = lab.run(node, client, timeout=timeout)
        finally:
            proc.stop()
    finally:
        cidr = f"{alternate}/{srv_if.prefixlen}"
        lab.run(server, ["ip", "addr", "del", cidr, "dev", srv_if.name], check=False)
    return json.loads(out.stdout), ifc.name, server


def probe_nat(
    lab: LabLike,
    node: str,
    iface: str | None = None,
    server: str | None = None,
    *,
    wait: float = 0.8,
    idle: Sequence[float] = (),
) -> NatProbeResult:
    """Measure the NAT behaviour seen by `node` (through `iface`) towards the public internet.

    With `idle` (seconds), also check whether a mapping outlives each idle time.
    """
    obs, ifname, server = _run_probe(
        lab, node, iface, server, ["--wait", str(wait)], timeout=30 + 10 * wait
    )
    result = classify(obs, node, ifname, server)
    if idle and result.udp:
        result.alive_after = probe_mapping_lifetime(lab, node, list(idle), iface, server)
    return result


def probe_mapping_lifetime(
    lab: LabLike,
    node: str,
    idle: list[float],
    iface: str | None = None,
    server: str | None = None,
) -> dict[float, bool]:
    """Is a UDP mapping still alive after each of `idle` seconds without traffic? (RFC 5780 4.6)

    One fresh mapping per idle time, all waiting in parallel: the check itself
    (the server answering to the mapped port) refreshes a mapping, so none is reused.
    """
    if not idle or min(idle) <= 0:
        raise ValueError("idle times must be positive seconds")
    args = ["--idle", ",".join(str(t) for t in idle)]
    obs, _, _ = _run_probe(lab, node, iface, server, args, timeout=max(idle) + 30)
    return {float(t): alive for t, alive in obs["alive_after"].items()}
