"""Results of a scenario run: per step, per check, with the evidence behind each."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StepResult:
    index: int
    kind: str
    status: str  # passed / failed / skipped
    started_s: float  # since scenario start
    duration_s: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    line: int | None = None


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    evidence: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    rfc: str = ""


def check_label(c: CheckResult, taken: set[str]) -> str:
    """A check's name in reports and known-failure signatures: the check, the peer or
    component it is about, and a count if repeated (`taken` collects labels so far)."""
    who = c.params.get("peer") or c.params.get("component")
    base = f"{c.name}[{who}]" if isinstance(who, str) else c.name
    label, k = base, 2
    while label in taken:
        label, k = f"{base} #{k}", k + 1
    taken.add(label)
    return label


@dataclass
class RunResult:
    scenario: str
    file: str
    seed: int
    run_dir: Path
    attempt: int = 1
    passed: bool = False
    skipped: bool = False
    skip_reason: str = ""
    error: str = ""
    steps: list[StepResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    pcaps: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    known_failure: str | None = None
    """The reason of the known failure the scenario is marked with."""
    verdict: str = ""
    """pass / fail / xfail / xpass / unsupported (harness/scenario/verdict.py decides)."""
    verdict_reason: str = ""
    links: dict[str, Any] = field(default_factory=dict)
    """Per link: engine, seed and every condition change (to replay a failing run)."""
    peer_stats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    peer_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    capture_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per pcap, tcpdump's own counts: captured, received (by filter), dropped (by the kernel)."""
    host: dict[str, Any] = field(default_factory=dict)
    """What the machine did during the steps (scenario/stallwatch.py): its stalls, CPU
    pressure and steal time, and a one-line summary when it stalled."""
    t0: float = 0.0
    """Wall-clock time of the first step: step and peer-event times count from here."""
    log_findings: list[str] = field(default_factory=list)
    """What the components' and peers' logs say about the run without proving a known race
    (Component.log_findings, LaunchedPeer.log_findings), per line `name: text`."""
    races: list[dict[str, Any]] = field(default_factory=list)
    """The documented intermittent bugs of the components and peers under test that their
    logs prove happened (harness/logfinding.py's LogFinding.to_dict): a failed run whose
    failures are all their consequences is an XFAIL naming them (verdict.py)."""
    race_verdict: bool = False
    """The verdict is an XFAIL because of `races`, not the scenario's own known failure
    (verdict.judge_rate leaves such runs out of a failure rate)."""

    def failure_text(self) -> str:
        """What a person needs first: the failed step or checks and their evidence."""
        out = [f"scenario {self.scenario} ({self.file}) seed={self.seed} run_dir={self.run_dir}"]
        if self.verdict_reason:
            out.append(f"verdict: {self.verdict}: {self.verdict_reason}")
        if self.error:
            out.append(f"error: {self.error}")
        if self.host.get("summary"):
            out.append(f"host: {self.host['summary']}")
        out += [f"log: {r['source']}: {r['text']}" for r in self.races]
        out += [f"log: {line}" for line in self.log_findings]
        for s in self.steps:
            if s.status == "failed":
                where = f" (line {s.line})" if s.line else ""
                out.append(
                    f"step {s.index} {s.kind}{where} failed after {s.duration_s:.2f} s: {s.error}"
                )
        for c in self.checks:
            if not c.passed:
                where = f" (line {c.line})" if c.line else ""
                out.append(f"check {c.name}{where} failed: {c.message}")
                out += [f"    {e}" for e in c.evidence[:12]]
        for name, tail in self.logs.items():
            if tail:
                out.append(f"--- {name} (log tail) ---")
                out += tail.splitlines()[-10:]
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d

    @classmethod
    def load(cls, path: Path) -> RunResult:
        """Read back a saved result.json (or the run directory holding it)."""
        path = path / "result.json" if path.is_dir() else path
        d = json.loads(path.read_text())
        d["run_dir"] = Path(d["run_dir"])
        d["steps"] = [StepResult(**s) for s in d.get("steps", [])]
        d["checks"] = [CheckResult(**c) for c in d.get("checks", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "result.json"
        path.write_text(json.dumps(self.to_json(), indent=1, default=str))
        return path


def read_result(path: Path) -> RunResult:
    """`RunResult.load` for a user's path (`harness report`): a missing or unreadable
    result says which file and why, as a HarnessError, not as a traceback."""
    from harness.errors import HarnessError

    try:
        return RunResult.load(path)
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such file or directory") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{path}: not a run's result.json ({exc})") from None
