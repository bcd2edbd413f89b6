"""Mobility steps: a phone's network changes under a call (handoff, interface, route,
NAT rebinding, TURN allocation loss, gateway restart).

Each step changes the real lab (ip, conntrack, nft, component processes) and writes
what it did, with wall-clock times, to the run's mobility log: `run_dir/mobility.json`.
The recovery metrics (harness/analysis/recovery.py) read that log beside the pcaps,
and app reactions (harness/actions/reactions.py) watch it for network-change signals.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import model_validator

from harness.actions.registry import Action, action
from harness.actions.steps import StepError

# The nft, netns and analysis modules load when a step runs: validation needs the models only.
if TYPE_CHECKING:
    from harness.analysis.recovery import NetworkEvent
    from harness.config.topology import Interface
    from harness.lab import Lab
    from harness.scenario.context import ScenarioContext

#: nft table the rebinding step adds to a router (its own, so the NAT's ruleset stays untouched).
REBIND_TABLE = "rh_mobility"


class MobilityLog:
    """The run's network events in order; rewritten to disk on each record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[NetworkEvent] = []

    def record(
        self,
        kind: str,
        node: str = "",
        *,
        signal: bool = False,
        t: float | None = None,
        **data: Any,
    ) -> NetworkEvent:
        from harness.analysis.recovery import NetworkEvent

        ev = NetworkEvent(time.time() if t is None else t, kind, node, signal, data)
        self.events.append(ev)
        self.path.write_text(json.dumps([asdict(e) for e in self.events], indent=1, default=str))
        return ev


def mobility_log(ctx: ScenarioContext) -> MobilityLog:
    from harness.analysis.recovery import LOG_NAME

    log = ctx.extras.get("mobility")
    if log is None:
        log = ctx.extras["mobility"] = MobilityLog(ctx.lab.run_dir / LOG_NAME)
    return log


# -- host interfaces and routes, as a phone's OS changes them ------------------------------


def _iface(lab: Lab, node: str, name: str, step: str) -> Interface:
    n = lab.topology.node(node)
    if name not in n.interfaces:
        raise StepError(f"{step}: node {node!r} has no interface {name!r}")
    iface = n.interfaces[name]
    if iface.gateway is None:
        raise StepError(f"{step}: {node}.{name} has no gateway to route through")
    return iface


def _table(lab: Lab, node: str, name: str) -> int:
    """The policy table netns.py gave this interface (answers leave where they came in)."""
    from harness.runtime.netbuild import POLICY_TABLE_BASE

    gateways = [i.name for i in lab.topology.node(node).interfaces.values() if i.gateway]
    return POLICY_TABLE_BASE + gateways.index(name)


async def _ip(lab: Lab, node: str, *cmds: str, check: bool = True) -> None:
    for cmd in cmds:
        await asyncio.to_thread(lab.run, node, ["ip", *cmd.split()], check=check, timeout=10)


async def iface_down(lab: Lab, node: str, name: str) -> None:
    """Wi-Fi lost: the address goes (with every route through it), then the link."""
    await _ip(lab, node, f"addr flush dev {name}", f"link set {name} down")


async def iface_up(lab: Lab, node: str, name: str, *, default: bool) -> None:
    """Attached again: link, address (DHCP/PDP context), routes; `default` makes it preferred."""
    iface = _iface(lab, node, name, "interface")
    await _ip(lab, node, f"link set {name} up")
    await _ip(lab, node, f"addr replace {iface.cidr} dev {name}")
    await _ip(
        lab,
        node,
        f"route replace default via {iface.gateway} dev {name} table {_table(lab, node, name)}",
    )
    if default:
        await set_default(lab, node, name)
        return
    routes = await _default_routes(lab, node)
    metric = max([200, *(int(r.get("metric", 0)) + 100 for r in routes if r.get("dev") != name)])
    await _ip(lab, node, f"route del default dev {name}", check=False)
    await _ip(lab, node, f"route add default via {iface.gateway} dev {name} metric {metric}")


async def _default_routes(lab: Lab, node: str) -> list[dict[str, Any]]:
    out = await asyncio.to_thread(lab.run, node, ["ip", "-j", "route", "show", "default"])
    return json.loads(out.stdout or "[]")


