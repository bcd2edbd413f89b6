"""Checks on TURN as the wire shows it: the relayed addresses a server hands out, and
the media that crosses an address (a NAT router's port forward) outside any TURN tunnel.

For a TURN server behind a NAT the relayed address (XOR-RELAYED-ADDRESS, RFC 8656
7.3) must be the public one; the private one makes every peer's checks go nowhere.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.model import fmt_addr
from harness.analysis.session import Session
from harness.assertions.params import bounds
from harness.assertions.registry import Outcome, check


@check("turn_relayed_address", required=("address",), address=str, min=int)
def turn_relayed_address(s: Session, p: dict[str, Any]) -> Outcome:
    """Every Allocate success response carries XOR-RELAYED-ADDRESS with IP `address`,
    and there are at least `min` (default 1) of them."""
    allocs = [
        e
        for e in s.analysis.stun
        if e.msg.method == "Allocate" and e.msg.cls == "success" and e.msg.xor_relayed
    ]
    ev = [
        f"frame {e.frame} t={e.time:.3f}s {fmt_addr(e.src)} > {fmt_addr(e.dst)} Allocate success "
        f"XOR-RELAYED-ADDRESS {', '.join(fmt_addr(a) for a in e.msg.xor_relayed)}"
        for e in allocs[:20]
    ]
    want = p["address"]
    wrong = [e for e in allocs if any(a[0] != want for a in e.msg.xor_relayed)]
    if wrong:
        e = wrong[0]
        got = ", ".join(fmt_addr(a) for a in e.msg.xor_relayed)
        return Outcome(
            False,
            f"{len(wrong)} of {len(allocs)} allocation(s) relay at another address than {want} "
            f"(first: frame {e.frame}, {got})",
            ev,
            "RFC 8656 7.3",
        )
    why = bounds(len(allocs), {"min": p.get("min", 1)})
    if why:
        return Outcome(False, f"{len(allocs)} Allocate success response(s): {why}", ev, "RFC 8656")
    return Outcome(True, f"{len(allocs)} allocation(s), all relayed at {want}", ev, "RFC 8656 7.3")


@check("rtp_through", required=("address",), address=str, min_packets=int)
def rtp_through(s: Session, p: dict[str, Any]) -> Outcome:
    """RTP on the wire (not inside a TURN tunnel) both to and from `address` (an address or
    address:port prefix), each way at least `min_packets` (default 10)."""
    addr, need = p["address"], p.get("min_packets", 10)
    flows = [f for f in s.analysis.flows if f.streams and not f.via]
    ev = [
        f"RTP {fmt_addr(f.src)} > {fmt_addr(f.dst)}: {f.packets} pkts, frames {f.first_frame}-, "
        f"t={f.first_t:.3f}-{f.last_t:.3f}s"
        for f in flows[:20]
    ]
    to = sum(f.packets for f in flows if fmt_addr(f.dst).startswith(addr))
    back = sum(f.packets for f in flows if fmt_addr(f.src).startswith(addr))
    ok = to >= need and back >= need
    return Outcome(
        ok,
        f"RTP to {addr}: {to} packet(s), from it: {back} (need {need} each way)",
        ev,
        "RFC 3550",
    )
