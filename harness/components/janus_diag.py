"""Janus's SIP stack's ACK race, named from Janus's log.

Janus's SIP plugin acknowledges a 200 OK to its INVITE itself (NUTAG_AUTOACK(FALSE);
`nua_ack` from its `nua_r_invite` handler, janus_sip.c). That handler runs in the
account's sofia thread, while sofia-sip's stack runs in a thread of its own (nua_create
starts it with su_clone_start): `nua_ack` is a signal the stack handles later. If the
INVITE's 180 reaches Janus after its 200 (a proxy relaying them out of order: Kamailio's
workers do, on UDP and on TLS) and the stack reads that 180 before the ACK signal,
nta passes the stale 1xx to nua (nta.c outgoing_recv), nua_client_response sets the
request's status back to 180 (nua_client.c), and nua_stack_ack refuses the ACK with
`900 No response to ACK` (nua_session.c). No ACK is ever sent: nta swallows the 200's
retransmissions as duplicates, the INVITE stays pending and a later re-INVITE (the SIP
plugin's `update`) queues behind it for ever.

Janus is started with sofia-sip's TPORT_LOG=1 (janus.py), which logs every SIP message
it sends and receives with a microsecond time: the order is then in the log. Older logs
hold only the 900 line, and the diagnosis says the order is unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.logfinding import LogFinding

REFUSED = "No response to ACK"
"""sofia-sip's nua_i_error phrase, logged by Janus (WARN) as `[user][nua_i_error]: 900 ...`."""

_HEAD = re.compile(r"^(recv|send) \d+ bytes (?:from|to) \S+ at (\d\d):(\d\d):(\d\d(?:\.\d+)?):\s*$")
_STATUS = re.compile(r"^SIP/2\.0 (\d{3}) ?(.*)$")
_CSEQ = re.compile(r"^CSeq:\s*(\d+)\s+(\S+)", re.IGNORECASE)
_CALL_ID = re.compile(r"^(?:Call-ID|i):\s*(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class SipLine:
    """One message of sofia-sip's TPORT_LOG: direction, time of day (s), first line, CSeq."""

    direction: str  # "recv" or "send"
    t: float
    first: str
    cseq: int
    method: str
    call_id: str

    @property
    def status(self) -> int | None:
        m = _STATUS.match(self.first)
        return int(m.group(1)) if m else None


def tport_messages(text: str) -> list[SipLine]:
    """The SIP messages in a log written with TPORT_LOG=1 (each block: a `recv/send N
    bytes ... at HH:MM:SS.micro:` line, then the message indented by three spaces)."""
    out: list[SipLine] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _HEAD.match(line)
        if not m:
            continue
        t = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
        first, cseq, method, call_id = "", 0, "", ""
        for body in lines[i + 1 : i + 60]:
            if _HEAD.match(body) or not body.startswith("   "):
                break
            s = body.strip()
            if not s or s.startswith("---"):
                continue
            if not first:
                first = s
            elif (c := _CSEQ.match(s)) and not method:
                cseq, method = int(c.group(1)), c.group(2).upper()
            elif (c := _CALL_ID.match(s)) and not call_id:
                call_id = c.group(1)
        if first:
            out.append(SipLine(m.group(1), t, first, cseq, method, call_id))
    return out


def late_provisionals(msgs: list[SipLine]) -> list[tuple[SipLine, SipLine]]:
    """(2xx, 1xx) pairs: a provisional response to an INVITE received after a 2xx to that
    same INVITE and before Janus sent the ACK for it (the window of the race)."""
    out: list[tuple[SipLine, SipLine]] = []
    first_2xx: dict[tuple[str, int], SipLine] = {}
    acked: set[tuple[str, int]] = set()
    for m in msgs:
        key = (m.call_id, m.cseq)
        if m.direction == "send" and m.first.startswith("ACK ") and m.method == "ACK":
            acked.add(key)
            continue
        if m.direction != "recv" or m.method != "INVITE" or m.status is None:
            continue
        if 200 <= m.status < 300:
            first_2xx.setdefault(key, m)
        elif m.status < 200 and key in first_2xx and key not in acked:
            out.append((first_2xx[key], m))
    return out


def diagnose(text: str) -> LogFinding | None:
    """What Janus's log says about the ACK race, or None when its SIP stack never refused
    an ACK. The race is known (the run's failures its consequences) only when the log's
    TPORT_LOG messages show the late 1xx inside the ACK's window; a refusal without that
    evidence is named, not excused."""
    if REFUSED not in text:  # every run reads its Janus's log: the usual answer, quickly
        return None
    refusals = sum(REFUSED in line and "nua_i_error" in line for line in text.splitlines())
    if not refusals:
        return None
    msgs = tport_messages(text)
    late = late_provisionals(msgs)
    base = (
        f"Janus's SIP stack (sofia-sip) refused the ACK for a 200 OK to its INVITE "
        f"({refusals}x nua_i_error 900 {REFUSED})"
    )
    if late:
        ok, prov = late[0]
        acks = [
            m
            for m in msgs
            if m.direction == "send"
            and m.method == "ACK"
            and (m.call_id, m.cseq) == (ok.call_id, ok.cseq)
        ]
        return LogFinding(
            f"{base}: the ACK race of a late provisional: '{prov.first}' to CSeq {prov.cseq} "
            f"INVITE reached Janus {1000 * (prov.t - ok.t):.3f} ms after its '{ok.first}' and "
            f"before the ACK, and reset the request's status (sofia-sip nta passes a 1xx after "
            f"a 2xx; nua_ack is a signal to the stack thread); "
            + ("no ACK was sent" if not acks else f"{len(acks)} ACK(s) sent later"),
            known_race=not acks,
        )
    if msgs:
        return LogFinding(f"{base}, with no 1xx after a 2xx in its SIP log: not the known race")
    return LogFinding(
        f"{base} (no SIP message log: the order of the 180 and the 200 at Janus is unknown)"
    )