async def set_default(lab: Lab, node: str, name: str) -> list[str]:
    """Make `name` carry the default route (metric 100); other live routes drop to 200+.

    One prefix may not have two routes of the same metric, hence the order: ours goes,
    the others move down, ours comes back on top.
    """
    via = _iface(lab, node, name, "route")
    others = [r["dev"] for r in await _default_routes(lab, node) if r.get("dev") != name]
    await _ip(lab, node, f"route del default dev {name}", check=False)
    for i, dev in enumerate(others, start=2):
        gw = lab.topology.node(node).interfaces[dev].gateway
        await _ip(lab, node, f"route del default dev {dev}", check=False)
        await _ip(lab, node, f"route add default via {gw} dev {dev} metric {i * 100}")
    await _ip(lab, node, f"route add default via {via.gateway} dev {name} metric 100")
    return others


async def iface_is_up(lab: Lab, node: str, name: str) -> bool:
    out = await asyncio.to_thread(lab.run, node, ["ip", "-j", "addr", "show", "dev", name])
    info = json.loads(out.stdout or "[{}]")[0]
    return "UP" in info.get("flags", []) and bool(info.get("addr_info"))


# -- steps -----------------------------------------------------------------------------------


@action("handoff")
class Handoff(Action):
    """Move `node`'s traffic from interface `from_iface` to `to_iface`, as a phone does.

    break-before-make: the old interface loses its address and goes down, the node
    has no network for `dark_ms`, then the new one comes up and takes the default
    route. make-before-break: the new one comes up first, both are up for
    `overlap_ms`, then the old one goes down. Apps on the node get a network-change
    signal when the new interface becomes the default, and in make-before-break again
    when the old one is lost (reactions may restart ICE on each).
    """

    node: str
    from_iface: str
    to_iface: str
    mode: Literal["break-before-make", "make-before-break"] = "break-before-make"
    dark_ms: int = 0
    overlap_ms: int = 0

    @model_validator(mode="after")
    def _sane(self) -> Handoff:
        if self.from_iface == self.to_iface:
            raise ValueError("from_iface and to_iface must differ")
        if self.mode == "break-before-make" and self.overlap_ms:
            raise ValueError("overlap_ms is for make-before-break")
        if self.mode == "make-before-break" and self.dark_ms:
            raise ValueError("dark_ms is for break-before-make")
        return self

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        lab, log = ctx.lab, mobility_log(ctx)
        _iface(lab, self.node, self.from_iface, "handoff")
        new = _iface(lab, self.node, self.to_iface, "handoff")
        t0 = time.time()
        if self.mode == "break-before-make":
            await iface_down(lab, self.node, self.from_iface)
            t_break = time.time()
            await asyncio.sleep(max(0.0, self.dark_ms / 1000 - (t_break - t0)))
            await iface_up(lab, self.node, self.to_iface, default=True)
            t_make = time.time()
        else:
            await iface_up(lab, self.node, self.to_iface, default=True)
            t_make = time.time()
            log.record("network_available", self.node, signal=True, iface=self.to_iface)
            await asyncio.sleep(self.overlap_ms / 1000)
            await iface_down(lab, self.node, self.from_iface)
            t_break = time.time()
            # the OS says so again: the network the app's sockets used is gone
            log.record("network_lost", self.node, signal=True, iface=self.from_iface)
        ev = log.record(
            "handoff",
            self.node,
            signal=self.mode == "break-before-make",
            t=t_make,
            mode=self.mode,
            start=t0,
            old_down=t_break,
            new_up=t_make,
            from_iface=self.from_iface,
            to_iface=self.to_iface,
            new_address=str(new.address),
        )
        return {
            "mode": self.mode,
            "dark_s": round(max(0.0, t_make - t_break), 3),
            "overlap_s": round(max(0.0, t_break - t_make), 3),
            "event_t": round(ev.t - ctx.t0, 3),
        }


@action("interface")
class InterfaceStep(Action):
    """Bring `node`'s interface `iface` down (address and routes removed) or up (restored)."""

    node: str
    iface: str
    state: Literal["up", "down"]
    default: bool = False
    """When coming up: take the default route."""
    signal: bool = True
    """Tell the node's apps (a network-change signal)."""

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        _iface(ctx.lab, self.node, self.iface, "interface")
        if self.state == "down":
            await iface_down(ctx.lab, self.node, self.iface)
        else:
            await iface_up(ctx.lab, self.node, self.iface, default=self.default)
        ev = mobility_log(ctx).record(
            f"interface_{self.state}", self.node, signal=self.signal, iface=self.iface
        )
        return {"event_t": round(ev.t - ctx.t0, 3)}


