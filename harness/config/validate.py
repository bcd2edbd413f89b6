"""Cross-checks of a scenario against its topology and the registries, before any lab exists.

One pass used by `harness validate`, `harness run` and pytest collection (all load
through `scenario_from_source`): component options against each kind's model,
check names and parameters, every node, interface, peer and component a step,
link, capture or check names, and ICE servers pointing at a STUN/TURN component.
Interfaces are spelled `node.iface` everywhere.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from harness.config.topology import Topology
from harness.config.yamlsource import YamlSource

if TYPE_CHECKING:
    from harness.assertions.params import CheckError
    from harness.config.scenario import ScenarioSpec, Step

Where = tuple[str | int, ...]


def did_you_mean(word: Any, choices: Any) -> str:
    if not isinstance(word, str):  # a YAML key may be a number or a boolean
        return ""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def iface_ref(
    src: YamlSource, where: Where, text: Any, topology: Topology, *, bare: bool = False
) -> tuple[str, str]:
    """`node.iface` (or `node` alone where `bare`) -> (node, iface or ""), checked."""
    if not isinstance(text, str):
        raise src.error(where, "an interface is a string `node.iface`")
    if ":" in text:
        node, _, iface = text.partition(":")
        raise src.error(where, f"interfaces are spelled `node.iface`: write {node}.{iface}")
    node, dot, iface = text.partition(".")
    if node not in topology.nodes:
        raise src.error(
            where,
            f"topology {topology.name!r} has no node {node!r}{did_you_mean(node, topology.nodes)}"
            f" (nodes: {', '.join(topology.nodes)})",
        )
    if not dot and not bare:
        raise src.error(where, f"name an interface: `{node}.IFACE`")
    ifaces = topology.nodes[node].interfaces
    if dot and iface not in ifaces:
        raise src.error(
            where, f"node {node!r} has no interface {iface!r} (has: {', '.join(ifaces)})"
        )
    return node, iface


def capture_points(spec: ScenarioSpec, topology: Topology) -> list[tuple[str, str]]:
    """The (node, iface) a run captures: the scenario's list, else every host interface
    and every router's WAN side."""
    if spec.capture:
        out = []
        for text in spec.capture:
            node, _, iface = text.partition(".")
            out.append((node, iface or topology.nodes[node].iface().name))
        return out
    points = []
    for n in topology.nodes.values():
        if n.is_router:
            points.append((n.name, "wan"))
        else:
            points += [(n.name, i) for i in n.interfaces]
    return points


def check_scenario(
    src: YamlSource,
    spec: ScenarioSpec,
    topology: Topology,
    steps: list[Step],
    expects: list[tuple[str, dict[str, Any], int | None]],
) -> None:
    """Everything `scenario_from_source` did not check yet; raises ConfigError."""
    _components(src, spec)
    _ice_servers(src, spec)
    for i, text in enumerate(spec.capture):
        iface_ref(src, ("capture", i), text, topology, bare=True)
    points = capture_points(spec, topology)
    for step in steps:
        _step(src, step, topology)
    for i, (name, params, _) in enumerate(expects):
        _expectation(src, ("expect", i, name), name, params, spec, points, len(steps))


def _components(src: YamlSource, spec: ScenarioSpec) -> None:
    from harness.components import COMPONENTS

    for name, comp in spec.components.items():
        cls = COMPONENTS[comp.kind]
        src.validate(cls.Options, comp.options, base=("components", name, "options"))


def _ice_servers(src: YamlSource, spec: ScenarioSpec) -> None:
    from harness.components import COMPONENTS

    for pname, peer in spec.peers.items():
        for i, ref in enumerate(peer.ice_servers):
            comp = ref if isinstance(ref, str) else ref.component
            where: Where = ("peers", pname, "ice_servers", i)
            if comp is None:
                if isinstance(ref, str) or not ref.urls:
                    raise src.error(where, "an ICE server names a `component` or gives `urls`")
                continue
            kind = spec.components[comp].kind
            use = "turn" if isinstance(ref, str) else ref.use
            method = {"turn": "ice_server", "stun": "stun_server"}[use]
            if not hasattr(COMPONENTS[kind], method):
                raise src.error(where, f"component {comp!r} ({kind}) is no {use.upper()} server")
            transport = (None if isinstance(ref, str) else ref.transport) or "udp"
            allowed = ("udp", "tcp", "tls") if use == "turn" else ("udp",)
            if transport not in allowed:
                raise src.error(
                    where + ("transport",),
                    f"{use.upper()} transport is {' or '.join(repr(t) for t in allowed)}",
                )
            options = COMPONENTS[kind].Options.model_validate(spec.components[comp].options)
            if getattr(options, transport, True) is False:
                raise src.error(
                    where,
                    f"component {comp!r} does not serve {transport} (options.{transport} is false)",
                )


