"""Registry of step kinds: a step is `- KIND: {args}` in scenario YAML."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from harness.lazy import LazyRegistry

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext

_GW = "harness.actions.gateway."
#: Every built-in step kind and the module that defines it (imported when the kind is used).
STEP_MODULES: dict[str, str] = {
    **dict.fromkeys(
        ["call", "hangup", "restart_ice", "send_data", "wait"], "harness.actions.steps"
    ),
    "jsep": "harness.actions.jsep",
    **dict.fromkeys(
        ["gateway_restart", "handoff", "interface", "nat_rebind", "route", "turn_allocation_loss"],
        "harness.actions.mobility",
    ),
    "audio_heard": _GW + "audio",
    **dict.fromkeys(["sip_dial", "sip_ext_command", "sip_send_message"], _GW + "extension"),
    "peer_dtmf": _GW + "incall",
    **dict.fromkeys(
        ["janus_answer", "janus_call", "janus_hangup", "janus_register"], _GW + "janus_calls"
    ),
    **dict.fromkeys(
        ["janus_dtmf_info", "janus_event", "janus_hold", "janus_message", "janus_transfer"],
        _GW + "janus_features",
    ),
    "janus_restart_ice": _GW + "janus_restart",
    "janus_takeover": _GW + "janus_takeover",
    "sip_offer_webrtc_sdp": _GW + "sip_offer",
    **dict.fromkeys(["rtt_bridge", "sip_call_from", "sip_call_result"], _GW + "sip_uac"),
    **dict.fromkeys(
        ["sip_ws_answer", "sip_ws_call", "sip_ws_hangup", "sip_ws_register"], _GW + "sip_ws"
    ),
}
ACTIONS: LazyRegistry[type[Action]] = LazyRegistry("step", STEP_MODULES)
NODE_FIELDS = ("node", "host", "router", "api_via")
IFACE_FIELDS = ("iface", "from_iface", "to_iface", "via")


class MustFail(BaseModel):
    """A step whose failure is the expected outcome, and what that failure must say."""

    model_config = ConfigDict(extra="forbid")
    error: str
    """Regex the step's error must match (e.g. the state the peers reached)."""

    @model_validator(mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return {"error": v} if isinstance(v, str) else v

    @field_validator("error")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"bad regex {v!r}: {exc}") from None
        return v


class Action(BaseModel):
    """Arguments of one step; subclasses implement `execute`."""

    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str]
    ends_call: ClassVar[bool] = False
    """The step ends a call: the runner lets apps finish an ICE restart in flight first."""
    timeout: float = 30.0
    """Seconds the step may take before it fails."""
    must_fail: MustFail | None = None
    """The step must fail, with an error matching `must_fail.error` (a negative expectation)."""

    def peers(self) -> list[str]:
        """Peer names this step refers to (checked against the scenario before start)."""
        return [v for k, v in self.__dict__.items() if k in ("peer", "caller", "callee") and v]

    def components(self) -> list[str]:
        return [v for k, v in self.__dict__.items() if k == "component" and v]

    def nodes(self) -> list[str]:
        """Topology nodes this step names (checked before start)."""
        return [v for k, v in self.__dict__.items() if k in NODE_FIELDS and isinstance(v, str)]

    def routers(self) -> list[str]:
        return [v for k, v in self.__dict__.items() if k == "router" and isinstance(v, str)]

    def interfaces(self) -> list[tuple[str, str]]:
        """(node, interface) pairs this step names: `iface`-like fields of its `node`/`host`."""
        node = self.__dict__.get("node") or self.__dict__.get("host")
        if not isinstance(node, str):
            return []
        return [
            (node, v) for k, v in self.__dict__.items() if k in IFACE_FIELDS and isinstance(v, str)
        ]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        raise NotImplementedError(f"step {self.kind!r} has no runner yet")


def action(kind: str):  # type: ignore[no-untyped-def]
    """Class decorator registering a step kind."""

    def deco(cls: type[Action]) -> type[Action]:
        cls.kind = kind
        ACTIONS[kind] = cls
        return cls

    return deco
