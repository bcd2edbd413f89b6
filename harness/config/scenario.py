"""Scenario model: a topology, components and peers placed on its nodes, steps, expectations.

Everything a scenario names (nodes, peers, components, step kinds, checks) is
checked here, before any lab exists, so bad input never half-builds a lab.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.actions.reactions import ReactionSpec
from harness.conditions.timeline import TimelineStep
from harness.config.knownfailure import KnownFailure, check_signature
from harness.config.topology import Topology, load_topology
from harness.config.yamlsource import YamlSource, parse_yaml
from harness.errors import ConfigError

PEER_KINDS = ("aiortc", "chromium", "firefox")
TOPOLOGY_DIRS = ("topologies",)
SHIPPED_TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IceServerRef(Strict):
    """An ICE server: a component of the scenario (as STUN or TURN), or explicit URLs."""

    component: str | None = None
    use: Literal["turn", "stun"] = "turn"
    """What a component reference means: its TURN service (relays) or STUN only (never relays)."""
    urls: list[str] = []
    username: str | None = None
    credential: str | None = None
    transport: str | None = None  # "udp" / "tcp" / "tls" (turns:) for a component reference


class AudioSpec(Strict):
    tone_hz: float | None = 440.0
    """The sine tone the peer sends (its checks listen for it at the far end)."""
    file: str | None = None
    """A WAV file to send instead of a tone."""


class PeerSpec(Strict):
    kind: str
    """The WebRTC stack: aiortc or chromium."""
    node: str
    """The topology node the peer runs in."""
    ice_servers: list[str | IceServerRef] = []
    """STUN/TURN servers: a component's name, or `{component, transport}`, or `{urls, ...}`."""
    ice_transport_policy: str = "all"
    """`all`, or `relay` (TURN candidates only)."""
    trickle: bool = True
    """Send candidates as they are found (false: all of them in the SDP)."""
    audio: AudioSpec | None = Field(default_factory=AudioSpec)
    """Audio to send; null for none."""
    video: bool = False
    """Send a video track too."""
    datachannel: bool = True
    """Open a data channel in the call."""
    reaction: ReactionSpec = Field(default_factory=ReactionSpec)
    """What the app does when the network changes (harness/actions/reactions.py)."""
    image: str | None = None
    """Run the agent and its engine (browser, aiortc) from this image, in a container."""

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in PEER_KINDS:
            raise ValueError(f"unknown peer kind {v!r} (known: {', '.join(PEER_KINDS)})")
        return v

    @field_validator("ice_transport_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v not in ("all", "relay"):
            raise ValueError("ice_transport_policy is 'all' or 'relay'")
        return v


class ComponentSpec(Strict):
    kind: str
    """The component kind (below), e.g. coturn."""
    node: str
    """The topology node it runs in."""
    options: dict[str, Any] = {}
    """Options of its kind (below); unknown options and wrong types are errors."""
    image: str | None = None
    """Run the program from this image, in a container in its node (else the host's)."""


class ScenarioSpec(Strict):
    name: str
    """The scenario's name (in a matrix, put variables in it so each cell has its own)."""
    description: str = ""
    """What the scenario shows (reports print it)."""
    topology: str
    """A topology file beside the scenario, or a name in topologies/ (also the shipped ones)."""
    seed: int | None = None
    """Seed of the run's randomness (link impairments); default: a random one, reported."""
    repeat: int = 1
    """Runs per scenario (`harness run --repeat` overrides it)."""
    timeout: float = 120.0
    """Not enforced yet (each step has its own `timeout`); kept for compatibility."""
    components: dict[str, ComponentSpec] = {}
    """Servers by name: coturn, janus, kamailio, rtpengine, baresip, sipp (see Components)."""
    peers: dict[str, PeerSpec] = {}
    """WebRTC peers by name (see Peers)."""
    capture: list[str] = []
    """Interfaces to capture, `node.iface` (or `node`: its default interface)."""
    links: dict[str, Any] = {}
    """Link conditions per `node.iface` (harness/conditions/model.py LinkSpec)."""
    conditions: list[TimelineStep] = []
    """Condition changes on a timeline (at seconds from the first step, or on events)."""
    steps: list[dict[str, Any]] = Field(min_length=1)
    """What the run does, in order: `- KIND: {arguments}` (see Steps)."""
    expect: list[dict[str, Any]] = []
    """Checks after the run: `- CHECK: {parameters}` (see Checks)."""
    known_failure: KnownFailure | None = None
    """A known bug of the component under test, with the signature it must show."""
    runtime: Literal["process", "docker"] = "process"
    """Where components and peers without `image:` run: host processes, or containers of
    the default images `rtc-harness/<kind>:<suite>` (`harness run --runtime` overrides)."""
    suite: str = "bookworm"
    """The Debian suite of the default images (`harness run --suite` overrides)."""
    ci: bool = True
    """False: pytest (CI) skips it, `harness run` runs it (a matrix's `ci:` picks cells)."""


@dataclass
class Step:
    index: int
    kind: str
    action: Any  # an harness.actions.Action
    line: int | None


@dataclass
class Scenario:
    spec: ScenarioSpec
    source: YamlSource
    path: Path
    topology: Topology
    steps: list[Step]
    expects: list[tuple[str, dict[str, Any], int | None]]

    @property
    def name(self) -> str:
        return self.spec.name


def find_topology(ref: str, base: Path) -> Path:
    """A topology path relative to the scenario, or a bare name in a topologies/ folder
    beside it or above it, else one the harness ships (for scenarios kept elsewhere)."""
    candidates = [base / ref, Path(ref)]
    if not ref.endswith((".yaml", ".yml")):
        for parent in [base, *base.parents]:
            for d in TOPOLOGY_DIRS:
                candidates.append(parent / d / f"{ref}.yaml")
        candidates.append(SHIPPED_TOPOLOGIES / f"{ref}.yaml")
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(ref)


def load_scenario(path: str | Path) -> Scenario:
    scenarios = load_scenarios(path)
    if len(scenarios) != 1:
        raise ConfigError(
            str(path), None, "matrix", "a matrix file holds several scenarios: use load_scenarios()"
        )
    return scenarios[0]


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Every scenario of a file: one, or one per combination of its `matrix`.

    A matrix is a top-level mapping of dimensions, each a list of variable sets;
    every combination substitutes `${name}` in the rest of the file with the value
    as YAML data (harness/config/yamlsource.py), so errors point at the file's own lines. Its
    optional `known_failures` maps combination names to their KnownFailure;
    its optional `ci` lists name fragments: only cells matching one run under pytest.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), None, "", f"cannot read: {exc.strerror}") from None
    matrix_part, body = _split_matrix(text)
    if matrix_part is None:
        return [scenario_from_source(parse_yaml(text, str(path)), path)]
    msrc = parse_yaml(matrix_part, str(path))
    dims = dict(msrc.data["matrix"]) if isinstance(msrc.data["matrix"], dict) else None
    known = dims.pop("known_failures", {}) if dims else {}
    in_ci = dims.pop("ci", None) if dims else None
    if in_ci is not None and not (
        isinstance(in_ci, list) and in_ci and all(isinstance(x, str) for x in in_ci)
    ):
        raise msrc.error(("matrix", "ci"), "ci lists name fragments of the cells CI runs")
    if not isinstance(known, dict):
        raise msrc.error(
            ("matrix", "known_failures"),
            "known_failures maps a scenario name to a known failure (reason, checks/steps)",
        )
    known = {
        name: msrc.validate(KnownFailure, v, base=("matrix", "known_failures", name))
        for name, v in known.items()
    }
    if (
        not isinstance(dims, dict)
        or not dims
        or not all(
            isinstance(v, list) and v and all(isinstance(x, dict) for x in v) for v in dims.values()
        )
    ):
        raise msrc.error(("matrix",), "a matrix maps each dimension to a list of variable mappings")
    out = []
    for combo in itertools.product(*dims.values()):
        variables: dict[str, Any] = {}
        for part in combo:
            variables.update(part)
        sc = scenario_from_source(parse_yaml(body, str(path), variables), path)
        if sc.name in known:
            sc.spec.known_failure = known[sc.name]
            check_signature(sc, msrc, ("matrix", "known_failures", sc.name))
        if in_ci is not None:
            sc.spec.ci = any(fragment in sc.name for fragment in in_ci)
        out.append(sc)
    names = [sc.name for sc in out]
    for i, fragment in enumerate(in_ci or []):
        if not any(fragment in n for n in names):
            raise msrc.error(("matrix", "ci", str(i)), f"no combination name contains {fragment!r}")
    for name in known:
        if name not in names:
            raise msrc.error(
                ("matrix", "known_failures", name), f"no combination is named {name!r}"
            )
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise msrc.error(
            ("matrix",), f"matrix combinations share the name {dup!r}: put variables in `name`"
        )
    return out


