"""`harness analyze FILE... [--json] [--expect NAME:JSON]`: summarise captures, run checks."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from harness import methodcache
from harness.analysis import exitkeep

try:
    from harness.analysis import _hugearenas  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: pymalloc's own arenas
    _hugearenas = None


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `analyze` command to the harness CLI."""
    p = sub.add_parser("analyze", help="dissect pcap/pcapng files: ICE, DTLS, RTP, SIP, SDP lint")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="CHECK[:JSON]",
        help="run a check, e.g. --expect dtls_handshakes:'{\"max\": 1}' (repeatable)",
    )
    p.add_argument("--checks", action="store_true", help="list the available checks and exit")
    p.add_argument(
        "--rows",
        type=_rows,
        default=None,
        metavar="N",
        help="rows of each list in the text summary (default 40; 0: all): problems first, "
        "then the largest (flows, pairs, streams) or the first; what is left out is counted",
    )
    p.add_argument(
        "--keylog",
        type=Path,
        metavar="FILE",
        help="TLS key log (SSLKEYLOGFILE format) to decrypt SIP over TLS and wss://",
    )
    p.add_argument(
        "--html",
        type=Path,
        metavar="DIR",
        help="also draw the run report (page, ladder, media timeline) of these files into DIR",
    )
    p.set_defaults(func=run)


def _rows(text: str) -> int:
    """--rows: a count of rows, 0 for all."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows (0: all), got {text!r}")
    return n


def run(args: argparse.Namespace) -> int:
    if args.checks or args.expect:  # the checks' modules only when asked for
        from harness.assertions import checks  # noqa: F401  (fills the registry)
        from harness.assertions.registry import REGISTRY, CheckError, run_check

    if args.checks:
        print("(* required)")
        for name, spec in sorted(REGISTRY.items()):
            takes = ", ".join(f"{p}*" if p in spec.required else p for p in spec.params) or "-"
            print(f"{name} ({takes}): {spec.doc}")
        return 0
    expects: list[tuple[str, dict[str, Any]]] = []
    for item in args.expect:
        name, _, raw = item.partition(":")
        try:
            params = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            print(f"--expect {item}: bad JSON: {exc}", file=sys.stderr)
            return 2
        if not isinstance(params, dict):
            print(f"--expect {item}: the parameters are a JSON object ({{...}})", file=sys.stderr)
            return 2
        expects.append((name, params))
    if args.keylog and not args.keylog.is_file():
        print(f"--keylog {args.keylog}: no such file", file=sys.stderr)
        return 2
    if args.html and args.html.exists() and not args.html.is_dir():
        print(f"--html {args.html}: not a directory", file=sys.stderr)
        return 2
    console = None
    if not args.json:
        from rich.console import Console

        from harness.analysis.textreport import ROWS, render

        console = Console() if sys.stdout.isatty() else Console(width=160)
    out, status = [], 0
    for path in args.files:
        from harness.analysis.report import summarize_file  # not for `harness --help`

        exitkeep.release()  # the previous file's
        session, data = summarize_file(path, args.keylog)
        exitkeep.keep(session)
        if data["errors"] and not data["packets"]:
            status = max(status, 1)
        results: list[dict[str, Any]] = []
        for name, params in expects:
            try:
                o = run_check(name, session, params)
            except CheckError as exc:
                print(f"{exc}", file=sys.stderr)
                return 2
            results.append(
                {
                    "check": name,
                    "params": params,
                    "passed": o.passed,
                    "message": o.message,
                    "evidence": o.evidence,
                }
            )
            status = max(status, 0 if o.passed else 3)
        data["checks"] = results
        out.append(data)
        if console is not None:
            render(data, console, ROWS if args.rows is None else args.rows)
            for r in results:
                mark = "[green]PASS[/]" if r["passed"] else "[red]FAIL[/]"
                console.print(f"{mark} {r['check']} {r['params']}: {r['message']}")
                if not r["passed"]:
                    for line in r["evidence"]:
                        console.print(f"    {line}", markup=False)
    if args.json:
        from harness.analysis import jsonout

        print(jsonout.dumps(out if len(out) > 1 else out[0]))
    if args.html:
        exitkeep.disable()  # the report analyses every file again: keep none of them
        # The command line sits above every layer: it may hand the files to the reports.
        from harness.reports.pcapreport import report_pcaps

        verdicts = [c for d in out for c in d["checks"]]
        index = report_pcaps(list(args.files), args.html, verdicts, args.keylog)
        print(f"report: {index}", file=sys.stderr if args.json else sys.stdout)
    return status


def process(argv: list[str]) -> NoReturn:
    """`harness analyze` as a whole process: the summary, then a plain exit.

    The walk's objects are acyclic, so the cyclic collector only costs time here, and
    so does freeing millions of small objects one by one, at interpreter shutdown or
    when their last reference goes (exitkeep): the process flushes its output and
    ends, and the OS takes the memory back at once.
    The analyser does no linear algebra: numpy's OpenBLAS need not start a thread per
    core, whose start-up spinning cost ~40 ms of CPU (about a tenth of a run).
    The objects' memory comes from huge pages (`_hugearenas.c`: a fault per 2 MiB, not per
    4 KiB page, and fewer TLB misses) where a huge page costs less than its 512 small ones:
    the allocator times one of each way at start. On a VM that hands freed memory back to
    its host (virtio-balloon) a fresh huge page cost far more (a handshake-heavy run: 0.99 s
    median CPU with them, 0.52 s without); on this lab's VM they save 8% (paired runs).
    RTC_HARNESS_HUGE_ARENAS=1 takes them without the test, =0 never.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read when numpy is first imported
    gc.disable()
    exitkeep.enable()
    huge = os.environ.get("RTC_HARNESS_HUGE_ARENAS")
    if _hugearenas is not None and huge == "1":
        _hugearenas.enable()
    elif _hugearenas is not None and huge != "0":
        _hugearenas.enable_if_cheap()
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    methodcache.save()  # what atexit would have saved
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry until the lead wires `register` into harness/cli.py."""
    parser = argparse.ArgumentParser(prog="harness")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