@action("route")
class RouteStep(Action):
    """Move `node`'s default route to interface `via` (both interfaces stay up)."""

    node: str
    via: str
    signal: bool = True

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        if not await iface_is_up(ctx.lab, self.node, self.via):
            raise StepError(f"route: {self.node}.{self.via} is down (bring it up first)")
        demoted = await set_default(ctx.lab, self.node, self.via)
        ev = mobility_log(ctx).record("route", self.node, signal=self.signal, via=self.via)
        routes = await _default_routes(ctx.lab, self.node)
        return {
            "event_t": round(ev.t - ctx.t0, 3),
            "demoted": demoted,
            "default_routes": {r["dev"]: r.get("metric", 0) for r in routes},
        }


def _conntrack_mappings(lab: Lab, router: str, host: str) -> list[str]:
    """`public addr:port` of each UDP mapping the router holds for `host` (from conntrack)."""
    out = lab.run(router, ["conntrack", "-L", "-p", "udp", "-s", host], check=False).stdout
    maps = []
    for line in out.splitlines():
        # the reply direction's destination is the public side of the mapping
        fields = [w.split("=", 1) for w in line.split() if "=" in w]
        dsts = [v for k, v in fields if k == "dst"]
        dports = [v for k, v in fields if k == "dport"]
        if len(dsts) >= 2 and len(dports) >= 2:
            maps.append(f"{dsts[1]}:{dports[1]}")
    return sorted(set(maps))


#: The NAT ruleset's state keyed on a host's endpoint or its public port (harness/nat/ruleset.py).
NAT_STATE = ("out_eim", "out_adm", "in_map", "perm")


def _forget_state(lab: Lab, router: str, host: str) -> list[str]:
    """Delete the NAT's learnt state for `host`: what a mapping timeout does.

    `used_ports` is kept, so the host's next flow cannot get its old public port back.
    """
    from harness.nat.ruleset import NAT_TABLE

    listing = lab.run(router, ["nft", "list", "table", "ip", NAT_TABLE], check=False).stdout
    elements: dict[str, list[str]] = {}
    for name, body in re.findall(r"(?:map|set) (\w+) \{.*?elements = \{(.*?)\}", listing, re.S):
        if name in NAT_STATE:
            elements[name] = [e.strip() for e in body.replace("\n", " ").split(",") if e.strip()]
    ports = set()
    for elem in elements.get("in_map", []):
        key, _, value = elem.partition(" : ")
        if value.split(" . ")[0].strip() == host:
            ports.add(key.strip())
    gone = []
    for name, elems in elements.items():
        for elem in elems:
            key, _, value = (
                x.split(" timeout ")[0].split(" expires ")[0] for x in elem.partition(" : ")
            )
            words = {w.strip() for w in f"{key} . {value}".split(" . ")}
            if host in words or (
                name in ("in_map", "perm") and key.split(" . ")[0].strip() in ports
            ):
                lab.run(
                    router,
                    ["nft", "delete", "element", "ip", NAT_TABLE, name, f"{{ {key.strip()} }}"],
                )
                gone.append(f"{name}: {key.strip()}")
    return gone


