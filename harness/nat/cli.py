"""`harness nat probe LAB NODE`: measure the NAT in front of a node of a running lab."""

from __future__ import annotations

import argparse


def cmd_probe(args: argparse.Namespace) -> int:
    from harness.lab import Lab
    from harness.nat.probe import probe_nat

    lab = Lab.attach(args.lab)
    idle = [float(t) for t in args.idle.split(",")] if args.idle else []
    result = probe_nat(lab, args.node, args.iface, args.server, idle=idle)
    if args.json:
        print(result.to_json())
    else:
        print("\n".join(result.summary()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    nat = sub.add_parser("nat", help="NAT behaviours (RFC 4787)").add_subparsers(
        dest="nat_command", required=True, metavar="NATCOMMAND"
    )
    p = nat.add_parser("probe", help="RFC 5780 behaviour discovery from a node of a running lab")
    p.add_argument("lab", help="name of a running lab (harness lab list)")
    p.add_argument("node")
    p.add_argument("--iface", help="interface to probe through (default: the default route's)")
    p.add_argument("--server", help="public host for the probe server (default: found)")
    p.add_argument(
        "--idle", metavar="S[,S...]", help="also test if a mapping outlives these idle seconds"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_probe)
