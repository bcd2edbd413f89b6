"""Gateway steps: WebRTC peers and SIP extensions calling each other through Janus's SIP
plugin or Kamailio + rtpengine. Each module registers its steps when the step registry
(harness/actions/registry.py) loads it for a step kind a scenario uses."""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "JanusRestartIce": "harness.actions.gateway.janus_restart",
    "invite_once": "harness.actions.gateway.sip_raw",
}


def __getattr__(name: str) -> Any:
    """`from harness.actions.gateway import X` without importing every gateway module."""
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["JanusRestartIce", "invite_once"]
