"""`sdp_attribute`: an SDP attribute that offers or answers on the wire must (or must not)
carry, per media section; e.g. RFC 8842's `a=tls-id` in DTLS answers, which one
component release adds and an older one lacks (a verdict `harness bisect` can follow)."""

from __future__ import annotations

from typing import Any

from harness.analysis.session import Session
from harness.assertions.params import Choice
from harness.assertions.registry import Outcome, check


@check(
    "sdp_attribute",
    required=("attr",),
    attr=str,
    role=Choice(("offer", "answer", "pranswer", "any")),
    present=bool,
    proto=str,
    rfc=str,
)
def sdp_attribute(s: Session, p: dict[str, Any]) -> Outcome:
    """Every captured SDP of `role` (offer, answer or any) has a=`attr` in each m= section
    whose protocol contains `proto` (default: every section); `present: false` inverts."""
    attr, role, want = p["attr"], p.get("role", "any"), p.get("present", True)
    proto, rfc = p.get("proto", ""), p.get("rfc", "RFC 8866 6")
    ev, bad, seen = [], 0, 0
    for e in s.analysis.sdp:
        if role != "any" and e.type != role:
            continue
        for m in e.sdp.media:
            if proto not in m.proto:
                continue
            seen += 1
            has = m.has(attr) or e.sdp.attr(attr) is not None
            bad += has != want
            value = e.sdp.media_attr(m, attr)
            ev.append(
                f"SDP {e.type or 'offer'} frame {e.frame} ({e.source}) m={m.kind} "
                f"{m.proto}: " + (f"a={attr}:{value}" if has else f"no a={attr}")
            )
    if not seen:
        return Outcome(False, f"no SDP {role} with a {proto or 'media'} section", ev, rfc)
    what = "with" if want else "without"
    return Outcome(bad == 0, f"{seen - bad}/{seen} m= sections {what} a={attr}", ev, rfc)
