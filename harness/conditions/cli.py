"""`harness lab measure`: send a probe flow across a running lab's links and report."""

from __future__ import annotations

import argparse
import json
from ipaddress import IPv4Network
from typing import Any

from harness.errors import LabError


def cmd_lab_measure(args: argparse.Namespace) -> int:
    from harness.conditions.apply import shape_link
    from harness.conditions.measure import measure
    from harness.lab import Lab

    lab = Lab.attach(args.name)
    node = lab.topology.node(args.node)
    iface = node.iface(args.iface).name
    shaper = None
    if args.profile or args.set:
        spec: dict[str, Any] = json.loads(args.set) if args.set else {}
        if args.profile:
            spec["profile"] = args.profile
        shaper = shape_link(lab, args.node, iface, spec, seed=args.seed)
    results = {}
    far = lab.topology.node(args.to)
    here = node.iface(iface)
    reachable = here.address in PUBLIC or any(
        i.network == here.network for i in far.interfaces.values()
    )
    if args.direction == "down" and not reachable:
        raise LabError(
            f"{args.to} cannot send to {args.node}.{iface} ({here.address}): it is behind a NAT; "
            f"measure `up`, or measure `down` on the link of a public node"
        )
    if args.direction == "both" and not reachable:
        print(f"note: {args.node}.{iface} is behind a NAT, so only `up` is measured")
        args.direction = "up"
    try:
        for direction, (src, dst, src_iface) in {
            "up": (args.node, args.to, iface),
            "down": (args.to, args.node, None),
        }.items():
            if args.direction not in (direction, "both"):
                continue
            results[direction] = measure(
                lab,
                src,
                dst,
                rate=args.rate,
                count=args.count,
                size=args.size,
                src_iface=src_iface,
                dst_address=str(node.iface(iface).address) if direction == "down" else None,
                linger=args.linger,
            )
    finally:
        if shaper is not None:
            shaper.close()
    if args.json:
        print(json.dumps({d: r.summary() for d, r in results.items()}, indent=2))
    else:
        for direction, r in results.items():
            print(
                f"{args.node}.{iface} {direction} ({'from' if direction == 'up' else 'to'} node):"
            )
            for line in r.lines():
                print("  " + line)
    return 0


PUBLIC = IPv4Network("198.18.0.0/15")


def register(sub: Any) -> None:
    """Attach `measure` to the `harness lab` subcommands."""
    p = sub.add_parser(
        "measure",
        help="send a probe flow across a link and report delay, loss, reordering, rate",
        description="Probe NODE.IFACE of a running lab: 'up' sends from NODE to --to, "
        "'down' from --to to NODE. With --profile/--set the link is shaped for the "
        "measurement only (it must not be shaped already).",
    )
    p.add_argument("name", help="lab name (harness lab list)")
    p.add_argument("node")
    p.add_argument("iface")
    p.add_argument("--to", required=True, help="the node at the other end of the flow")
    p.add_argument("--direction", choices=["up", "down", "both"], default="both")
    p.add_argument("--rate", type=float, default=500.0, help="packets/s (default 500)")
    p.add_argument("--count", type=int, default=2500, help="packets (default 2500)")
    p.add_argument("--size", type=int, default=172, help="UDP payload bytes (default 172)")
    p.add_argument("--linger", type=float, default=1.0, help="s to wait for late packets")
    p.add_argument("--profile", help="shape the link with this profile while measuring")
    p.add_argument("--set", help='shape with a LinkSpec in JSON, e.g. \'{"up": {"delay": 50}}\'')
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lab_measure)
