"""`harness run SCENARIO...`: live progress, a summary table, evidence on failure.

`--jobs N` runs scenarios in separate labs at once (harness/scenario/parallel.py),
`--shard K/N` runs one CI job's share (harness/scenario/shard.py), and `--out DIR`
keeps everything a later `harness report DIR...` merges (results, JUnit, allure,
and the manifest that names what this shard was to run).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.ui import LazyConsole

if TYPE_CHECKING:
    from harness.config.scenario import Scenario
    from harness.scenario.parallel import Job
    from harness.scenario.result import RunResult
    from harness.scenario.verdict import Verdict


console = LazyConsole()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run YAML scenarios against a fresh lab each")
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario files, or directories of them")
    p.add_argument(
        "--repeat", type=int, help="runs per scenario (default: the scenario's `repeat`)"
    )
    p.add_argument("--seed", type=int, help="seed of the first run; run k uses seed+k-1")
    p.add_argument("--only", action="append", help="run only scenarios whose name contains this")
    p.add_argument("--junit", type=Path, help="write JUnit XML here")
    p.add_argument("--json", type=Path, help="write all results as JSON here")
    p.add_argument("--alluredir", type=Path, help="write allure results here")
    p.add_argument(
        "--report",
        type=Path,
        help="HTML conformance report directory (default: reports/run-<time>)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument(
        "--jobs",
        "-j",
        nargs="?",
        type=_jobs_arg,
        const="auto",
        default="1",
        help="labs at once (default 1; `--jobs` alone: as many as this machine holds)",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        help="K/N: run only the K-th of N shards of the scenarios (CI jobs)",
    )
    p.add_argument(
        "--durations",
        type=Path,
        action="append",
        help="a previous run's results (dir of result.json, or JUnit XML): balance shards by them",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="results directory for `harness report DIR...`: runs, JUnit, allure, manifest",
    )
    p.add_argument(
        "--runtime",
        choices=("process", "docker"),
        help="where components and peers without `image:` run (default: the scenario's)",
    )
    p.add_argument("--suite", help="Debian suite of the default images (with --runtime docker)")
    p.set_defaults(func=cmd_run)


def _outputs(args: argparse.Namespace) -> None:
    """Where results go, checked before anything runs: a directory option that names a
    file, or a file option that names a directory, is refused now, not after the labs."""
    from harness.errors import HarnessError

    for opt, path in (
        ("--out", args.out),
        ("--report", args.report),
        ("--alluredir", args.alluredir),
    ):
        if path is not None and path.exists() and not path.is_dir():
            raise HarnessError(f"{opt} {path}: not a directory")
    for opt, path in (("--junit", args.junit), ("--json", args.json)):
        if path is not None and path.is_dir():
            raise HarnessError(f"{opt} {path}: a directory, not a file")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config.scenario import load_scenarios

    _outputs(args)
    files = [f for p in args.scenarios for f in _expand(p)]
    scenarios: list[Scenario] = [sc for f in files for sc in load_scenarios(f)]
    for sc in scenarios:
        if args.runtime:
            sc.spec.runtime = args.runtime
        if args.suite:
            sc.spec.suite = args.suite
    if args.only:
        scenarios = [sc for sc in scenarios if any(o in sc.name for o in args.only)]
        if not scenarios:
            print(f"no scenario name contains {' or '.join(args.only)}")
            return 2
    planned = scenarios
    shards = [1] * len(scenarios)
    if args.shard:
        from harness.scenario.shard import load_durations, plan

        k, n = args.shard
        durations = load_durations(args.durations) if args.durations else None
        shards = plan([sc.name for sc in scenarios], n, durations)
        scenarios = [sc for sc, s in zip(scenarios, shards, strict=True) if s == k]
        how = "by recorded durations" if durations else "interleaved"
        print(f"shard {k}/{n} ({how}): {len(scenarios)} of {len(planned)} scenarios")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        os.environ["HARNESS_CAPTURES"] = str((args.out / "runs").absolute())
        args.junit = args.junit or args.out / "junit.xml"
        args.alluredir = args.alluredir or args.out / "allure"
        args.report = args.report or args.out / "report"
        args.json = args.json or args.out / "results.json"
        _write_manifest(args, planned, shards, scenarios, started=time.time())
    report = (
        None
        if args.no_report
        else args.report or Path("reports", time.strftime("run-%Y%m%d-%H%M%S"))
    )
    import asyncio

    jobs = _jobs(scenarios, args.repeat, args.seed)
    n = _how_many(args.jobs, scenarios, len(jobs))
    if n == 1:
        results = asyncio.run(_run_all(jobs, scenarios, report, args.alluredir))
    else:
        from harness.scenario.parallel import run_parallel

        console.print(f"{len(jobs)} runs, {n} labs at once")

        def done(job: Job, r: RunResult) -> None:
            _print_result(job.label, r, report, args.alluredir)

        results = asyncio.run(run_parallel(jobs, n, done))
    _summary(results)
    groups = _rate_verdicts(scenarios, results)
    if report is not None:
        from harness.reports.html import build_report

        console.print(f"report: {build_report(results, report)}")
    if args.alluredir:
        console.print(f"allure results: {args.alluredir}")
    if args.junit:
        from harness.reports.junit import write_junit

        write_junit(results, args.junit, rates=groups)
        console.print(f"JUnit: {args.junit}")
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in results], indent=1, default=str))
    if args.out:
        _write_manifest(args, planned, shards, scenarios, finished=time.time())
    from harness.scenario.verdict import UNSUPPORTED, verdict_of

    bad = [r for r in results if verdict_of(r).bad] + [v for v in groups.values() if v.bad]
    if bad:
        return 1
    if results and all(verdict_of(r).state == UNSUPPORTED for r in results):
        console.print("[yellow]nothing ran: every scenario is unsupported here (harness doctor)[/]")
        return 3
    return 0


def _expand(path: Path) -> list[Path]:
    """A scenario file, or every *.yaml under a directory (sorted: every shard sees one order)."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def _jobs_arg(text: str) -> str:
    """--jobs: a number >= 1, or `auto` (what `--jobs` alone means)."""
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"takes a number >= 1 or nothing, not {text!r}")
    return text