@action("nat_rebind")
class NatRebind(Action):
    """The NAT `router` forgets `host`'s mappings: its next packets leave from a new public port.

    The host's outbound packets are held back for `silence_ms` (as in a pause after
    which a real NAT's mapping timed out) while its mappings are deleted; the far
    side keeps sending, so the old public port is taken and the next outbound packet
    gets a new one. With `new_address`, the router leaves from a second public
    address instead. The host is not told (no network-change signal): a phone never is.
    """

    router: str
    host: str
    iface: str | None = None
    """The host's interface behind the router (default: the host's interface on its LAN)."""
    silence_ms: int = 300
    new_address: bool = False
    require_change: bool = True

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        lab = ctx.lab
        r = lab.topology.node(self.router)
        if not r.is_router:
            raise StepError(f"nat_rebind: {self.router!r} is not a router")
        lan_nets = {i.network for i in r.lans}
        hnode = lab.topology.node(self.host)
        hif = next(
            (
                i
                for i in hnode.interfaces.values()
                if (self.iface is None or i.name == self.iface) and i.network in lan_nets
            ),
            None,
        )
        if hif is None:
            raise StepError(f"nat_rebind: {self.host!r} has no interface behind {self.router!r}")
        host = str(hif.address)
        before = await asyncio.to_thread(_conntrack_mappings, lab, self.router, host)
        # a fresh table each time: an earlier rebind's address is given up too
        rules = [f"table ip {REBIND_TABLE}", f"delete table ip {REBIND_TABLE}"]
        rules += [f"table ip {REBIND_TABLE} {{", "  chain hold {"]
        rules += [
            "    type filter hook forward priority filter - 10; policy accept;",
            f"    ip saddr {host} drop",
            "  }",
        ]
        public = None
        if self.new_address:
            public = self._spare_address(ctx)
            await _ip(lab, self.router, f"addr add {public}/32 dev wan")
            rules += [
                "  chain move {",
                "    type nat hook postrouting priority srcnat - 10; policy accept;",
                f"    ip saddr {host} oifname wan snat to {public}",
                "  }",
            ]
        rules.append("}")
        t0 = time.time()
        await asyncio.to_thread(lab.run, self.router, ["nft", "-f", "-"], input="\n".join(rules))
        forgotten = await asyncio.to_thread(_forget_state, lab, self.router, host)
        await asyncio.to_thread(lab.run, self.router, ["conntrack", "-D", "-s", host], check=False)
        await asyncio.sleep(self.silence_ms / 1000)
        await asyncio.to_thread(
            lab.run, self.router, ["nft", "delete", "chain", "ip", REBIND_TABLE, "hold"]
        )
        t_release = time.time()
        await asyncio.sleep(0.3)  # let the host's traffic create its new mappings
        after = await asyncio.to_thread(_conntrack_mappings, lab, self.router, host)
        ev = mobility_log(ctx).record(
            "nat_rebind",
            self.host,
            t=t_release,
            router=self.router,
            start=t0,
            before=before,
            after=after,
            forgotten=forgotten,
            public_address=public,
        )
        changed = bool(after) and not set(after) & set(before)
        if self.require_change and not changed:
            raise StepError(
                f"nat_rebind: mappings of {host} on {self.router} did not change "
                f"(before {before}, after {after}): is the host sending?"
            )
        return {
            "event_t": round(ev.t - ctx.t0, 3),
            "before": before,
            "after": after,
            "changed": changed,
        }

    def _spare_address(self, ctx: ScenarioContext) -> str:
        """An address of the router's WAN network that nothing uses (counting down from the top)."""
        wan = ctx.lab.topology.node(self.router).wan
        used = {
            ip_address(e.data["public_address"])
            for e in mobility_log(ctx).events
            if e.data.get("public_address")
        }
        for cand in ctx.lab.topology.spare_addresses(wan.network):
            if cand not in used:
                return str(cand)
        raise StepError(f"nat_rebind: no spare address on {self.router}'s WAN network")


def _component(ctx: ScenarioContext, name: str, step: str) -> Any:
    comp = ctx.components.get(name)
    if comp is None:
        raise StepError(f"{step}: no component {name!r} in this scenario")
    return comp


async def restart_component(ctx: ScenarioContext, name: str, down_ms: int, step: str) -> float:
    """Stop a component (its process dies with every session it held), wait, start it again.

    Returns the time it was ready again.
    """
    comp = _component(ctx, name, step)
    await asyncio.to_thread(comp.stop)
    await asyncio.sleep(down_ms / 1000)
    await asyncio.to_thread(comp.start, ctx.lab)
    return time.time()


@action("turn_allocation_loss")
class TurnAllocationLoss(Action):
    """The TURN server loses every allocation: coturn is killed and started again.

    Relayed candidates stop working at once (the relay ports are gone, refreshes get
    437 Allocation Mismatch); only an ICE restart that allocates again recovers.
    """

    component: str
    down_ms: int = 0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        comp = _component(ctx, self.component, "turn_allocation_loss")
        if comp.kind != "coturn":
            raise StepError(
                f"turn_allocation_loss: {self.component!r} is a {comp.kind}, not coturn"
            )
        t0 = time.time()
        ready = await restart_component(ctx, self.component, self.down_ms, "turn_allocation_loss")
        ev = mobility_log(ctx).record(
            "turn_allocation_loss", comp.node, t=t0, component=self.component, ready=ready
        )
        return {"event_t": round(ev.t - ctx.t0, 3), "down_s": round(ready - t0, 3)}


@action("gateway_restart")
class GatewayRestart(Action):
    """Stop and start a component mid-call (`down_ms` between), as a crash and a restart do."""

    component: str
    down_ms: int = 0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        comp = _component(ctx, self.component, "gateway_restart")
        t0 = time.time()
        ready = await restart_component(ctx, self.component, self.down_ms, "gateway_restart")
        ev = mobility_log(ctx).record(
            "gateway_restart", comp.node, t=t0, component=self.component, ready=ready
        )
        return {"event_t": round(ev.t - ctx.t0, 3), "down_s": round(ready - t0, 3)}
