"""`harness images build|list`: the images scenarios run, built here without a registry."""

from __future__ import annotations

import argparse

from harness.images.catalog import KINDS, SUITES, targets
from harness.ui import LazyConsole

console = LazyConsole()


def register(sub: argparse._SubParsersAction) -> None:
    images = sub.add_parser("images", help="build and list container images").add_subparsers(
        dest="images_cmd", required=True
    )
    p = images.add_parser(
        "build", help="build base and component images (unchanged ones are skipped)"
    )
    p.add_argument("kinds", nargs="*", metavar="KIND", help=f"of {', '.join(KINDS)} (all)")
    p.add_argument("--suite", action="append", choices=SUITES, help="Debian suite (all)")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.set_defaults(func=cmd_build)
    p = images.add_parser("list", help="the images the harness knows, and which are here")
    p.set_defaults(func=cmd_list)


def cmd_build(args: argparse.Namespace) -> int:
    from harness.images.build import build

    pairs = targets(args.kinds or None, args.suite)
    console.print(f"building {len(pairs)} images: " + ", ".join(f"{k}:{s}" for k, s in pairs))
    done, failed = build(
        pairs, lambda line: console.print(line, highlight=False, soft_wrap=True), force=args.force
    )
    from rich.table import Table

    table = Table(title="images")
    for col in ("image", "", "seconds", "MB"):
        table.add_column(col)
    for b in done:
        table.add_row(b.name, b.action, f"{b.seconds:.1f}", f"{b.size_mb:.0f}")
    console.print(table)
    if failed:
        console.print(f"[red]{len(failed)} image(s) failed:[/]")
        for exc in failed:
            console.print("  " + str(exc).splitlines()[0], highlight=False, soft_wrap=True)
        return 1
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from harness.images.build import Builder, _label

    b = Builder(lambda _: None)
    table = Table(title="rtc-harness images")
    for col in ("image", "local", "up to date", "MB"):
        table.add_column(col)
    for kind, suite in [("base", s) for s in SUITES] + targets(None, None):
        name = f"rtc-harness/{kind}:{suite}"
        have = _label(b.client, name)
        if have is None:
            table.add_row(name, "[yellow]no[/]", "", "")
            continue
        fresh = "[green]yes[/]" if have == b.wanted(kind, suite) else "[yellow]no: rebuild[/]"
        size = f"{b.client.images.get(name).attrs.get('Size', 0) / 1e6:.0f}"
        table.add_row(name, "[green]yes[/]", fresh, size)
    console.print(table)
    return 0
