"""The summary of one capture: the plain dict `--json` prints (textreport.py draws it for people)."""

from __future__ import annotations

from collections import Counter
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

from harness.analysis import exitkeep
from harness.analysis.analyzer import analyze_file, paused_gc
from harness.analysis.channelsummary import channels
from harness.analysis.model import SdpEvent, fmt_addr
from harness.analysis.sdp_conformance import captured
from harness.analysis.sdplint import Finding
from harness.analysis.session import IceGeneration, Session, build

_type, _packets = attrgetter("type"), attrgetter("packets")
_to_dict = Finding.to_dict


def summarize_file(
    path: Path | str, keylog: Path | str | None = None
) -> tuple[Session, dict[str, Any]]:
    """Analyse one file: its session model and its summary (what `harness analyze` prints)."""
    with paused_gc():
        session = build(analyze_file(path, keylog))
        return session, summary(session)


def summary(s: Session) -> dict[str, Any]:
    """Everything `harness analyze --json` prints for one file."""
    a = s.analysis
    sdps = []
    first: dict[int, SdpEvent] = {}  # id of each parsed SDP -> the first event that carried it
    for e in a.sdp:
        first.setdefault(id(e.sdp), e)
    generation: dict[str, int] = {}  # ufrag -> the first generation that used it
    for i, g in enumerate(s.generations):
        for u in g.ufrags:
            generation.setdefault(u, i)
    reports = captured(a.sdp)
    exitkeep.keep(reports)
    for rep in reports:
        d = rep.description
        ev, findings = first[id(d.sdp)], rep.findings
        sdp = ev.sdp
        ufrags = sdp.ice_ufrags
        gen = None  # the first generation any of its ufrags started
        for u in ufrags:
            first_gen = generation.get(u)
            if first_gen is not None and (gen is None or first_gen < gen):
                gen = first_gen
        sdps.append(
            {
                "frame": ev.frame,
                "time": ev.time,
                "source": ev.source,
                "type": ev.type,
                "dialog": ev.dialog,
                "src": fmt_addr(ev.src),
                "dst": fmt_addr(ev.dst),
                "ice_ufrags": ufrags,
                "ice_generation": gen,
                "fingerprints": sdp.fingerprints,
                "profile": d.profile,
                "findings": list(map(_to_dict, findings)) if findings else [],
                "text": sdp.text,
            }
        )
    return {
        "file": str(a.path),
        "format": a.read.format,
        "link_types": sorted(a.read.linktypes),
        "packets": a.packets,
        "start_time": a.start_time,
        "errors": a.read.errors,
        "truncated": a.read.truncated,
        "skipped": dict(a.skipped),
        "malformed": dict(a.malformed),
        "flows": [f.to_dict() for f in a.flows],
        "stun": s.stun_kinds,
        "stun_fingerprint_failures": s.stun_fingerprint_failures,
        "ice": {
            "generations": list(map(_generation, s.generations)),
            "restarts": [
                {
                    "index": r.index,
                    "old_ufrags": list(r.old_ufrags),
                    "new_ufrags": list(r.new_ufrags),
                    "started": r.started,
                    "connected": r.connected,
                    "media": r.media,
                    "time_to_connect": r.time_to_connect,
                    "time_to_media": r.time_to_media,
                }
                for r in s.restarts
            ],
        },
        "dtls": [
            {
                "client": fmt_addr(h.client),
                "server": fmt_addr(h.server),
                "relayed": h.relayed,
                "start": h.start,
                "end": h.end,
                "complete": h.complete,
                "messages": dict(h.messages),
                "certificate_fingerprints": {k: v[1] for k, v in h.fingerprints.items()},
                "srtp_profile": h.srtp_profile,
                "extended_master_secret": h.extended_master_secret,
                "alerts": h.alerts,
            }
            for h in s.handshakes
        ],
        "dtls_decrypted": dict(a.decrypted),
        "datachannels": channels(a.datachannel),
        "rtp": [st.to_dict() for st in a.rtp_streams],
        "rtcp": dict(Counter(map(_type, chain.from_iterable(map(_packets, a.rtcp))))),
        "sip": [
            {
                "call_id": d.call_id,
                "state": d.state,
                "messages": [
                    {
                        "frame": e.frame,
                        "time": e.time,
                        "transport": e.transport,
                        "summary": e.msg.summary,
                    }
                    for e in d.events
                ],
                "transactions": [
                    {
                        "method": t.method,
                        "branch": t.branch,
                        "requests": t.requests,
                        "final": t.final,
                        "late_provisional": t.late_provisional,
                    }
                    for t in d.transactions
                ],
                "reinvites": len(d.reinvites),
            }
            for d in s.dialogs
        ],
        "sdp": sdps,
    }


def _generation(g: IceGeneration) -> dict[str, Any]:
    """One ICE generation as `--json` prints it (its selected pair found once)."""
    selected = g.selected
    return {
        "ufrags": list(g.ufrags),
        "first_frame": g.first[0],
        "first_time": g.first[1],
        "connected": g.connected,
        "selected": selected.name if selected else None,
        "selected_type": selected.kind if selected else None,
        "pairs": [
            {
                "pair": p.name,
                "type": p.kind,
                "candidate_types": list(p.types),
                "relayed": p.relayed,
                "requests": p.requests,
                "successes": p.successes,
                "errors": p.errors,
                "nominated": p.nominated,
                "first_check": p.first_check,
                "first_success": p.first_success,
                "first_media": p.first_media,
                "integrity_checked": p.integrity_checked,
                "integrity_failures": p.integrity_failures,
            }
            for p in g.pairs
        ],
    }
