"""The `harness` command line."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.ui import LazyConsole

console = LazyConsole(stderr=False)
err_console = LazyConsole(stderr=True)

# Subcommands that live with the layer they belong to: module -> where to attach
PLUGGED = [
    ("harness.nat.cli", "top"),
    ("harness.analysis.cli", "top"),
    ("harness.conditions.cli", "lab"),
    ("harness.scenario.cli", "top"),
    ("harness.reports.cli", "top"),
    ("harness.images.cli", "top"),
    ("harness.scenario.bisect_cli", "top"),
]


# ---------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.doctor import basics_ok, checks

    results = checks()
    if args.json:
        print(json.dumps([c.to_dict() for c in results], indent=1))
    else:
        from rich.table import Table

        table = Table(title="rtc-harness doctor")
        for col in ("check", "", "detail", "fix"):
            table.add_column(col)
        for c in results:
            mark = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.basic else "[yellow]no[/]")
            table.add_row(c.name, mark, c.detail, "" if c.ok else c.fix)
        console.print(table)
    _doctor_scenarios(args)
    if not basics_ok(results):
        err_console.print("[red]basic requirements are missing: labs cannot run here[/]")
        return 1
    return 0


def _doctor_scenarios(args: argparse.Namespace) -> None:
    """Each scenario that would be unsupported here, and what would make it a real run."""
    from harness.doctor import unsupported_scenarios

    paths = args.scenarios or sorted(Path("scenarios").glob("**/*.yaml"))
    if not paths:
        return
    rows = unsupported_scenarios(paths)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    if not rows:
        console.print(f"every scenario of {len(paths)} file(s) can run here")
        return
    from rich.table import Table

    table = Table(title="unsupported scenarios here, and what would make each a real run")
    for col in ("scenario", "missing", "fix"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["scenario"], "\n".join(r["missing"]), "\n".join(r["fix"]))
    console.print(table)


# ---------------------------------------------------------------- validate


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.config.loader import load_any

    for path in args.files:
        kind, obj = load_any(path)
        console.print(f"[green]ok[/] {path}: {kind} {getattr(obj, 'name', '')}")
    return 0


# ---------------------------------------------------------------- lab


def cmd_lab_up(args: argparse.Namespace) -> int:
    from harness.lab import Lab

    lab = Lab(args.topology, args.name, detached=True, seed=args.seed)
    lab.up()
    _print_lab(lab)
    console.print(
        f"\nlab [bold]{lab.name}[/] is up in {lab.timings['up'] * 1000:.0f} ms; "
        f"remove it with: harness lab down {lab.name}"
    )
    return 0


def _print_lab(lab: object) -> None:
    from harness.lab import Lab

    assert isinstance(lab, Lab)
    from rich.table import Table

    table = Table(title=f"lab {lab.name} ({lab.topology.name})")
    for col in ("node", "kind", "interface", "address", "gateway", "nat / firewall"):
        table.add_column(col)
    for node in lab.topology.nodes.values():
        for i, iface in enumerate(node.interfaces.values()):
            extra = ""
            if node.is_router and i == 0:
                extra = f"{node.nat.label if node.nat else 'no NAT'} / {node.firewall.value}"
            table.add_row(
                node.name if i == 0 else "",
                node.kind.value if i == 0 else "",
                iface.name,
                iface.cidr,
                str(iface.gateway or ""),
                extra,
            )
    console.print(table)
    console.print(f"namespaces: rh-{lab.name}.<node>; run dir: {lab.run_dir}")


def cmd_lab_down(args: argparse.Namespace) -> int:
    from harness.lab.registry import load_state
    from harness.runtime.netns import destroy_lab_namespaces

    st = load_state(args.name)
    removed = destroy_lab_namespaces(args.name)
    if st is None and not removed:
        err_console.print(f"no lab named {args.name!r}")
        return 1
    if st is not None:
        st.remove()
    console.print(f"lab {args.name} removed ({len(removed)} namespaces)")
    return 0


def cmd_lab_list(args: argparse.Namespace) -> int:
    from harness.lab.registry import all_states

    states = all_states()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "topology": s.topology_file,
                        "detached": s.detached,
                        "owner_alive": s.owner_alive(),
                        "run_dir": s.run_dir,
                    }
                    for s in states
                ]
            )
        )
        return 0
    from rich.table import Table

    table = Table(title="labs")
    for col in ("name", "topology", "owner", "run dir"):
        table.add_column(col)
    for s in states:
        owner = (
            "harness lab up"
            if s.detached
            else (f"pid {s.owner_pid}" if s.owner_alive() else "[red]dead[/] (gc removes it)")
        )
        table.add_row(s.name, s.topology_file, owner, s.run_dir)
    console.print(table)
    return 0


def cmd_lab_gc(args: argparse.Namespace) -> int:
    from harness.lab.registry import gc

    report = gc(everything=args.all)
    console.print(
        f"removed {len(report.removed_labs)} labs ({', '.join(report.removed_labs) or '-'}), "
        f"{len(report.removed_namespaces)} namespaces, {len(report.removed_containers)} "
        f"containers; kept {len(report.kept)} in use"
    )
    return 0


def cmd_lab_exec(args: argparse.Namespace) -> int:
    from harness.lab import Lab

    lab = Lab.attach(args.name)
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        cmd = [os.environ.get("SHELL", "/bin/bash")]
    ns = lab.netns(args.node)
    os.execvp("nsenter", ["nsenter", f"--net=/run/netns/{ns}", *cmd])
    return 0  # not reached


def cmd_lab_capture(args: argparse.Namespace) -> int:
    from harness.lab import Lab

    lab = Lab.attach(args.name)
    cap = lab.capture(args.points, bpf=args.filter or "")
    console.print(
        "capturing on "
        + ", ".join(f"{p.node}:{p.iface}" for p in cap.points)
        + (f" for {args.duration} s" if args.duration else " until Ctrl-C")
    )
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(args.duration) if args.duration else signal.pause()
    files = cap.stop()
    for p, f in zip(cap.points, files, strict=True):
        console.print(
            f"{f}  ({p.stats.get('captured', '?')} packets, {p.stats.get('dropped', 0)} dropped)"
        )
    return 0


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    parser.add_argument("--version", action="version", version="rtc-harness 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="what this machine can do, with fixes")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--scenarios",
        nargs="*",
        type=Path,
        help="scenario files to check for what this machine lacks (default: scenarios/**)",
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("validate", help="check topology and scenario files")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)

    lab = sub.add_parser("lab", help="build and use labs by hand").add_subparsers(
        dest="lab_command", required=True, metavar="LABCOMMAND"
    )
    p = lab.add_parser("up", help="build a topology and leave it running")
    p.add_argument("topology")
    p.add_argument("--name")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_lab_up)
    p = lab.add_parser("down", help="remove a lab")
    p.add_argument("name")
    p.set_defaults(func=cmd_lab_down)
    p = lab.add_parser("list", help="labs on this machine")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lab_list)
    p = lab.add_parser("gc", help="remove what killed runs left behind")
    p.add_argument("--all", action="store_true", help="also labs from `lab up` and live runs")
    p.set_defaults(func=cmd_lab_gc)
    p = lab.add_parser("exec", help="run a command in a node: lab exec LAB NODE -- CMD")
    p.add_argument("name")
    p.add_argument("node")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_lab_exec)
    p = lab.add_parser("capture", help="capture on NODE[.IFACE] points of a running lab")
    p.add_argument("name")
    p.add_argument("points", nargs="+", metavar="NODE[.IFACE]")
    p.add_argument("--duration", type=float)
    p.add_argument("--filter", help="BPF filter expression")
    p.set_defaults(func=cmd_lab_capture)

    for module, where in PLUGGED:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(sub if where == "top" else lab)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    entry = argv is None  # the process's own entry point, not a call from Python
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["analyze"]:  # reading a pcap should not wait for the lab's imports
        from harness.analysis.cli import main as analyze
        from harness.analysis.cli import process

        if entry:
            process(argv)
        return analyze(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted: labs torn down")
        return 130


if __name__ == "__main__":
    sys.exit(main())
