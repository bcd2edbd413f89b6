"""The verdict of a run: one function decides it; the CLI, pytest and every report use it.

A known failure is a signature (harness/config/knownfailure.py): the
run counts as the bug reproducing only if exactly the named checks and steps
fail the way the signature says. Any other failure is a FAIL saying what was
expected and what was seen; a pass is reported as "possibly fixed" (strict, as
pytest's strict xfail), unless the bug is intermittent (a failure-rate band),
whose rate is judged over repeated runs instead.

A component or peer under test can also show one of its own documented intermittent bugs
in its log (harness/logfinding.py; Janus's SIP stack's ACK race, aioice's nomination
race): a failed run whose log proves one, and whose every failure is one the race may
cause (its `may_fail`; Janus's ACK race breaks the whole call, so any), is an XFAIL naming
it; a run error (the harness's own failure) is never excused, and a log finding without
that proof is only named in the FAIL's reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config.knownfailure import KnownFailure
    from harness.scenario.result import RunResult

from harness.scenario.result import check_label

PASS, FAIL, XFAIL, XPASS, UNSUPPORTED = "pass", "fail", "xfail", "xpass", "unsupported"
LABELS = {
    PASS: "PASS",
    FAIL: "FAIL",
    XFAIL: "XFAIL",
    XPASS: "POSSIBLY FIXED",
    UNSUPPORTED: "UNSUPPORTED",
}
COLOURS = {PASS: "green", FAIL: "red", XFAIL: "yellow", XPASS: "bold red", UNSUPPORTED: "cyan"}
"""Terminal colours (rich markup) of each verdict."""
BAD = (FAIL, XPASS)
"""Verdicts that fail a suite (a possibly fixed known failure must be looked at)."""


@dataclass
class Verdict:
    state: str  # PASS, FAIL, XFAIL, XPASS or UNSUPPORTED
    reason: str = ""
    race: bool = False
    """An XFAIL for a component's known race (RunResult.races), not the scenario's bug."""

    @property
    def bad(self) -> bool:
        return self.state in BAD


def _failures(r: RunResult) -> list[tuple[str, str, str]]:
    """(kind, identity, text) of everything that went wrong in a run."""
    out: list[tuple[str, str, str]] = []
    if r.error:
        out.append(("error", "error", r.error))
    for s in r.steps:
        if s.status == "failed":
            out.append(("step", f"{s.index + 1}:{s.kind}", s.error))
    taken: set[str] = set()
    for c in r.checks:
        label = check_label(c, taken)
        if not c.passed:
            kind = "broken" if c.message.startswith("bad expectation") else "check"
            out.append((kind, f"{c.name}|{label}", "\n".join([c.message, *c.evidence])))
    return out


def _names(kind: str, ident: str) -> list[str]:
    """The names a signature may give a failure: a check's name and label, a step's number
    and kind (`_failures`' identities)."""
    return ident.split("|") if kind == "check" else ident.split(":")


def _first(text: str) -> str:
    return text.strip().splitlines()[0][:160] if text.strip() else ""


def _describe(kf: KnownFailure) -> str:
    parts = [f"check {k}" + (f" /{v}/" if v else "") for k, v in kf.checks.items()]
    parts += [f"step {k}" + (f" /{v}/" if v else "") for k, v in kf.steps.items()]
    if kf.error:
        parts.append(f"error /{kf.error}/")
    return ", ".join(parts)


def match(kf: KnownFailure, r: RunResult) -> str | None:
    """Why the run's failures are not the known failure's signature, or None if they are."""
    got = _failures(r)
    wanted_checks = dict(kf.checks)
    wanted_steps = dict(kf.steps)
    unexpected: list[str] = []
    seen: set[str] = set()
    for kind, ident, text in got:
        if kind == "error":
            if kf.error and re.search(kf.error, text):
                seen.add("error")
            else:
                unexpected.append(f"error: {_first(text)}")
            continue
        if kind == "broken":
            unexpected.append(f"check {ident.split('|')[1]}: {_first(text)}")
            continue
        names = _names(kind, ident)
        table = wanted_checks if kind == "check" else wanted_steps
        key = next((n for n in names if n in table), None)
        if key is None and kind == "check":
            optional = next((n for n in names if n in kf.may_fail), None)
            if optional is not None:
                pattern = kf.may_fail[optional]
                if pattern and not re.search(pattern, text):
                    unexpected.append(
                        f"{kind} {names[-1]} failed without /{pattern}/: {_first(text)}"
                    )
                continue
        if key is None:
            unexpected.append(f"{kind} {names[-1]}: {_first(text)}")
            continue
        pattern = table[key]
        if pattern and not re.search(pattern, text):
            unexpected.append(f"{kind} {names[-1]} failed without /{pattern}/: {_first(text)}")
            continue
        seen.add(f"{kind}:{key}")
    missing = [f"check {k}" for k in wanted_checks if f"check:{k}" not in seen]
    missing += [f"step {k}" for k in wanted_steps if f"step:{k}" not in seen]
    if kf.error and "error" not in seen:
        missing.append(f"error /{kf.error}/")
    if not unexpected and not missing:
        return None
    bits = []
    if unexpected:
        bits.append("got " + "; ".join(unexpected))
    if missing:
        bits.append("did not fail: " + ", ".join(missing))
    return f"known failure did not match: expected {_describe(kf)}, " + "; ".join(bits)


def decide(r: RunResult, kf: KnownFailure | None = None) -> Verdict:
    """The verdict of one run, given the known failure it is marked with (if any)."""
    if r.skipped:
        return Verdict(UNSUPPORTED, r.skip_reason)
    failed = bool(_failures(r))
    if not failed:
        if kf is None:
            return Verdict(PASS)
        if kf.rate is not None:
            return Verdict(PASS, f"intermittent known failure did not show: {kf.reason}")
        return Verdict(
            XPASS,
            f"known failure passed, possibly fixed: update the scenario ({kf.reason})",
        )
    why: str | None = ""
    if kf is not None:
        why = match(kf, r)
        if why is None:
            return Verdict(XFAIL, f"known failure: {kf.reason}")
    if r.races and not r.error and all(_explained(f, r.races) for f in _failures(r)):
        named = "; ".join(f"{x['source']}: {x['text']}" for x in r.races)
        return Verdict(XFAIL, f"known race of a component or peer under test: {named}", race=True)
    return Verdict(FAIL, "; ".join(filter(None, [why, *r.log_findings])))


def _explained(failure: tuple[str, str, str], races: list[dict[str, Any]]) -> bool:
    """A step or check failure that one of the races may cause (a broken expectation or a
    run error never is)."""
    kind, ident, text = failure
    if kind not in ("step", "check"):
        return False
    names = _names(kind, ident)
    for race in races:
        may_fail = race.get("may_fail")
        if may_fail is None:
            return True
        for name in names:
            if name in may_fail:
                pattern = may_fail[name]
                if pattern is None or re.search(pattern, text):
                    return True
    return False


def judge_rate(kf: KnownFailure | None, runs: Sequence[RunResult]) -> Verdict | None:
    """The failure-rate band of an intermittent known failure over repeated runs, or None
    when there is no band or too few runs to judge it."""
    if kf is None or kf.rate is None:
        return None
    # a run a component's race decided says nothing of the scenario's own bug
    counted = [r for r in runs if r.verdict in (PASS, XFAIL) and not r.race_verdict]
    if len(counted) < kf.rate.min_runs:
        return None
    rate = sum(r.verdict == XFAIL for r in counted) / len(counted)
    band = f"{kf.rate.min:.0%}-{kf.rate.max:.0%}"
    if kf.rate.min <= rate <= kf.rate.max:
        return Verdict(XFAIL, f"failure rate {rate:.0%} of {len(counted)} runs within {band}")
    fixed = " (possibly fixed)" if rate < kf.rate.min else ""
    return Verdict(
        FAIL, f"failure rate {rate:.0%} of {len(counted)} runs outside {band}{fixed}: {kf.reason}"
    )


def verdict_of(r: RunResult) -> Verdict:
    """The recorded verdict (older results without one: decided from their contents)."""
    if r.verdict:
        return Verdict(r.verdict, r.verdict_reason)
    if r.skipped:
        return Verdict(UNSUPPORTED, r.skip_reason)
    if r.passed:
        return Verdict(PASS)
    return Verdict(XFAIL if r.known_failure else FAIL, "")


def counts(results: Sequence[Any]) -> dict[str, int]:
    out = dict.fromkeys(LABELS, 0)
    for r in results:
        out[verdict_of(r).state] += 1
    return out
