"""The summary of one capture: a plain dict for `--json`, rich tables for people."""

from __future__ import annotations

from collections import Counter
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis import exitkeep
from harness.analysis.analyzer import analyze_file, paused_gc
from harness.analysis.channelsummary import channels, lines
from harness.analysis.model import SdpEvent, fmt_addr
from harness.analysis.sdp_conformance import captured
from harness.analysis.sdplint import Finding
from harness.analysis.session import Session, build

if TYPE_CHECKING:
    from rich.console import Console

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
            g = generation.get(u)
            if g is not None and (gen is None or g < gen):
                gen = g
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
            "generations": [
                {
                    "ufrags": list(g.ufrags),
                    "first_frame": g.first[0],
                    "first_time": g.first[1],
                    "connected": g.connected,
                    "selected": g.selected.name if g.selected else None,
                    "selected_type": g.selected.kind if g.selected else None,
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
                for g in s.generations
            ],
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
                    }
                    for t in d.transactions
                ],
                "reinvites": len(d.reinvites),
            }
            for d in s.dialogs
        ],
        "sdp": sdps,
    }


def render(data: dict[str, Any], console: Console) -> None:
    """Readable tables for one file's summary."""
    from rich.table import Table

    console.rule(f"[bold]{data['file']}[/] ({data['format']}, {data['packets']} packets)")
    for err in data["errors"]:
        console.print(f"[red]file: {err}[/]")
    if data["skipped"] or data["malformed"]:
        console.print(f"not analysed: {data['skipped']}  malformed: {data['malformed']}")
    t = Table("flow", "packets", "first", "last", "kinds", title="Flows")
    for f in data["flows"]:
        kinds = ", ".join(f"{k} {v}" for k, v in f["kinds"].items())
        t.add_row(
            f["flow"], str(f["packets"]), f"{f['first_time']:.3f}", f"{f['last_time']:.3f}", kinds
        )
    console.print(t)
    if data["stun"]:
        console.print("STUN: " + ", ".join(f"{k} {v}" for k, v in sorted(data["stun"].items())))
    for g in data["ice"]["generations"]:
        t = Table(
            "pair",
            "type",
            "checks",
            "ok",
            "nominated",
            "first media",
            title=f"ICE generation {'/'.join(g['ufrags'])}",
        )
        for p in g["pairs"]:
            media = f"frame {p['first_media'][0]}" if p["first_media"] else "-"
            t.add_row(
                p["pair"],
                p["type"],
                str(p["requests"]),
                str(p["successes"]),
                "yes" if p["nominated"] else "",
                media,
            )
        console.print(t)
        console.print(f"  selected: {g['selected']} ({g['selected_type']})")
    for r in data["ice"]["restarts"]:
        ttc = f"{r['time_to_connect']:.3f}s" if r["time_to_connect"] is not None else "never"
        console.print(
            f"ICE restart {r['index']}: started frame {r['started'][0]}, connected after {ttc}"
        )
    for h in data["dtls"]:
        console.print(
            f"DTLS {h['client']} -> {h['server']}: complete={h['complete']} srtp={h['srtp_profile']} "
            f"ems={h['extended_master_secret']} messages={h['messages']}"
        )
        for side, fp in h["certificate_fingerprints"].items():
            console.print(f"  {side} certificate sha-256 {fp}")
        for alert in h["alerts"]:
            console.print(f"  [red]alert frame {alert[0]}: {alert[1]} {alert[2]}[/]")
    if data.get("dtls_decrypted"):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(data["dtls_decrypted"].items()))
        console.print(f"DTLS decrypted with the key log: {counts}")
    for line in lines(data.get("datachannels", [])):
        console.print(line, markup=False)
    if data["rtp"]:
        t = Table(
            "ssrc",
            "flow",
            "pt",
            "pkts",
            "lost",
            "reord",
            "jitter ms",
            "max gap ms",
            "t",
            title="RTP streams",
        )
        for st in data["rtp"]:
            t.add_row(
                st["ssrc"], st["flow"], ",".join(map(str, st["payload_types"])), str(st["packets"]),
                str(st["lost"]), str(st["reordered"]), f"{st['jitter_ms']:.2f}", f"{st['max_gap_s'] * 1000:.1f}",
                f"{st['first_time']:.2f}-{st['last_time']:.2f}",
            )  # fmt: skip
        console.print(t)
    if data["rtcp"]:
        console.print("RTCP: " + ", ".join(f"{k} {v}" for k, v in sorted(data["rtcp"].items())))
    for d in data["sip"]:
        console.print(f"SIP dialog {d['call_id']}: {d['state']}, re-INVITEs {d['reinvites']}")
        for m in d["messages"]:
            console.print(
                f"  frame {m['frame']} t={m['time']:.3f} [{m['transport']}] {m['summary']}"
            )
    for sd in data["sdp"]:
        console.print(
            f"SDP {sd['type']} frame {sd['frame']} via {sd['source']} ({sd['profile']} profile): {len(sd['findings'])} finding(s)"
        )
        for f in sd["findings"]:
            where = f"line {f['line_no']}: {f['line']}" if f["line_no"] else "(missing)"
            console.print(f"  {f['severity']}: {where}: {f['message']} [{f['rfc']}]", markup=False)
