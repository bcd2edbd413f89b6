"""A registry of named checks over a session model, callable from YAML `expect:` and Python.

A check takes the `Session` and its parameters and returns an `Outcome` whose
evidence lines say where to look: frame numbers, times, addresses, SDP lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.assertions.params import CheckError, ParamSpec, cell_overrides, for_cell, refuse
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


CheckFn = Callable[["Session", dict[str, Any]], Outcome]


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
    """Raise CheckError for a parameter the check does not take, of the wrong type or outside
    its choices, or one it needs that is missing; a check that takes `cells` has each cell's overrides checked
    alike, and what it needs is looked for after its `cell`'s overrides (`for_cell`)."""
    spec = REGISTRY[name]
    for key, value in params.items():
        _check_value(spec, key, value, (key,))
    if "cells" in spec.params and "cells" in params:
        for cell, overrides in cell_overrides(params).items():
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
    if key not in spec.params:
        raise CheckError(
            f"{spec.name}: unknown parameter {'.'.join(path)!r}; takes {', '.join(spec.params)}",
            path,
        )
    refuse(spec.name, spec.params[key], value, path)