def _shard(text: str) -> tuple[int, int]:
    from harness.scenario.shard import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--shard: {exc}") from None


def _write_manifest(
    args: argparse.Namespace,
    planned: list[Scenario],
    shards: list[int],
    mine: list[Scenario],
    **times: float,
) -> None:
    """What this shard was to run, and of which whole: `harness report` names what is missing."""
    from harness.reports.merge import MANIFEST

    path = args.out / MANIFEST
    old = json.loads(path.read_text()) if path.is_file() and "finished" in times else {}
    k, n = args.shard or (1, 1)
    data = {
        **old,
        "shard": [k, n],
        "plan": [
            {"scenario": sc.name, "file": str(sc.path), "shard": s}
            for sc, s in zip(planned, shards, strict=True)
        ],
        "runs": [sc.name for sc in mine],
        "repeat": args.repeat,
        **times,
    }
    path.write_text(json.dumps(data, indent=1))


def _jobs(scenarios: list[Scenario], repeat: int | None, seed: int | None) -> list[Job]:
    from harness.scenario.parallel import Job

    out = []
    for sc in scenarios:
        n = repeat or sc.spec.repeat
        base = seed if seed is not None else sc.spec.seed
        for k in range(n):
            label = f"{sc.name}" + (f" [{k + 1}/{n}]" if n > 1 else "")
            s = None if base is None else base + k
            out.append(Job(str(sc.path), sc.name, s, k + 1, label))
    return out


