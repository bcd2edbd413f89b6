"""The report of a scenario run, for pcaps made anywhere (`harness analyze --html DIR`).

A reporter's capture is read the way the harness's own are: the files become a
run result with no steps (checks from `--expect`, if any), and the same page,
ladder diagram and media timeline are drawn. Without the lab's /etc/hosts the
lanes are named by address.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.reports.html import build_report
from harness.scenario.result import CheckResult, RunResult


def report_pcaps(
    files: list[Path], out: Path, checks: list[dict[str, object]], keylog: Path | None = None
) -> Path:
    """Write index.html, report.json, ladder and timeline for `files` into `out`.

    A `keylog` is copied into the run folder as keylog.txt, where a run's key logs live."""
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "capture"
    run_dir.mkdir(exist_ok=True)
    if keylog is not None:
        (run_dir / "keylog.txt").write_bytes(keylog.read_bytes())
    results = [
        CheckResult(
            str(c["check"]),
            bool(c["passed"]),
            str(c["message"]),
            [str(e) for e in c["evidence"]],  # type: ignore[attr-defined]
            dict(c["params"]),  # type: ignore[call-overload]
        )
        for c in checks
    ]
    names = ", ".join(p.name for p in files)
    result = RunResult(
        scenario=f"analyze {names}",
        file=names,
        seed=0,
        run_dir=run_dir,
        passed=all(c.passed for c in results),
        checks=results,
        pcaps=[str(p.resolve()) for p in files],
        environment={"source": "harness analyze", "analysed": time.strftime("%Y-%m-%d %H:%M")},
    )
    return build_report([result], out)
