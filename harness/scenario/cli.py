"""`harness run SCENARIO...`: live progress, a summary table, evidence on failure."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.config.scenario import Scenario, load_scenarios
from harness.scenario.result import RunResult
from harness.scenario.runner import run_scenario

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
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    scenarios: list[Scenario] = [sc for p in args.scenarios for sc in load_scenarios(p)]
    if args.only:
        scenarios = [sc for sc in scenarios if any(o in sc.name for o in args.only)]
        if not scenarios:
            print(f"no scenario name contains {' or '.join(args.only)}")
            return 2
    results = asyncio.run(_run_all(scenarios, args.repeat, args.seed))
    _summary(results)
    if args.junit:
        from harness.reports.junit import write_junit

        write_junit(results, args.junit)
        console.print(f"JUnit: {args.junit}")
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in results], indent=1, default=str))
    bad = [r for r in results if not r.passed and not r.skipped and not r.known_failure]
    return 1 if bad else 0


async def _run_all(
    scenarios: list[Scenario], repeat: int | None, seed: int | None
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
            mark = (
                "[green]PASS[/]"
                if r.passed
                else ("[yellow]XFAIL[/]" if r.known_failure else "[red]FAIL[/]")
            )
            console.print(f"{mark} {label} seed={r.seed} {r.timings.get('total', 0):.1f} s")
            if not r.passed:
                console.print(r.failure_text(), highlight=False, markup=False)
            results.append(r)
    return results


def _summary(results: list[RunResult]) -> None:
    table = Table(title="summary")
    for col in ("scenario", "runs", "passed", "failed", "failure rate", "seeds of failures"):
        table.add_column(col)
    by: dict[str, list[RunResult]] = {}
    for r in results:
        by.setdefault(r.scenario, []).append(r)
    for name, runs in by.items():
        failed = [r for r in runs if not r.passed]
        table.add_row(
            name,
            str(len(runs)),
            str(len(runs) - len(failed)),
            str(len(failed)),
            f"{100 * len(failed) / len(runs):.0f} %",
            " ".join(str(r.seed) for r in failed),
        )
    console.print(table)
