"""`harness analyze FILE... [--json] [--expect NAME:JSON]`: summarise captures, run checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.assertions import checks  # noqa: F401  (fills the registry)
    from harness.assertions.registry import REGISTRY, CheckError, run_check

    if args.checks:
        for name, spec in sorted(REGISTRY.items()):
            params = ", ".join(spec.params) or "-"
            print(f"{name} ({params}): {spec.doc}")
        return 0
    expects = []
    for item in args.expect:
        name, _, raw = item.partition(":")
        try:
            expects.append((name, json.loads(raw) if raw else {}))
        except json.JSONDecodeError as exc:
            print(f"--expect {item}: bad JSON: {exc}", file=sys.stderr)
            return 2
    from rich.console import Console

    from harness.analysis.report import render, summarize_file

    console = Console() if sys.stdout.isatty() else Console(width=160)
    out, status = [], 0
    for path in args.files:
        session, data = summarize_file(path)
        if data["errors"] and not data["packets"]:
            status = max(status, 1)
        results = []
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
        if not args.json:
            render(data, console)
            for r in results:
                mark = "[green]PASS[/]" if r["passed"] else "[red]FAIL[/]"
                console.print(f"{mark} {r['check']} {r['params']}: {r['message']}")
                if not r["passed"]:
                    for line in r["evidence"]:
                        console.print(f"    {line}", markup=False)
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=1, default=str))
    return status


def main(argv: list[str] | None = None) -> int:
    """Standalone entry until the lead wires `register` into harness/cli.py."""
    parser = argparse.ArgumentParser(prog="harness")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