def _how_many(jobs_arg: str, scenarios: list[Scenario], runs: int) -> int:
    """--jobs: a number, or `auto` (what this machine holds); warn when it oversubscribes."""
    from harness.scenario.parallel import holds, oversubscribed

    cap = holds(scenarios)
    n = cap.jobs if jobs_arg == "auto" else int(jobs_arg)
    warning = oversubscribed("--jobs", n, cap)
    if warning:
        console.print(f"[yellow]{warning}[/]")
    return max(1, min(n, runs))


async def _run_all(
    jobs: list[Job], scenarios: list[Scenario], report: Path | None, alluredir: Path | None
) -> list[RunResult]:
    from harness.scenario.runner import run_scenario

    by_name = {sc.name: sc for sc in scenarios}
    results = []
    for job in jobs:
        with console.status(f"{job.label}: starting") as status:

            def progress(msg: str, label: str = job.label) -> None:
                status.update(f"{label}: {msg}")

            r = await run_scenario(
                by_name[job.scenario], seed=job.seed, attempt=job.attempt, progress=progress
            )
        _print_result(job.label, r, report, alluredir)
        results.append(r)
    return results


def _print_result(label: str, r: RunResult, report: Path | None, alluredir: Path | None) -> None:
    from harness.scenario.verdict import COLOURS, LABELS, PASS, verdict_of

    v = verdict_of(r)
    mark = f"[{COLOURS[v.state]}]{LABELS[v.state]}[/]"
    console.print(f"{mark} {label} seed={r.seed} {r.timings.get('total', 0):.1f} s")
    if v.reason and v.state != PASS:
        console.print(f"  {v.reason}", highlight=False, markup=False)
    if not r.passed:
        _explain(r, report)
    if alluredir is not None:
        from harness.reports.allure import write_result

        write_result(r, alluredir)


def _explain(r: RunResult, report: Path | None) -> None:
    """The three most telling pieces of evidence, and where the whole story is."""
    from harness.reports.evidence import telling

    for line in telling(r, 3):
        console.print(f"  \u2022 {line}", highlight=False, markup=False)
    where = (
        f"{report / 'index.html'}#{r.run_dir.name}" if report else str(r.run_dir / "result.json")
    )
    console.print(f"  full report: {where}", highlight=False, markup=False)


def _rate_verdicts(scenarios: list[Scenario], results: list[RunResult]) -> dict[str, Verdict]:
    """Intermittent known failures: their failure rate over the repeated runs, judged."""
    from harness.scenario.verdict import COLOURS, LABELS, judge_rate

    out = {}
    for sc in scenarios:
        runs = [r for r in results if r.scenario == sc.name]
        v = judge_rate(sc.spec.known_failure, runs)
        if v is not None:
            out[sc.name] = v
            mark = f"[{COLOURS[v.state]}]{LABELS[v.state]}[/]"
            console.print(f"{mark} {sc.name}: {v.reason}", highlight=False)
    return out


def _summary(results: list[RunResult]) -> None:
    from rich.table import Table

    from harness.scenario.verdict import (
        FAIL,
        LABELS,
        PASS,
        UNSUPPORTED,
        XFAIL,
        XPASS,
        counts,
        verdict_of,
    )

    table = Table(title="summary")
    cols = ("scenario", "runs", "pass", "known failure", "fail", "possibly fixed", "unsupported")
    for col in (*cols, "failure rate", "seeds of failures"):
        table.add_column(col)
    by: dict[str, list[RunResult]] = {}
    for r in results:
        by.setdefault(r.scenario, []).append(r)
    for name, runs in by.items():
        n = counts(runs)
        ran = len(runs) - n[UNSUPPORTED]
        failed = [r for r in runs if verdict_of(r).state in (FAIL, XFAIL)]
        table.add_row(
            name,
            str(len(runs)),
            *(str(n[k]) for k in (PASS, XFAIL, FAIL, XPASS, UNSUPPORTED)),
            f"{100 * len(failed) / ran:.0f} %" if ran else "-",
            " ".join(str(r.seed) for r in failed),
        )
    console.print(table)
    total = counts(results)
    console.print(", ".join(f"{LABELS[k].lower()}: {v}" for k, v in total.items()))
