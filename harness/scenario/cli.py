"""`harness run SCENARIO...`: live progress, a summary table, evidence on failure."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.config.scenario import Scenario, load_scenarios
from harness.scenario.result import RunResult
from harness.scenario.runner import run_scenario
from harness.scenario.verdict import (
    FAIL,
    LABELS,
    PASS,
    UNSUPPORTED,
    XFAIL,
    XPASS,
    Verdict,
    counts,
    judge_rate,
    verdict_of,
)

COLOURS = {PASS: "green", FAIL: "red", XFAIL: "yellow", XPASS: "bold red", UNSUPPORTED: "cyan"}

console = Console()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run YAML scenarios against a fresh lab each")
    p.add_argument("scenarios", nargs="+", type=Path)
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
        "--shard",
        type=_shard,
        help="K/N: run only the K-th of N interleaved slices of the scenarios (CI jobs)",
    )
    p.add_argument(
        "--runtime",
        choices=("process", "docker"),
        help="where components and peers without `image:` run (default: the scenario's)",
    )
    p.add_argument("--suite", help="Debian suite of the default images (with --runtime docker)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    scenarios: list[Scenario] = [sc for p in args.scenarios for sc in load_scenarios(p)]
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
    if args.shard:
        k, n = args.shard
        scenarios = scenarios[k - 1 :: n]
        print(f"shard {k}/{n}: {len(scenarios)} scenarios")
    report = (
        None
        if args.no_report
        else args.report or Path("reports", time.strftime("run-%Y%m%d-%H%M%S"))
    )
    results = asyncio.run(_run_all(scenarios, args.repeat, args.seed, report, args.alluredir))
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
    bad = [r for r in results if verdict_of(r).bad] + [v for v in groups.values() if v.bad]
    if bad:
        return 1
    if results and all(verdict_of(r).state == UNSUPPORTED for r in results):
        console.print("[yellow]nothing ran: every scenario is unsupported here (harness doctor)[/]")
        return 3
    return 0


def _shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise argparse.ArgumentTypeError(f"--shard takes K/N with 1 <= K <= N, not {text!r}")
    return int(k), int(n)


async def _run_all(
    scenarios: list[Scenario],
    repeat: int | None,
    seed: int | None,
    report: Path | None,
    alluredir: Path | None,
) -> list[RunResult]:
    results = []
    for sc in scenarios:
        n = repeat or sc.spec.repeat
        base = seed if seed is not None else sc.spec.seed
        for k in range(n):
            label = f"{sc.name}" + (f" [{k + 1}/{n}]" if n > 1 else "")
            with console.status(f"{label}: starting") as status:
                r = await run_scenario(
                    sc,
                    seed=None if base is None else base + k,
                    attempt=k + 1,
                    progress=lambda msg, label=label: status.update(f"{label}: {msg}"),
                )
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
            results.append(r)
    return results


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
