"""A registry of named checks over a session model, callable from YAML `expect:` and Python.

A check takes the `Session` and its parameters and returns an `Outcome` whose
evidence lines say where to look: frame numbers, times, addresses, SDP lines.
"""

from __future__ import annotations

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
    """A check was named or parameterised wrongly (a scenario mistake, not a failure)."""


CheckFn = Callable[["Session", dict[str, Any]], Outcome]


@dataclass
class Check:
    name: str
    fn: CheckFn
    params: dict[str, type | tuple[type, ...]]
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
    name: str, *, required: tuple[str, ...] = (), **params: type | tuple[type, ...]
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
    it needs that is missing."""
    spec = REGISTRY[name]
    for key, value in params.items():
        if key not in spec.params:
            raise CheckError(f"{name}: unknown parameter {key!r}; takes {', '.join(spec.params)}")
        want = spec.params[key]
        if isinstance(value, bool) and want in (int, float, (int, float)):
            raise CheckError(f"{name}: {key} must be a number, not {value!r}")
        if not isinstance(value, want):
            raise CheckError(f"{name}: {key} has the wrong type ({type(value).__name__})")
    for key in spec.required:
        if key not in params:
            raise CheckError(f"{name} needs `{key}`")


def bounds(value: float, params: Mapping[str, Any], lo: str = "min", hi: str = "max") -> str | None:
    """Why `value` is outside params[min]..params[max] (and params['count']), or None."""
    if "count" in params and value != params["count"]:
        return f"{value} != {params['count']}"
    if lo in params and value < params[lo]:
        return f"{value} < {lo} {params[lo]}"
    if hi in params and value > params[hi]:
        return f"{value} > {hi} {params[hi]}"
    return None
