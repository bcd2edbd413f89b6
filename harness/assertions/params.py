"""What a check's parameters may be, and how a count is bounded.

A parameter is a type (or types), a `Choice` of values (or text of a shape), or a
`Regex`; `check_params` (registry.py) refuses anything else at the scenario's file and
line before a lab exists. A matrix shares its `expect:` list between cells: `for_cell`
applies a cell's overrides. Count checks take their bounds through `limits` and `unseen`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class CheckError(ValueError):
    """A check was named or parameterised wrongly (a scenario mistake, not a failure).

    `path`: where in the check's parameters, when deeper than a top-level key
    (`("cells", "nat-chromium", "stopped")`), for the scenario's error to name its line."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


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


def refuse(check: str, want: ParamSpec, value: Any, path: tuple[str, ...]) -> None:
    """Raise CheckError, naming the parameter by its `path`, when `value` is not what
    parameter `want` takes."""
    where = ".".join(path)
    if isinstance(want, Choice):
        if not want.allows(value):
            raise CheckError(f"{check}: {where} is {want}, not {value!r}", path)
        return
    if isinstance(want, Regex):
        bad = want.problem(value)
        if bad:
            raise CheckError(f"{check}: {where} {bad}", path)
        return
    if isinstance(value, bool) and want in (int, float, (int, float)):
        raise CheckError(f"{check}: {where} must be a number, not {value!r}", path)
    if not isinstance(value, want):
        raise CheckError(f"{check}: {where} has the wrong type ({type(value).__name__})", path)


def cell_overrides(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`cells: {NAME: {param: value}}`, each cell's overrides (checked to be mappings)."""
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
    return {**p, **cell_overrides(p).get(p.get("cell", ""), {})}


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
