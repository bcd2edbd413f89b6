"""Checks on what the peers themselves observed (stats snapshots taken after each step).

The wire is the judge (harness/assertions/checks.py); these complement it with
what only an endpoint knows: which candidate types it selected, and which tone
it heard after decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.assertions.params import Choice, refuse
from harness.assertions.registry import CheckError, Outcome

PeerSnapshots = dict[str, list[dict[str, Any]]]
"""peer name -> stats snapshots in step order, each with `step` (index) and `stats`."""

PeerEvents = dict[str, list[dict[str, Any]]]
"""peer name -> events in order, each `{t, kind, data}` (t from the first step)."""

PeerCheckFn = Callable[[Any, dict[str, Any]], Outcome]


@dataclass
class PeerCheck:
    name: str
    fn: PeerCheckFn
    params: set[str]
    rfc: str
    on_events: bool = False
    """True: `fn` reads the peers' events (PeerEvents), not their stats snapshots."""
    choices: dict[str, Choice] | None = None
    """Parameters that take one of a few values."""


PEER_CHECKS: dict[str, PeerCheck] = {}
BY_KIND = "by_kind"
"""`by_kind: {KIND: {param: value}}`: the overrides of a peer's implementation (`kind`)."""


def peer_check(
    name: str,
    *params: str,
    rfc: str = "",
    on_events: bool = False,
    choices: dict[str, Choice] | None = None,
) -> Callable[[PeerCheckFn], PeerCheckFn]:
    def wrap(fn: PeerCheckFn) -> PeerCheckFn:
        PEER_CHECKS[name] = PeerCheck(
            name, fn, {"peer", "at_step", *params}, rfc, on_events, choices
        )
        return fn

    return wrap


def check_peer_params(name: str, params: dict[str, Any]) -> None:
    """Raise CheckError (with the parameter's path) for a parameter the peer check does not
    take, a value outside its choices, or a `by_kind` override that is either; an override
    misspelt would leave the expectation it meant to change silently unchanged."""
    spec = PEER_CHECKS[name]
    for key, value in params.items():
        _check_peer_value(spec, key, value, (key,))
    overrides = params.get(BY_KIND)
    if BY_KIND in params:
        if not isinstance(overrides, dict) or not all(
            isinstance(v, dict) for v in overrides.values()
        ):
            raise CheckError(
                f"{name}: by_kind maps a peer kind to a mapping of parameters", (BY_KIND,)
            )
        for kind, over in overrides.items():
            for key, value in over.items():
                path = (BY_KIND, str(kind), key)
                if key in ("peer", "at_step", "kind", BY_KIND):
                    raise CheckError(f"{name}: a by_kind override cannot set {key}", path)
                _check_peer_value(spec, key, value, path)


def _check_peer_value(spec: PeerCheck, key: str, value: Any, path: tuple[str, ...]) -> None:
    where = ".".join(path)
    if key not in spec.params:
        raise CheckError(
            f"unknown parameter {where!r} of {spec.name} (takes: {', '.join(sorted(spec.params))})",
            path,
        )
    choice = (spec.choices or {}).get(key)
    if choice is not None:  # the others take any value
        refuse(spec.name, choice, value, path)


def run_peer_check(
    name: str,
    snapshots: PeerSnapshots,
    params: dict[str, Any],
    events: PeerEvents | None = None,
) -> Outcome:
    spec = PEER_CHECKS[name]
    check_peer_params(name, params)
    if "peer" not in params:
        raise CheckError(f"{name}: needs `peer`")
    out = spec.fn((events or {}) if spec.on_events else snapshots, params)
    out.rfc = out.rfc or spec.rfc
    return out


def _snapshot(snaps: PeerSnapshots, p: dict[str, Any]) -> dict[str, Any]:
    """The snapshot after step `at_step`, else the last one taken while ICE was connected."""
    peer = p["peer"]
    if peer not in snaps or not snaps[peer]:
        raise CheckError(f"no stats were collected from peer {peer!r}")
    series = snaps[peer]
    if "at_step" in p:
        for s in series:
            if s["step"] == p["at_step"]:
                return s
        raise CheckError(f"no stats of {peer!r} after step {p['at_step']}")
    connected = [
        s for s in series if s["stats"].get("ice", {}).get("state") in ("connected", "completed")
    ]
    return (connected or series)[-1]


