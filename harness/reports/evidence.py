"""The few lines that explain a failed run, for the terminal and the top of a report."""

from __future__ import annotations

import re

from harness.scenario.result import RunResult

_LOG_BAD = re.compile(r"\b(error|fatal|failed|failure|refused|timeout|timed out|denied)\b", re.I)


def telling(result: RunResult, n: int = 3) -> list[str]:
    """Most telling first: the run's error, failed steps, failed checks with their best
    evidence line, then error lines from component and peer logs."""
    out: list[str] = []
    if result.error:
        out.append(f"error: {_first(result.error)}")
    for s in result.steps:
        if s.status == "failed":
            where = f" (line {s.line})" if s.line else ""
            out.append(f"step {s.index + 1} {s.kind}{where}: {_first(s.error)}")
    for c in result.checks:
        if not c.passed:
            rfc = f" [{c.rfc}]" if c.rfc else ""
            lines = [e for e in c.evidence if not e.startswith("capture:")]
            best = f" \u2014 {lines[0].strip()}" if lines else ""
            out.append(f"check {c.name}{rfc}: {c.message}{best}")
    for name, tail in result.logs.items():
        bad = [line for line in (tail or "").splitlines() if _LOG_BAD.search(line)]
        if bad:
            out.append(f"{name} log: {bad[-1].strip()}")
    return out[:n]


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
