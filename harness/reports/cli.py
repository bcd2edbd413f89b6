"""`harness report DIR... [--out DIR]`: the HTML conformance report from saved runs.

Given the `--out` directories of shards (each with a manifest), it merges them
into one report, one allure result set and one JUnit file, and names every
shard or run that did not report (exit status 1).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML conformance report (and JSON) from run results")
    p.add_argument(
        "results",
        type=Path,
        nargs="+",
        help="run directories, directories of them, or shards' `harness run --out` directories",
    )
    p.add_argument(
        "--out", type=Path, help="report directory (default: RESULTS/report, or ./report)"
    )
    p.add_argument("--no-diagrams", action="store_true", help="skip ladders and timelines")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.reports.html import build_report
    from harness.reports.merge import MANIFEST, merge, merge_allure

    t = time.perf_counter()
    dirs: list[Path] = args.results
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        from harness.errors import HarnessError

        raise HarnessError(f"--out {args.out}: not a directory")
    sharded = any((d / MANIFEST).is_file() for d in dirs)
    if not sharded and len(dirs) == 1 and not dirs[0].is_dir():
        from harness.reports.html import find_results

        m_results, m_missing, notes, missing_shards = find_results(dirs[0]), [], [], []
    else:
        m = merge(dirs)
        m_results, m_missing, notes = m.results, m.missing, m.notes
        missing_shards = m.missing_shards
    if not m_results and not m_missing:
        print(f"no result.json under {' '.join(map(str, dirs))}")
        return 2
    single = len(dirs) == 1 and dirs[0].is_dir() and not sharded
    out = args.out or (dirs[0] / "report" if single else Path("report"))
    report_dir = out if single or not sharded else out / "report"
    index = build_report(m_results, report_dir, draw=not args.no_diagrams, missing=m_missing)
    took = time.perf_counter() - t
    print(f"{len(m_results)} runs -> {index} ({index.parent / 'report.json'}) in {took:.1f} s")
    if sharded:
        from harness.reports.allure import write_result
        from harness.reports.junit import write_junit

        n = merge_allure(dirs, out / "allure")
        for r in m_missing:
            write_result(r, out / "allure")
        write_junit([*m_results, *m_missing], out / "junit.xml")
        print(f"allure: {out / 'allure'} ({n} results merged); JUnit: {out / 'junit.xml'}")
    for note in notes:
        print(f"warning: {note}")
    if missing_shards:
        print(
            f"MISSING shards: {', '.join(map(str, missing_shards))} (their runs are in the report)"
        )
    if m_missing:
        print(f"MISSING {len(m_missing)} runs: {', '.join(r.scenario for r in m_missing)}")
        return 1
    return 0
