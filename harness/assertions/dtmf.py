"""`telephone_events`: the DTMF digits (RFC 4733) on a capture, as sent by one host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.dtmf import read_events, telephone_event_pts
from harness.analysis.session import Session
from harness.assertions.params import IP_ADDRESS, bounds, limits, unseen
from harness.assertions.registry import CheckError, Outcome, check


@check(
    "telephone_events",
    digits=str,
    from_host=IP_ADDRESS,
    pt=int,
    encrypted=bool,
    count=int,
    min=int,
)
def telephone_events(s: Session, p: dict[str, Any]) -> Outcome:
    """RFC 4733 events sent by `from_host`: their digits in order equal `digits` (each with
    an end packet), or with `encrypted: true` (SRTP) their number is `count`/`min` (zero needs
    RTP in the capture to tell)."""
    pts = {p["pt"]} if "pt" in p else telephone_event_pts([e.sdp.text for e in s.analysis.sdp])
    if not pts:
        raise CheckError("no telephone-event payload type in the capture's SDPs (give `pt`)")
    path = Path(s.analysis.path)
    events = read_events(path, pts, bool(p.get("encrypted")))
    if "from_host" in p:
        events = [e for e in events if e.src.rsplit(":", 1)[0] == p["from_host"]]
    ev = [
        f"frame {e.first_frame} t={e.t:.3f}s {e.src} > {e.dst} pt {e.pt} ts {e.timestamp}: "
        + (
            f"event {e.code} ({e.digit}) duration {e.duration} end {e.end}, {e.packets} pkts"
            if e.code is not None
            else f"{e.packets} pkts (encrypted)"
        )
        for e in events[:30]
    ]
    who = f" from {p['from_host']}" if "from_host" in p else ""
    if p.get("encrypted"):
        bound = limits(p)
        rtp = any(f.streams for f in s.analysis.flows)
        why = unseen(bound, rtp, "RTP") or bounds(len(events), bound)
        msg = f"{len(events)} telephone-event(s){who} (pt {sorted(pts)}, encrypted)"
        return Outcome(why is None, msg + (f": {why}" if why else ""), ev, "RFC 4733")
    got = "".join(e.digit for e in events)
    unended = [e for e in events if not e.end]
    msg = f"telephone-events{who}: {got!r} (pt {sorted(pts)})"
    if "digits" in p and got != p["digits"]:
        return Outcome(False, f"{msg}, expected {p['digits']!r}", ev, "RFC 4733")
    if unended:
        return Outcome(False, f"{msg}; {len(unended)} without an end packet", ev, "RFC 4733")
    if not events:
        return Outcome(False, f"no telephone-event{who}", ev, "RFC 4733")
    return Outcome(True, msg, ev, "RFC 4733")
