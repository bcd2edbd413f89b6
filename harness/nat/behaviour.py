"""RFC 4787 NAT behaviour knobs and the named presets users know.

A preset is only a name for a combination of knobs; the lab builds the NAT
from the knobs, and the probe measures the knobs, so a preset can be checked
end to end.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Dependence(StrEnum):
    """How much of the remote endpoint a mapping or filter depends on (RFC 4787 4.1, 5)."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"


class NatBehaviour(BaseModel):
    """What a NAT does to UDP, as RFC 4787 describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    mapping: Dependence = Dependence.ENDPOINT_INDEPENDENT
    filtering: Dependence = Dependence.ADDRESS_AND_PORT_DEPENDENT
    port_preservation: bool = True
    hairpinning: bool = False
    udp_timeout: int = 120
    """Seconds an idle UDP mapping lives (RFC 4787 REQ-5 asks for >= 120)."""

    @classmethod
    def preset(cls, name: str) -> NatBehaviour:
        try:
            return cls(**PRESETS[name])
        except KeyError:
            raise ValueError(
                f"unknown NAT preset {name!r} (known: {', '.join(sorted(PRESETS))})"
            ) from None

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        """Accept `nat: symmetric` or `nat: {preset: symmetric, udp_timeout: 30}`."""
        if isinstance(data, str):
            data = {"preset": data}
        if isinstance(data, dict) and "preset" in data:
            data = dict(data)
            name = data.pop("preset")
            if name not in PRESETS:
                raise ValueError(
                    f"unknown NAT preset {name!r} (known: {', '.join(sorted(PRESETS))})"
                )
            data = {**PRESETS[name], **data}
        return data

    @property
    def label(self) -> str:
        for name, knobs in PRESETS.items():
            if NatBehaviour(**knobs).model_dump(exclude={"udp_timeout"}) == self.model_dump(
                exclude={"udp_timeout"}
            ):
                return name
        return "custom"


EIM = Dependence.ENDPOINT_INDEPENDENT.value
ADM = Dependence.ADDRESS_DEPENDENT.value
APDM = Dependence.ADDRESS_AND_PORT_DEPENDENT.value

PRESETS: dict[str, dict[str, Any]] = {
    # classic STUN (RFC 3489) names, mapped onto RFC 4787 knobs
    "full-cone": dict(mapping=EIM, filtering=EIM, port_preservation=True, hairpinning=True),
    "address-restricted": dict(
        mapping=EIM, filtering=ADM, port_preservation=True, hairpinning=True
    ),
    "port-restricted": dict(mapping=EIM, filtering=APDM, port_preservation=True, hairpinning=False),
    "symmetric": dict(mapping=APDM, filtering=APDM, port_preservation=False, hairpinning=False),
    "none": dict(enabled=False),
}
