"""Known failures: a reproduced bug of the component under test, and its signature.

The signature says what the bug makes fail (checks, steps, the run's error), and
optionally how (a regex over the evidence) and how often (a failure-rate band);
harness/scenario/verdict.py compares each run with it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from harness.config.scenario import Scenario
    from harness.config.yamlsource import YamlSource


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FailureRate(Strict):
    """For an intermittent bug: the failure rate over `--repeat` runs must lie in [min, max]."""

    min: float = Field(ge=0, le=1)
    max: float = Field(ge=0, le=1)
    min_runs: int = Field(default=5, ge=1)
    """Fewer runs than this and the rate is not judged (each run is still matched)."""

    @model_validator(mode="after")
    def _ordered(self) -> FailureRate:
        if self.min > self.max:
            raise ValueError("rate.min is above rate.max")
        return self


class KnownFailure(Strict):
    """A reproduced bug of the component under test, and the signature it must show.

    The run counts as the known failure only if exactly the named checks and
    steps fail (each one's message, evidence or error matching its pattern, if
    given); any other failure is a FAIL (harness/scenario/verdict.py).
    """

    reason: str
    checks: dict[str, str | None] = {}
    """Check (name, or `name[peer]` label) -> regex its message or evidence must match (or null)."""
    steps: dict[str, str | None] = {}
    """Step (kind, or 1-based number) -> regex its error must match (or null)."""
    may_fail: dict[str, str | None] = {}
    """Checks the bug may also fail, depending on timing (a symptom that shows in some runs
    only), each with the regex its message or evidence must then match; they are never
    required to fail."""
    error: str | None = None
    """Regex the run's error must match when the bug makes the run itself fail."""
    rate: FailureRate | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_bare_reason(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError(
                "a known failure is a mapping: {reason: ..., checks: {CHECK: REGEX}} "
                "(or steps/error): a bare reason would excuse any failure"
            )
        return v

    @field_validator("checks", "steps", "may_fail", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {str(x): None for x in v}
        if isinstance(v, dict):
            return {str(k): x for k, x in v.items()}
        return v

    @field_validator("checks", "steps", "may_fail")
    @classmethod
    def _regexes(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        for pattern in v.values():
            _compile(pattern)
        return v

    @field_validator("error")
    @classmethod
    def _error_regex(cls, v: str | None) -> str | None:
        _compile(v)
        return v

    @model_validator(mode="after")
    def _says_what(self) -> KnownFailure:
        if not (self.checks or self.steps or self.error):
            raise ValueError(
                "a known failure names what must go wrong: `checks`, `steps` or `error`"
            )
        return self


def _compile(pattern: str | None) -> None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regex {pattern!r}: {exc}") from None


def check_signature(sc: Scenario, src: YamlSource, where: tuple[str | int, ...]) -> None:
    """A known failure may only name checks and steps the scenario has."""
    kf = sc.spec.known_failure
    assert kf is not None
    labels = {name for name, _, _ in sc.expects}
    for name, params, _ in sc.expects:
        who = params.get("peer") or params.get("component")
        if isinstance(who, str):
            labels.add(f"{name}[{who}]")
    for section, key in [("checks", k) for k in kf.checks] + [("may_fail", k) for k in kf.may_fail]:
        if key not in labels:
            raise src.error(
                where + (section, key),
                f"no expectation {key!r} (expect has: {', '.join(sorted(labels)) or 'none'})",
            )
    kinds = {s.kind for s in sc.steps}
    for key in kf.steps:
        ok = key in kinds or (key.isdigit() and 1 <= int(key) <= len(sc.steps))
        if not ok:
            raise src.error(
                where + ("steps", key),
                f"no step {key!r} (a step kind of this scenario or a number 1-{len(sc.steps)})",
            )