def _split_matrix(text: str) -> tuple[str | None, str]:
    """(the top-level `matrix:` block alone, the rest), both keeping line numbers."""
    lines = text.splitlines()
    inside = [False] * len(lines)
    state = False
    for i, line in enumerate(lines):
        if line.startswith("matrix:"):
            state = True
        elif state and line and not line[0].isspace() and not line.startswith("#"):
            state = False
        inside[i] = state
    if not any(inside):
        return None, text
    matrix = "\n".join(ln if m else "" for ln, m in zip(lines, inside, strict=True)) + "\n"
    body = "\n".join("" if m else ln for ln, m in zip(lines, inside, strict=True)) + "\n"
    return matrix, body


def parse_scenario(text: str, path: str | Path) -> Scenario:
    return scenario_from_source(parse_yaml(text, str(path)), Path(path))


def scenario_from_source(src: YamlSource, path: Path) -> Scenario:
    from harness.actions import ACTIONS

    if not isinstance(src.data, dict):
        raise src.error((), "a scenario must be a mapping with topology, peers and steps")
    spec: ScenarioSpec = src.validate(ScenarioSpec)
    try:
        topo_path = find_topology(spec.topology, path.parent)
    except FileNotFoundError:
        raise src.error(
            ("topology",),
            f"no topology {spec.topology!r} (looked beside the scenario and in topologies/)",
        ) from None
    topology = load_topology(topo_path)

    def check_node(where: tuple[str | int, ...], node: str) -> None:
        if node not in topology.nodes:
            raise src.error(
                where,
                f"topology {topology.name!r} has no node {node!r} (nodes: {', '.join(topology.nodes)})",
            )

    from harness.components import COMPONENTS

    for name, comp in spec.components.items():
        check_node(("components", name, "node"), comp.node)
        if comp.kind not in COMPONENTS:
            raise src.error(
                ("components", name, "kind"),
                f"unknown component kind {comp.kind!r} (known: {', '.join(sorted(COMPONENTS)) or 'none'})",
            )
    for name, peer in spec.peers.items():
        check_node(("peers", name, "node"), peer.node)
        for i, ref in enumerate(peer.ice_servers):
            server = ref if isinstance(ref, str) else ref.component
            if server is not None and server not in spec.components:
                raise src.error(
                    ("peers", name, "ice_servers", i), f"no component {server!r} in this scenario"
                )
    from harness.conditions.model import LinkSpec
    from harness.config.validate import check_scenario, iface_ref

    for key, raw in spec.links.items():
        iface_ref(src, ("links", key), key, topology)
        src.validate(LinkSpec, raw, base=("links", key))
    for i, step in enumerate(spec.conditions):
        iface_ref(src, ("conditions", i, "link"), step.link, topology)
        on = step.on
        if on is not None and on.peer is not None and on.peer not in spec.peers:
            raise src.error(
                ("conditions", i, "on", "peer"), f"no peer {on.peer!r} in this scenario"
            )
        if on is not None and on.step is not None and on.step > len(spec.steps):
            raise src.error(
                ("conditions", i, "on", "step"), f"there are only {len(spec.steps)} steps"
            )
    if spec.repeat < 1:
        raise src.error(("repeat",), "repeat is at least 1")

    steps: list[Step] = []
    for i, raw in enumerate(spec.steps):
        where: tuple[str | int, ...] = ("steps", i)
        if not isinstance(raw, dict) or len(raw) != 1:
            raise src.error(where, "a step is one `KIND: {arguments}` mapping")
        kind, args = next(iter(raw.items()))
        if kind not in ACTIONS:
            raise src.error(
                where + (kind,), f"unknown step {kind!r} (known: {', '.join(sorted(ACTIONS))})"
            )
        act = src.validate(ACTIONS[kind], args if args is not None else {}, base=where + (kind,))
        for peer in act.peers():
            if peer not in spec.peers:
                raise src.error(
                    where + (kind,),
                    f"no peer {peer!r} in this scenario (peers: {', '.join(spec.peers) or 'none'})",
                )
        for comp in act.components():
            if comp not in spec.components:
                raise src.error(where + (kind,), f"no component {server!r} in this scenario")
        steps.append(Step(i, kind, act, src.line_of(where)))

    expects = []
    checks = _check_names()
    for i, raw in enumerate(spec.expect):
        where = ("expect", i)
        if not isinstance(raw, dict) or len(raw) != 1:
            raise src.error(where, "an expectation is one `CHECK: {parameters}` mapping")
        name, params = next(iter(raw.items()))
        if name not in checks:
            raise src.error(
                where + (name,), f"unknown check {name!r} (known: {', '.join(sorted(checks))})"
            )
        expects.append((name, params if params is not None else {}, src.line_of(where)))
    check_scenario(src, spec, topology, steps, expects)
    sc = Scenario(spec, src, path, topology, steps, expects)
    if spec.known_failure is not None:
        check_signature(sc, src, ("known_failure",))
    return sc


def _load_plugins() -> None:
    """Import every step kind and component kind (validation imports the ones it uses only)."""
    from harness.actions import ACTIONS
    from harness.components import COMPONENTS

    ACTIONS.load_all()
    COMPONENTS.load_all()


def _check_names() -> set[str]:
    """Names of every check, wire and peer, without importing the wire checks."""
    from harness.assertions.peer import PEER_CHECKS
    from harness.assertions.registry import REGISTRY

    return {*REGISTRY, *PEER_CHECKS}


def _check_registry() -> dict[str, Any]:
    from harness.assertions.registry import load_checks

    load_checks()
    from harness.assertions.peer import PEER_CHECKS
    from harness.assertions.registry import REGISTRY

    return {**REGISTRY, **PEER_CHECKS}


__all__ = ["ConfigError", "Scenario", "load_scenario", "parse_scenario"]
