"""Negative expectations: what must NOT happen on the wire, each with positive evidence.

A negative check never passes on an empty capture: "ICE did not connect" needs
checks that were sent and went unanswered; "no RTP from A to B" needs RTP that
was seen elsewhere in the capture. Otherwise a capture at the wrong place (or a
peer that never started) would pass for the wrong reason.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.model import fmt_addr
from harness.analysis.session import Session
from harness.assertions.checks import _generations
from harness.assertions.params import ADDRESS_PREFIX
from harness.assertions.registry import Outcome, check


@check("ice_not_connected", min_checks=int)
def ice_not_connected(s: Session, p: dict[str, Any]) -> Outcome:
    """No ICE candidate pair succeeded, and at least min_checks (default 1) checks were sent."""
    pairs = [pair for g in s.generations for pair in g.pairs]
    sent = sum(pair.requests for pair in pairs)
    answered = [pair for pair in pairs if pair.successes]
    ev = _generations(s)
    if answered:
        first = min(answered, key=lambda x: x.first_success or (0, 0.0))
        frame, t = first.first_success or (0, 0.0)
        return Outcome(
            False,
            f"ICE connected: pair {first.name} [{first.kind}] succeeded at frame {frame} t={t:.3f}s",
            ev,
            "RFC 8445 7.2.5",
        )
    need = p.get("min_checks", 1)
    if sent < need:
        return Outcome(
            False,
            f"{sent} connectivity check(s) in the capture, fewer than {need}: "
            "nothing shows ICE was tried here",
            ev,
            "RFC 8445 7.2.5",
        )
    return Outcome(
        True,
        f"{sent} connectivity check(s) sent on {len(pairs)} pair(s), none answered",
        ev,
        "RFC 8445 7.2.5",
    )


@check("no_rtp", src=ADDRESS_PREFIX, dst=ADDRESS_PREFIX)
def no_rtp(s: Session, p: dict[str, Any]) -> Outcome:
    """No RTP from `src` to `dst` (each an address or address:port prefix; either may be
    left out); the capture must hold RTP otherwise, so an empty capture does not pass."""
    src, dst = p.get("src", ""), p.get("dst", "")
    flows = [f for f in s.analysis.flows if f.streams]
    ev = [
        f"RTP {fmt_addr(f.src)} > {fmt_addr(f.dst)}: {f.packets} pkts, frames {f.first_frame}-, "
        f"t={f.first_t:.3f}-{f.last_t:.3f}s"
        for f in flows
    ]
    bad = [f for f in flows if fmt_addr(f.src).startswith(src) and fmt_addr(f.dst).startswith(dst)]
    what = f"{src or 'anywhere'} > {dst or 'anywhere'}"
    if bad:
        return Outcome(
            False,
            f"RTP flows {what}: {sum(f.packets for f in bad)} packet(s) on {len(bad)} flow(s)",
            ev,
            "RFC 3550",
        )
    if not flows:
        return Outcome(
            False, f"no RTP at all in the capture: cannot tell {what} is silent", ev, "RFC 3550"
        )
    return Outcome(True, f"no RTP {what}; {len(flows)} other RTP flow(s) seen", ev, "RFC 3550")
