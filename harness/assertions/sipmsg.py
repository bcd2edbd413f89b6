"""`sip_messages`: SIP requests and responses on the wire, by method, status, header and body.

One check for many gateway claims: a 401/407 challenge and the request answered after
it, a 403 for a wrong password, MESSAGE bodies, INFO DTMF, REFER, direction
attributes in re-INVITE SDPs. Evidence lists every matching message with its frame.
"""

from __future__ import annotations

import re
from typing import Any

from harness.analysis.model import SipEvent, fmt_addr
from harness.analysis.session import Session
from harness.assertions.params import IP_ADDRESS, Regex, bounds, limits, unseen
from harness.assertions.registry import Outcome, check


def _line(e: SipEvent) -> str:
    m = e.msg
    return (
        f"frame {e.frame} t={e.time:.3f}s {e.transport} {fmt_addr(e.src)} > {fmt_addr(e.dst)} "
        f"{m.summary} CSeq {m.header('cseq')} Call-ID {m.call_id}"
    )


def _matches(e: SipEvent, p: dict[str, Any], rx: dict[str, re.Pattern[str]]) -> bool:
    m = e.msg
    if "method" in p:
        method = m.method if m.status is None else m.cseq[1]
        if method != p["method"]:
            return False
    if "status" in p and m.status != p["status"]:
        return False
    if p.get("request") is True and m.status is not None:
        return False
    if "header" in rx:
        name, _, _ = p["header"].partition(":")
        values = m.headers.get(name.strip().lower(), [])
        if not any(rx["header"].search(f"{name.strip()}: {v}") for v in values):
            return False
    if "body" in rx and not rx["body"].search(m.body):
        return False
    return not ("from_host" in p and e.src[0] != p["from_host"])


def _after(sip: list[SipEvent], found: list[SipEvent], status: int) -> list[SipEvent]:
    """The messages of `found` captured after a `status` response to the same request."""
    first: dict[tuple[str, tuple[int, str]], int] = {}  # (Call-ID, CSeq) -> its frame
    for e in sip:
        if e.msg.status == status:
            first.setdefault((e.msg.call_id, e.msg.cseq), e.frame)
    out = []
    for e in found:
        frame = first.get((e.msg.call_id, e.msg.cseq))
        if frame is not None and frame < e.frame:
            out.append(e)
    return out


@check(
    "sip_messages",
    method=str,
    status=int,
    request=bool,
    header=Regex(),
    body=Regex(),
    from_host=IP_ADDRESS,
    after_status=int,
    min=int,
    max=int,
    count=int,
)
def sip_messages(s: Session, p: dict[str, Any]) -> Outcome:
    """SIP messages of `method` (a response's CSeq method), `status` (a response code) or
    `request: true`, whose `header` ("Name: regex") and `body` (regex) match, sent from
    `from_host`, and (`after_status`) captured after a response of that status to the same
    request (Call-ID and CSeq: a 180 behind its 200, reordered on the way); their number
    within min/max/count (default at least one); zero needs SIP in the capture to tell."""
    rx: dict[str, re.Pattern[str]] = {
        k: re.compile(p[k], re.M) for k in ("header", "body") if k in p
    }
    found = [e for e in s.analysis.sip if _matches(e, p, rx)]
    if "after_status" in p:
        found = _after(s.analysis.sip, found, p["after_status"])
    what = " ".join(
        f"{k}={p[k]}"
        for k in ("method", "status", "request", "header", "body", "from_host", "after_status")
        if k in p
    )
    ev = [_line(e) for e in found[:20]]
    if "body" in rx:
        ev += [
            f"frame {e.frame} body: {m.group(0)!r}"
            for e in found[:5]
            if (m := rx["body"].search(e.msg.body))
        ]
    bound = limits(p)
    why = unseen(bound, bool(s.analysis.sip), "SIP") or bounds(len(found), bound)
    msg = f"{len(found)} SIP message(s) with {what or 'any'}" + (f": {why}" if why else "")
    return Outcome(why is None, msg, ev, "RFC 3261")
