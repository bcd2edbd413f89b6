"""Link conditions as users write them in topology and scenario YAML.

One `LinkConditions` describes one direction of one link. A `LinkSpec` is what
a topology's `links:` entry holds: a named profile, fields for both directions,
and `up` / `down` overrides, resolved in that order. Units are the ones people
use when they talk about links: milliseconds, percent, kbit/s, bytes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?\s*$", re.I)
_RATE_UNITS = {
    None: 1.0,
    "kbit": 1.0,
    "kbps": 1.0,
    "bit": 0.001,
    "bps": 0.001,
    "mbit": 1000.0,
    "mbps": 1000.0,
    "gbit": 1e6,
    "gbps": 1e6,
}


def parse_rate(value: Any) -> float | None:
    """A rate in kbit/s from a number (kbit/s) or a string like "1.5mbit" / "500kbit"."""
    if value is None or isinstance(value, int | float):
        return value
    m = _RATE.match(str(value))
    if not m:
        raise ValueError(f"bad rate {value!r}: use a number in kbit/s or e.g. '500kbit', '2mbit'")
    unit = m.group(2).lower() if m.group(2) else None
    return float(m.group(1)) * _RATE_UNITS[unit]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BurstLoss(Strict):
    """Gilbert-Elliott loss: a two-state Markov chain, evaluated once per packet.

    `p` is the chance (percent) to go from the good to the bad state, `r` from bad
    back to good; `loss_bad` / `loss_good` are the loss percentages in each state.
    The short form `{loss: 5, burst: 3}` means 5 % average loss in bursts of 3
    packets on average (Gilbert model: loss_bad 100, r = 1/burst).
    """

    p: float = Field(ge=0, le=100)
    r: float = Field(gt=0, le=100)
    loss_bad: float = Field(default=100.0, ge=0, le=100)
    loss_good: float = Field(default=0.0, ge=0, le=100)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("loss" in data or "burst" in data):
            data = dict(data)
            loss = float(data.pop("loss", 0)) / 100
            burst = float(data.pop("burst", 1))
            if not 0 <= loss < 1 or burst < 1:
                raise ValueError("burst loss short form needs 0 <= loss < 100 and burst >= 1")
            r = 1 / burst
            data.setdefault("r", 100 * r)
            data.setdefault("p", 100 * loss * r / (1 - loss))
        return data

    @property
    def mean_loss(self) -> float:
        """Long-run loss in percent."""
        pi_bad = self.p / (self.p + self.r)
        return pi_bad * self.loss_bad + (1 - pi_bad) * self.loss_good


class LinkConditions(Strict):
    """What one direction of a link does to packets. The default is a perfect link."""

    delay: float = Field(default=0.0, ge=0, le=60_000)
    """One-way delay in ms."""
    jitter: float = Field(default=0.0, ge=0, le=10_000)
    """Standard deviation (ms) of a normal variation added to `delay`, cut at 0."""
    reorder: bool = False
    """Let jitter reorder packets. Off: a packet never leaves before the one ahead of it
    (libwebrtc SimulatedNetwork's default), so jitter adds delay rather than reordering."""
    loss: float = Field(default=0.0, ge=0, le=100)
    """Independent random loss, percent."""
    burst_loss: BurstLoss | None = None
    duplicate: float = Field(default=0.0, ge=0, le=100)
    """Percent of packets delivered twice."""
    rate: float | None = Field(default=None, gt=0)
    """Bottleneck rate in kbit/s (strings like '2mbit' accepted); None: unlimited."""
    queue: int = Field(default=100, ge=1, le=100_000)
    """Packets that may wait for the bottleneck before new ones are dropped (tail drop)."""
    mtu: int | None = Field(default=None, ge=68, le=65535)
    """Largest IP packet (bytes) the link carries; bigger ones are dropped silently."""
    blackout: bool = False
    """Drop everything."""

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, v: Any) -> float | None:
        return parse_rate(v)

    @property
    def is_perfect(self) -> bool:
        return self == PERFECT


PERFECT = LinkConditions()
CONDITION_FIELDS = tuple(LinkConditions.model_fields)
Engine = Literal["auto", "relay", "netem"]


