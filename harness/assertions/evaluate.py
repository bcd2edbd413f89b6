"""Run a scenario's `expect:` list against the captures of its run.

Each expectation runs on one capture: the one its `capture:` parameter names
(`node.iface`, or `node` captured on one interface), else the run's first capture. Sessions are built once
per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.analyzer import analyze_file
from harness.analysis.model import wall_clock
from harness.analysis.session import Session, build
from harness.assertions.registry import CheckError, Outcome, run_check
from harness.capture import files_at


class Captures:
    """Lazily analysed captures, chosen by capture point."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._sessions: dict[Path, Session] = {}

    def pick(self, point: str | None) -> Path:
        if not self.files:
            raise CheckError("the run left no capture to check")
        if point is None:
            return self.files[0]
        found = files_at(self.files, point)
        if len(found) != 1:
            raise CheckError(
                f"capture {point!r} names {len(found)} of {[f.name for f in self.files]}"
            )
        return found[0]

    def session(self, path: Path) -> Session:
        if path not in self._sessions:
            self._sessions[path] = build(analyze_file(path))
        return self._sessions[path]


def check_file(path: Path | str, name: str, **params: Any) -> Outcome:
    """Python use: `check_file("x.pcap", "dtls_handshakes", max=1)`."""
    return run_check(name, build(analyze_file(path)), params)


def run_expects(
    expects: list[tuple[str, dict[str, Any], int | None]], files: list[Path]
) -> list[tuple[str, dict[str, Any], int | None, Outcome, str]]:
    """(name, params, line, outcome, capture file name) per expectation, in order."""
    caps = Captures(files)
    out = []
    for name, params, line in expects:
        where, header = "", "capture: -"
        try:
            path = caps.pick(params.get("capture"))
            where = path.name
            session = caps.session(path)
            header = f"capture: {where}" + (
                f" (t=0 at {wall_clock(session.analysis.start_time)})"
                if session.analysis.packets
                else ""
            )
            outcome = run_check(name, session, params)
        except CheckError as exc:
            outcome = Outcome(False, f"bad expectation: {exc}")
        outcome.evidence.insert(0, header)
        out.append((name, params, line, outcome, where))
    return out


def evaluate(scenario: Any, result: Any) -> list[Any]:
    """The scenario runner's entry: CheckResults for `scenario.expects` over `result.pcaps`."""
    from harness.scenario.result import CheckResult

    files = [Path(p) for p in result.pcaps]
    return [
        CheckResult(name, o.passed, o.message, o.evidence, dict(params), line, o.rfc)
        for name, params, line, o, _ in run_expects(list(scenario.expects), files)
    ]