def _as_list(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _pair_text(pair: dict[str, Any] | None) -> str:
    if not pair:
        return "none"
    loc, rem = pair.get("local", {}), pair.get("remote", {})
    return (
        f"local {loc.get('type')} {loc.get('protocol', '')} {loc.get('address')}:{loc.get('port')}"
        f" <-> remote {rem.get('type')} {rem.get('address')}:{rem.get('port')}"
    )


CANDIDATE_TYPES = Choice(("host", "srflx", "prflx", "relay"), many=True)


@peer_check(
    "peer_selected_pair",
    "local",
    "remote",
    "either",
    "relay_protocol",
    "local_address",
    "kind",
    BY_KIND,
    rfc="RFC 8445 §8",
    choices=dict.fromkeys(("local", "remote", "either"), CANDIDATE_TYPES),
)
def peer_selected_pair(snaps: PeerSnapshots, p: dict[str, Any]) -> Outcome:
    """The candidate types (and for relays, the TURN transport) of the pair the peer selected;
    `local_address`: the local candidate's address (a relay behind a NAT: the public one).

    `by_kind: {aiortc: {...}}` overrides the expectation when `kind` (the peer's
    implementation) matches: nomination strategies differ between stacks. `kind`
    may be a list (say the caller's kind and "callee-<kind>"): the overrides of
    every listed kind apply, later ones over earlier ones.
    """
    by_kind = p.get(BY_KIND) or {}
    for kind in _as_list(p.get("kind") or []):
        if kind in by_kind:
            p = {**p, **by_kind[kind]}
    snap = _snapshot(snaps, p)
    pair = snap["stats"].get("ice", {}).get("selected_pair")
    ev = [f"{p['peer']} after step {snap['step']}: {_pair_text(pair)}"]
    if not pair:
        return Outcome(False, f"{p['peer']} selected no candidate pair", ev)
    problems = []
    for side in ("local", "remote"):
        if side in p and pair.get(side, {}).get("type") not in _as_list(p[side]):
            problems.append(
                f"{side} is {pair.get(side, {}).get('type')}, expected {'/'.join(_as_list(p[side]))}"
            )
    if "either" in p:
        types = {pair.get("local", {}).get("type"), pair.get("remote", {}).get("type")}
        if not types & set(_as_list(p["either"])):
            problems.append(f"neither side is {'/'.join(_as_list(p['either']))}")
    if "relay_protocol" in p:
        proto = pair.get("local", {}).get("relay_protocol") or pair.get("local", {}).get("protocol")
        if proto != p["relay_protocol"]:
            problems.append(f"relay protocol is {proto}, expected {p['relay_protocol']}")
    if "local_address" in p and pair.get("local", {}).get("address") != p["local_address"]:
        problems.append(
            f"local address is {pair.get('local', {}).get('address')}, expected {p['local_address']}"
        )
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    return Outcome(True, f"{p['peer']} selected {_pair_text(pair)}", ev)


@peer_check("peer_received_tone", "hz", "tolerance_hz", "min_level_dbfs")
def peer_received_tone(snaps: PeerSnapshots, p: dict[str, Any]) -> Outcome:
    """The peer decoded audio whose dominant frequency is the far end's tone."""
    if "hz" not in p:
        raise CheckError("peer_received_tone needs `hz`")
    snap = _snapshot(snaps, p)
    audio = snap["stats"].get("media", {}).get("audio", {})
    tone, level = audio.get("tone_hz"), audio.get("level")
    tol = float(p.get("tolerance_hz", 15))
    ev = [
        f"{p['peer']} after step {snap['step']}: tone {tone} Hz, level {level} dBFS, "
        f"{audio.get('packets_received')} packets received"
    ]
    if tone is None:
        return Outcome(False, f"{p['peer']} received no audio it could measure", ev)
    if abs(float(tone) - float(p["hz"])) > tol:
        return Outcome(False, f"{p['peer']} heard {tone} Hz, expected {p['hz']} ± {tol} Hz", ev)
    if "min_level_dbfs" in p and (level is None or level < float(p["min_level_dbfs"])):
        return Outcome(
            False, f"{p['peer']} heard the tone at {level} dBFS, below {p['min_level_dbfs']}", ev
        )
    return Outcome(True, f"{p['peer']} heard {tone} Hz", ev)


@peer_check("peer_media", "min_packets_received", "min_packets_sent")
def peer_media(snaps: PeerSnapshots, p: dict[str, Any]) -> Outcome:
    """Audio packet counters as the peer reports them, at least min_packets_received and
    min_packets_sent (neither given: at least one each way)."""
    snap = _snapshot(snaps, p)
    audio = snap["stats"].get("media", {}).get("audio", {})
    ev = [f"{p['peer']} after step {snap['step']}: {audio}"]
    given = "min_packets_received" in p or "min_packets_sent" in p
    for key in ("packets_received", "packets_sent"):
        want = p.get(f"min_{key}", None if given else 1)
        if want is not None and (audio.get(key) or 0) < want:
            return Outcome(
                False, f"{p['peer']} {key.replace('_', ' ')} {audio.get(key)} < {want}", ev
            )
    return Outcome(
        True,
        f"{p['peer']} sent {audio.get('packets_sent')}, received {audio.get('packets_received')}",
        ev,
    )


from harness.assertions import jsep as _jsep  # noqa: E402, F401  (registers the JSEP checks)
