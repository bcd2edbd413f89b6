"""`harness bisect SCENARIO --images A,B,C`: where, between images, a verdict changes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.ui import LazyConsole

if TYPE_CHECKING:
    from harness.config.scenario import Scenario
    from harness.scenario.result import RunResult

# nothing heavy at import (`harness --help` imports this module); logs keep whole names
console = LazyConsole() if sys.stdout.isatty() else LazyConsole(width=120)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bisect", help="find the first image (oldest to newest) at which a verdict changes"
    )
    p.add_argument("scenario", type=Path)
    p.add_argument("--images", required=True, help="comma-separated images, oldest first (A,B,C)")
    p.add_argument("--component", help="the component run from the images (default: by kind)")
    p.add_argument("--only", help="the matrix cell (scenario name) when the file holds several")
    p.add_argument("--repeat", type=int, default=1, help="runs per image (intermittent cells)")
    p.add_argument("--seed", type=int, default=1, help="seed of the first run of every image")
    p.add_argument("--json", type=Path, help="write the bisection and its runs here")
    p.set_defaults(func=cmd_bisect)


def pick(path: Path, only: str | None) -> Scenario:
    from harness.config.scenario import load_scenarios

    scenarios = load_scenarios(path)
    if only is not None:
        scenarios = [s for s in scenarios if s.name == only] or [
            s for s in scenarios if only in s.name
        ]
    if len(scenarios) != 1:
        names = ", ".join(s.name for s in scenarios[:8])
        raise HarnessError(
            f"{path}: {len(scenarios)} scenarios match; pick one with --only ({names})"
        )
    return scenarios[0]


def cmd_bisect(args: argparse.Namespace) -> int:
    import asyncio

    from rich.table import Table

    from harness.scenario.bisect import bisect, target_component
    from harness.scenario.runner import run_scenario
    from harness.scenario.verdict import verdict_of

    scenario = pick(args.scenario, args.only)
    images = [i.strip() for i in args.images.split(",") if i.strip()]
    component = target_component(scenario, images, args.component)

    async def run(sc: Scenario, seed: int) -> RunResult:
        image = sc.spec.components[component].image
        with console.status(f"{sc.name} with {image} (seed {seed})") as status:
            r = await run_scenario(sc, seed=seed, progress=lambda m: status.update(f"{image}: {m}"))
        state = verdict_of(r).state
        console.print(f"{image} seed={seed}: {state} {r.timings.get('total', 0):.1f} s")
        for line in [] if r.passed else r.failure_text().splitlines()[1:3]:
            console.print(f"  {line[:160]}", highlight=False, markup=False)
        return r

    b = asyncio.run(
        bisect(scenario, images, run, component=component, repeat=args.repeat, seed=args.seed)
    )
    table = Table(title=f"bisect {b.scenario}: component {b.component}")
    for col in ("image", "version (from the program)", "passed", "verdict"):
        table.add_column(col)
    for image in images:
        p = b.probes.get(image)
        if p is None:
            table.add_row(image, "", "", "[dim]not run[/]")
        else:
            mark = " <- first change" if image == b.first_changed else ""
            version = p.version(b.component).replace(f" ({image})", "")
            table.add_row(image, version, f"{p.passed}/{len(p.runs)}", p.verdict + mark)
    console.print(table)
    console.print(b.summary(), highlight=False)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "scenario": b.scenario,
                    "component": b.component,
                    "images": images,
                    "first_changed": b.first_changed,
                    "summary": b.summary(),
                    "probes": {
                        i: {
                            "verdict": p.verdict,
                            "passed": p.passed,
                            "runs": [str(r.run_dir) for r in p.runs],
                        }
                        for i, p in b.probes.items()
                    },
                },
                indent=1,
            )
        )
    return 0
