"""Conformance report: a static HTML page (and JSON) from a directory of run results.

One row per run, one column per check: each cell is pass / fail / known failure /
unsupported and links to its evidence further down the page, where the failed
check, its evidence lines, the ladder diagram and the media timeline sit together.
The page has no scripts that fetch anything: it opens from disk and prints.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from harness.reports.evidence import telling
from harness.reports.ladder import ladder_svg
from harness.reports.runview import RunView
from harness.reports.timeline import timeline_svg
from harness.scenario.result import CheckResult, RunResult, check_label, read_result
from harness.scenario.verdict import verdict_of

STATES = {
    "pass": "pass",
    "fail": "fail",
    "xfail": "known failure",
    "xpass": "possibly fixed",
    "unsupported": "unsupported",
    "missing": "missing",  # planned, but its shard or job never reported (reports/merge.py)
    "none": "not run",
}


@dataclass
class Cell:
    state: str  # a key of STATES
    anchor: str
    title: str = ""


@dataclass
class Row:
    run_id: str
    scenario: str
    file: str
    seed: int
    verdict: str
    topology: str
    peers: str
    components: str
    versions: str = ""
    """What ran, as each program reported it: "gw janus 1.4.1, pbx kamailio 6.1.5"."""
    cells: dict[str, Cell] = field(default_factory=dict)
    telling: list[str] = field(default_factory=list)
    ladder: str = ""
    timeline: str = ""
    pcaps: list[tuple[str, str]] = field(default_factory=list)  # (name, relative link)


def find_results(root: Path) -> list[RunResult]:
    """Every result.json under `root` (a run directory or a directory of them)."""
    if not root.is_dir():
        return [read_result(root)]
    paths = sorted(
        Path(d) / "result.json"
        for d, _, files in os.walk(root, followlinks=True)  # results may be linked in
        if "result.json" in files
    )
    return [read_result(p) for p in paths]


def versions(r: RunResult) -> str:
    """Every component's and peer's version in this run, as its program reported it."""
    return ", ".join(
        f"{k.removeprefix('version ')}: {v}"
        for k, v in r.environment.items()
        if k.startswith("version ")
    )


def verdict(r: RunResult) -> str:
    return verdict_of(r).state


def _row(r: RunResult, out: Path, draw: bool) -> tuple[Row, list[tuple[str, CheckResult]]]:
    run_id = r.run_dir.name
    env = r.environment
    row = Row(
        run_id,
        r.scenario,
        r.file,
        r.seed,
        verdict(r),
        env.get("topology", "?"),
        ", ".join(v for k, v in env.items() if k.startswith("peer ")),
        ", ".join(v for k, v in env.items() if k.startswith("component ")),
        versions(r),
    )
    bad = "xfail" if row.verdict == "xfail" else "fail"
    failed_step = r.error or any(s.status == "failed" for s in r.steps)
    row.cells["steps"] = Cell(
        "unsupported" if r.skipped else (bad if failed_step else "pass"),
        f"{run_id}-steps",
        r.skip_reason or (telling(r, 1)[0] if failed_step and telling(r, 1) else ""),
    )
    taken: set[str] = set()
    labelled = []
    for i, c in enumerate(r.checks):
        label = check_label(c, taken)
        labelled.append((label, c))
        row.cells[label] = Cell("pass" if c.passed else bad, f"{run_id}-check-{i}", c.message)
    row.telling = telling(r) if row.verdict in ("fail", "xfail", "xpass") else []
    for p in map(Path, r.pcaps):
        row.pcaps.append((p.name, os.path.relpath(p, out)))
    if draw:
        view = RunView.open(r)
        d = out / "runs" / run_id
        d.mkdir(parents=True, exist_ok=True)
        (d / "ladder.svg").write_text(ladder_svg(view))
        (d / "timeline.svg").write_text(timeline_svg(view))
        row.ladder, row.timeline = f"runs/{run_id}/ladder.svg", f"runs/{run_id}/timeline.svg"
    return row, labelled


def build_report(
    results: list[RunResult],
    out: Path,
    *,
    draw: bool = True,
    missing: list[RunResult] | None = None,
) -> Path:
    """Write index.html, report.json and one ladder and timeline per run into `out`.

    `missing` are runs that were planned but never reported: rows that say so.
    """
    out.mkdir(parents=True, exist_ok=True)
    absent = {id(r) for r in missing or []}
    results = sorted(
        [*results, *(missing or [])],
        key=lambda r: (r.file, r.scenario, r.attempt, r.run_dir.name),
    )
    rows, columns = [], ["steps"]
    details: list[tuple[Any, RunResult, list[Any]]] = []
    for r in results:
        if id(r) in absent:
            row = Row(r.run_dir.name, r.scenario, r.file, 0, "missing", "?", "", "")
            row.cells["steps"] = Cell("missing", f"{row.run_id}-steps", r.error)
            rows.append(row)
            details.append((row, r, []))
            continue
        row, labelled = _row(r, out, draw)
        rows.append(row)
        details.append((row, r, labelled))
        columns += [c for c in row.cells if c not in columns]
    counts = {s: sum(1 for r in rows if r.verdict == s) for s in STATES}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html = env.get_template("report.html.j2").render(
        rows=rows,
        details=details,
        columns=columns,
        states=STATES,
        counts=counts,
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        implementations=_implementations(results),
    )
    (out / "index.html").write_text(html)
    data: dict[str, Any] = {
        "generated": time.time(),
        "columns": columns,
        "counts": counts,
        "rows": [asdict(r) for r in rows],
    }
    (out / "report.json").write_text(json.dumps(data, indent=1, default=str))
    return out / "index.html"


def _implementations(results: list[RunResult]) -> dict[str, list[str]]:
    """What was under test: peer kinds, components (gateways, TURN, SIP) and topologies."""
    kinds: dict[str, set[str]] = {"peers": set(), "components": set(), "topologies": set()}
    for r in results:
        for k, v in r.environment.items():
            if k.startswith("peer "):
                kinds["peers"].add(v.partition(" on ")[0])
            elif k.startswith("component "):
                kinds["components"].add(v.partition(" on ")[0])
        kinds["topologies"].add(r.environment.get("topology", "?"))
    return {k: sorted(v) for k, v in kinds.items()}
