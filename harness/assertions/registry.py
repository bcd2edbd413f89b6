"""A registry of named checks over a session model, callable from YAML `expect:` and Python.

A check takes the `Session` and its parameters and returns an `Outcome` whose
evidence lines say where to look: frame numbers, times, addresses, SDP lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.lazy import LazyRegistry

if TYPE_CHECKING:
    from harness.analysis.session import Session


@dataclass
class Outcome:
    """The verdict of one check, with the evidence that supports it."""

    passed: bool
    message: str
    evidence: list[str] = field(default_factory=list)
    rfc: str = ""
    windows: list[tuple[float, float]] = field(default_factory=list)
    """The spans (Unix times, from the capture's clock) of what a failed check found wrong,
    such as its media gaps: a scenario run says which of them the host stalled in."""


class CheckError(ValueError):
    """A check was named or parameterised wrongly (a scenario mistake, not a failure).

    `path`: where in the check's parameters, when deeper than a top-level key
    (`("cells", "nat-chromium", "stopped")`), for the scenario's error to name its line."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


CheckFn = Callable[["Session", dict[str, Any]], Outcome]


@dataclass(frozen=True)
class Choice:
    """A parameter that takes one of a few values (with `many`, also a list of them).

    A value outside them is a scenario mistake said before the run: a check reading a
    misspelt `not_type: rellay` or `profile: webrct` would otherwise judge by a default."""

    values: tuple[str | bool, ...]
    many: bool = False
    pattern: tuple[str, str] | None = None
    """(regex, how to say it): text that also matches, such as an unnamed STUN method."""

    def allows(self, value: Any) -> bool:
        if self.many and isinstance(value, list):
            return bool(value) and all(self.allows(v) for v in value)
        if self.pattern and isinstance(value, str) and re.fullmatch(self.pattern[0], value):
            return True
        return any(type(value) is type(v) and value == v for v in self.values)

    def __str__(self) -> str:
        names = ", ".join(str(v).lower() if isinstance(v, bool) else v for v in self.values)
        if not names and self.pattern:  # text of a shape, no named values
            return self.pattern[1]
        names += f" or {self.pattern[1]}" if self.pattern else ""
        return f"one of {names}" + (" (or a list of them)" if self.many else "")


@dataclass(frozen=True)
class Regex:
    """A parameter that is a regular expression (Python's `re`, multiline): one that does
    not compile is a scenario mistake said before the run, not a failure after it."""

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return f"is a regex, not {type(value).__name__}"
        try:
            re.compile(value, re.M)
        except re.error as exc:
            return f"is a bad regex {value!r}: {exc}"
        return None

    def __str__(self) -> str:
        return "a regex"


ParamSpec = type | tuple[type, ...] | Choice | Regex
NUM = (int, float)
YES_NO_EITHER = Choice((True, False, "either"))
"""true, false, or either: an intermittent matrix cell, reported but not judged on it."""
IP_ADDRESS = Choice((), pattern=(r"[0-9a-fA-F.:]+", "an IP address"))
ADDRESS_PREFIX = Choice((), pattern=(r"[0-9a-fA-F.:\[\]]+", "an address or address:port prefix"))
"""The start of an address as the analyser prints it (a node's name, matching nothing,
would make a check about who sent what pass whatever was sent)."""


@dataclass
class Check:
    name: str
    fn: CheckFn
    params: dict[str, ParamSpec]
    doc: str
    required: tuple[str, ...] = ()
    """Parameters it cannot run without (said when a scenario is validated, not mid-run)."""


_A = "harness.assertions."
#: Every built-in wire check and the module that defines it (imported when the check is used).
CHECK_MODULES: dict[str, str] = {
    **dict.fromkeys(
        [
            "dtls_fingerprint_matches_sdp",
            "dtls_handshakes",
            "ice_connected",
            "ice_integrity",
            "ice_reconnect_time",
            "ice_restarts",
            "jitter",
            "max_media_gap",
            "rtp_flowing",
            "rtp_loss",
            "sdp_conformance",
            "selected_pair_type",
            "sip_dialog_state",
            "sip_reinvite",
            "stun_errors",
        ],
        _A + "checks",
    ),
    "sdp_direction_obeyed": _A + "direction",
    "telephone_events": _A + "dtmf",
    "ice_not_connected": _A + "negative",
    "no_rtp": _A + "negative",
    "recovery": _A + "recovery",
    "restart_media_stop": _A + "restart",
    "restart_peer_ice": _A + "restart",
    "sdp_attribute": _A + "sdp_attrs",
    "sip_messages": _A + "sipmsg",
    "tls_connections": _A + "tls",
    "rtp_through": _A + "turn",
    "turn_relayed_address": _A + "turn",
}
REGISTRY: LazyRegistry[Check] = LazyRegistry("check", CHECK_MODULES)


def check(
    name: str, *, required: tuple[str, ...] = (), **params: ParamSpec
) -> Callable[[CheckFn], CheckFn]:
    """Register a check under `name` with the parameters it accepts and their types;
    `required`: those it cannot run without."""
    assert set(required) <= set(params), f"{name}: required {required} not among its parameters"

    def wrap(fn: CheckFn) -> CheckFn:
        REGISTRY[name] = Check(name, fn, params, (fn.__doc__ or "").strip(), required)
        return fn

    return wrap


def load_checks() -> None:
    """Import every module of built-in checks: each registers its checks on import."""
    REGISTRY.load_all()


def run_check(name: str, session: Session, params: dict[str, Any] | None = None) -> Outcome:
    """Validate parameters and run one check."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise CheckError(f"unknown check {name!r}; known: {', '.join(sorted(REGISTRY))}")
    params = dict(params or {})
    params.pop("capture", None)
    check_params(name, params)
    return spec.fn(session, params)


def check_params(name: str, params: dict[str, Any]) -> None:
    """Raise CheckError for a parameter the check does not take, of the wrong type, or one
    it needs that is missing; a check that takes `cells` has each cell's overrides checked
    alike, and what it needs is looked for after its `cell`'s overrides (`for_cell`)."""
    spec = REGISTRY[name]
    for key, value in params.items():
        _check_value(spec, key, value, (key,))
    if "cells" in spec.params and "cells" in params:
        for cell, overrides in _cells(params).items():
            for key, value in overrides.items():
                path = ("cells", cell, key)
                if key in ("cell", "cells"):
                    raise CheckError(f"{name}: a cell's overrides cannot set {key}", path)
                _check_value(spec, key, value, path)
    merged = for_cell(params) if "cells" in spec.params else params
    for key in spec.required:
        if key not in merged:
            raise CheckError(f"{name} needs `{key}`")


def _check_value(spec: Check, key: str, value: Any, path: tuple[str, ...]) -> None:
    where = ".".join(path)
    if key not in spec.params:
        raise CheckError(
            f"{spec.name}: unknown parameter {where!r}; takes {', '.join(spec.params)}", path
        )
    want = spec.params[key]
    if isinstance(want, Choice):
        if not want.allows(value):
            raise CheckError(f"{spec.name}: {where} is {want}, not {value!r}", path)
        return
    if isinstance(want, Regex):
        bad = want.problem(value)
        if bad:
            raise CheckError(f"{spec.name}: {where} {bad}", path)
        return
    if isinstance(value, bool) and want in (int, float, (int, float)):
        raise CheckError(f"{spec.name}: {where} must be a number, not {value!r}", path)
    if not isinstance(value, want):
        raise CheckError(f"{spec.name}: {where} has the wrong type ({type(value).__name__})", path)


def _cells(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cells = p.get("cells") or {}
    if not isinstance(cells, dict) or not all(isinstance(v, dict) for v in cells.values()):
        raise CheckError("`cells` maps a cell name to a mapping of parameters", ("cells",))
    return cells


def for_cell(p: dict[str, Any]) -> dict[str, Any]:
    """`cells: {NAME: {param: value}}` overrides the parameters for the matrix cell `cell`.

    A matrix shares one `expect:` list; the symptoms differ per cell (only the report's
    cells fail), so each names its cell (`cell: ${a}-${b}`) and the overrides say what
    that cell must show.
    """
    return {**p, **_cells(p).get(p.get("cell", ""), {})}


def limits(p: Mapping[str, Any], default: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The count bounds a check was given (min, max, count), else `default`: at least one
    (a count check with no bounds would pass whatever it counted)."""
    given = {k: p[k] for k in ("min", "max", "count") if k in p}
    return given or dict(default if default is not None else {"min": 1})


def unseen(bound: Mapping[str, Any], seen: bool, what: str) -> str | None:
    """Why a count that may be zero proves nothing here: the capture holds no `what` at all,
    so a wrong capture point or a dead link would pass the expectation (else None)."""
    if seen or bounds(0, bound) is not None:
        return None
    return f"no {what} at all in the capture: cannot tell none happened from none captured"


def bounds(value: float, params: Mapping[str, Any], lo: str = "min", hi: str = "max") -> str | None:
    """Why `value` is outside params[min]..params[max] (and params['count']), or None."""
    if "count" in params and value != params["count"]:
        return f"{value} != {params['count']}"
    if lo in params and value < params[lo]:
        return f"{value} < {lo} {params[lo]}"
    if hi in params and value > params[hi]:
        return f"{value} > {hi} {params[hi]}"
    return None