class LinkSpec(LinkConditions):
    """Conditions for one link (node interface): profile, then both-direction fields,
    then `up` (from the node) and `down` (towards the node) overrides."""

    profile: str | None = None
    up: LinkConditions | None = None
    down: LinkConditions | None = None
    seed: int | None = None
    """Seed for loss, jitter and duplication draws; None: the run's seed."""
    engine: Engine = "auto"

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, v: str | None) -> str | None:
        if v is not None:
            from harness.conditions.profiles import profile_names

            if v not in profile_names():
                raise ValueError(f"unknown profile {v!r} (known: {', '.join(profile_names())})")
        return v

    @model_validator(mode="before")
    @classmethod
    def _profile_only(cls, data: Any) -> Any:
        """Accept `peer-a.eth0: 4g` as short for `{profile: 4g}`."""
        return {"profile": data} if isinstance(data, str) else data

    def resolve(self) -> tuple[LinkConditions, LinkConditions]:
        """The (up, down) conditions this spec means."""
        from harness.conditions.profiles import get_profile

        up: dict[str, Any] = {}
        down: dict[str, Any] = {}
        if self.profile:
            prof = get_profile(self.profile)
            up = prof.up.model_dump(exclude_defaults=True)
            down = prof.down.model_dump(exclude_defaults=True)
        both = {k: getattr(self, k) for k in self.model_fields_set if k in CONDITION_FIELDS}
        up.update(both)
        down.update(both)
        if self.up is not None:
            up.update({k: getattr(self.up, k) for k in self.up.model_fields_set})
        if self.down is not None:
            down.update({k: getattr(self.down, k) for k in self.down.model_fields_set})
        return LinkConditions(**up), LinkConditions(**down)


def conditions_from(value: Any) -> tuple[LinkConditions, LinkConditions]:
    """(up, down) from a profile name, a LinkSpec, or a LinkSpec-shaped mapping."""
    spec = value if isinstance(value, LinkSpec) else LinkSpec.model_validate(value)
    return spec.resolve()


PacketKind = Literal[
    "stun-binding",
    "turn-allocate",
    "turn-refresh",
    "turn-channelbind",
    "dtls-handshake",
    "rtp",
    "rtcp",
    "sip",
    "tcp",
]
Direction = Literal["up", "down", "both"]


class FaultMatch(Strict):
    """Which packets a fault hits. Classified by RFC 7983 first-byte demux, then light parsing."""

    kind: PacketKind
    message: Literal["request", "response", "any"] = "any"
    """STUN/TURN: requests, responses (success or error) or both; SIP: requests with `method`
    or responses whose CSeq names `method`."""
    ufrag: str | None = None
    """stun-binding only: USERNAME is "<ufrag>:<ufrag>"; matches either side."""
    method: str | None = None
    """sip only: e.g. INVITE, BYE, REGISTER (case-insensitive)."""
    status: int | None = Field(default=None, ge=100, le=699)
    """sip only: responses with this status code (e.g. 180, 200)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """tcp only (and optional for the others): source or destination port."""

    @model_validator(mode="after")
    def _fits_kind(self) -> FaultMatch:
        if self.ufrag is not None and self.kind != "stun-binding":
            raise ValueError("ufrag only applies to kind stun-binding")
        if self.method is not None and self.kind != "sip":
            raise ValueError("method only applies to kind sip")
        if self.status is not None and (self.kind != "sip" or self.message == "request"):
            raise ValueError("status only applies to kind sip responses")
        if self.kind == "tcp" and self.port is None:
            raise ValueError("kind tcp needs a port")
        return self


class Fault(Strict):
    """Drop, delay or hold back the packets of one class on a link, for a time window or a
    count. `hold` reorders on purpose: a held packet leaves right behind the next packet
    of class `until` in its direction (a 180 delivered after its 200), or after `delay` ms
    if none comes."""

    match: FaultMatch
    action: Literal["drop", "delay", "hold"] = "drop"
    delay: float = Field(default=0.0, ge=0, le=60_000)
    """Extra ms for action delay; for hold, the longest a packet is held."""
    until: FaultMatch | None = None
    """hold only: the class whose next packet releases the held ones, right behind it."""
    direction: Direction = "both"
    duration: float | None = Field(default=None, gt=0)
    """Seconds from when the fault starts; None: until cleared or `count` is used up."""
    count: int | None = Field(default=None, ge=1)
    """Packets to hit; None: every matching packet in the window."""

    @model_validator(mode="after")
    def _delay_needs_ms(self) -> Fault:
        if self.action in ("delay", "hold") and self.delay <= 0:
            raise ValueError(f"action {self.action} needs delay (ms) > 0")
        if (self.action == "hold") != (self.until is not None):
            raise ValueError("action hold needs until (the class that releases), and only it")
        return self