def _step(src: YamlSource, step: Step, topology: Topology) -> None:
    act = step.action
    where: Where = ("steps", step.index, step.kind)
    for node in act.nodes():
        if node not in topology.nodes:
            raise src.error(
                where,
                f"topology {topology.name!r} has no node {node!r}"
                f"{did_you_mean(node, topology.nodes)} (nodes: {', '.join(topology.nodes)})",
            )
    for router in act.routers():
        if not topology.nodes[router].is_router:
            raise src.error(where, f"{router!r} is not a router of topology {topology.name!r}")
    for node, iface in act.interfaces():
        ifaces = topology.nodes[node].interfaces
        if iface not in ifaces:
            raise src.error(
                where, f"node {node!r} has no interface {iface!r} (has: {', '.join(ifaces)})"
            )


def _expectation(
    src: YamlSource,
    where: Where,
    name: str,
    params: Any,
    spec: ScenarioSpec,
    points: list[tuple[str, str]],
    n_steps: int,
) -> None:
    from harness.assertions.peer import PEER_CHECKS, check_peer_params
    from harness.assertions.registry import REGISTRY, CheckError, check_params

    if not isinstance(params, dict):
        raise src.error(where, "a check's parameters are a mapping")
    if name in PEER_CHECKS:
        allowed = PEER_CHECKS[name].params
        try:
            check_peer_params(name, params)
        except CheckError as exc:
            raise _at(src, where, exc, allowed) from None
        peer = params.get("peer")
        if not isinstance(peer, str) or peer not in spec.peers:
            raise src.error(
                where + ("peer",) if "peer" in params else where,
                f"{name} needs `peer`, one of: {', '.join(spec.peers) or 'none'}",
            )
        step = params.get("at_step")
        if step is not None and (
            not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < n_steps
        ):
            raise src.error(where + ("at_step",), f"at_step is a step index, 0 to {n_steps - 1}")
        return
    check = REGISTRY[name]
    for key in params:
        if key != "capture" and key not in check.params:
            raise src.error(
                where + (key,),
                f"unknown parameter {key!r} of {name}{did_you_mean(key, check.params)}"
                f" (takes: {', '.join(['capture', *check.params])})",
            )
    try:
        check_params(name, {k: v for k, v in params.items() if k != "capture"})
    except CheckError as exc:
        raise _at(src, where, exc, check.params) from None
    if "capture" in params:
        pick_point(src, where + ("capture",), params["capture"], points)
    if "mobile" in params:
        node = params["mobile"]
        if not any(n == node for n, _ in points):
            raise src.error(
                where + ("mobile",),
                f"no capture of node {node!r} (captured: {_points_text(points)})",
            )


def _at(src: YamlSource, where: Where, exc: CheckError, takes: Any) -> Exception:
    """A check's CheckError as the scenario's error, at the parameter its path names (none:
    the check itself, e.g. one it needs is missing), with a did-you-mean for an unknown one."""
    path = exc.path
    hint = did_you_mean(path[-1], takes) if path and "unknown parameter" in str(exc) else ""
    return src.error(where + path, f"{exc}{hint}")


def _points_text(points: list[tuple[str, str]]) -> str:
    return ", ".join(f"{n}.{i}" for n, i in points) or "none"


def pick_point(
    src: YamlSource, where: Where, text: Any, points: list[tuple[str, str]]
) -> tuple[str, str]:
    """The captured (node, iface) a check's `capture:` names: `node.iface`, or a node
    with exactly one captured interface."""
    if not isinstance(text, str):
        raise src.error(where, "capture names a captured interface `node.iface`")
    if ":" in text:
        node, _, iface = text.partition(":")
        raise src.error(where, f"interfaces are spelled `node.iface`: write {node}.{iface}")
    node, dot, iface = text.partition(".")
    mine = [(n, i) for n, i in points if n == node and (not dot or i == iface)]
    if len(mine) == 1:
        return mine[0]
    hint = ""
    if not mine and "-" in text and not dot:
        n, _, i = text.rpartition("-")
        if (n, i) in points:
            hint = f": write {n}.{i}"
    if not mine:
        raise src.error(where, f"no capture {text!r}{hint} (captured: {_points_text(points)})")
    raise src.error(
        where,
        f"node {node!r} is captured on {len(mine)} interfaces: name one, e.g. {node}.{mine[0][1]}",
    )
