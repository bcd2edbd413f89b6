"""Ladder diagram of a run: who said what to whom, when, across every node (SVG).

Messages come from every capture of the run but each is drawn once, where it was
first seen (hosts before routers): SIP by Call-ID, CSeq and Via branch (a
retransmission adds a count, not an arrow), JSEP bodies of the Janus API, ICE
checks as one arrow per candidate pair and generation (ufrags), DTLS handshakes by
certificate fingerprints, first and last packet of every SSRC. Steps, peer state
changes and link faults are drawn on the same time axis (seconds since step 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from harness.reports import svg
from harness.reports.runview import RunView

PEER_EVENTS = {"iceconnectionstatechange": "ice", "connectionstatechange": "pc"}
FAULT_STEPS = {"fault", "handoff", "blackout", "kill", "restart_component"}


@dataclass
class LadderEvent:
    t: float  # seconds since the first step
    kind: str  # sip, janus, jsep, ice, ice-fail, dtls, datachannel, media, note, step, fault
    label: str
    src: str  # lane (node name); src == dst for a note
    dst: str
    detail: str = ""
    count: int = 1


def ladder_events(view: RunView) -> list[LadderEvent]:
    """Every event of the run, in time order."""
    out = _sip(view) + _janus(view) + _jsep(view) + _ice(view) + _dtls(view) + _media(view)
    out += _datachannel(view)
    out += _peer_notes(view) + markers(view)
    out.sort(key=lambda e: (e.t, e.kind != "step"))
    return out


def _sip(view: RunView) -> list[LadderEvent]:
    seen: dict[tuple[str, int, str, str, str], tuple[str, LadderEvent]] = {}
    out = []
    for c in view.captures:
        for ev in c.analysis.sip:
            m = ev.msg
            key = (m.call_id, m.cseq[0], m.method, str(m.status or ""), m.branch)
            if key in seen:
                cap, first = seen[key]
                first.count += cap == c.name  # a retransmission on the same wire
                continue
            label = m.summary if m.is_request else f"{m.status} {m.reason} ({m.cseq[1]})"
            if m.is_request:
                label = m.method
            label += " +SDP" if m.has_sdp else ""
            detail = f"Call-ID {m.call_id} CSeq {m.cseq[0]} {ev.transport} {c.name} #{ev.frame}"
            e = LadderEvent(
                view.rel(c, ev.time), "sip", label, *_ends(view, ev.src, ev.dst), detail
            )
            seen[key] = (c.name, e)
            out.append(e)
    return out


def _janus(view: RunView) -> list[LadderEvent]:
    """Janus API requests and events (keepalives left out), once per message."""
    seen: dict[tuple[str | None, str, str | None], list[float]] = {}
    out = []
    for c in view.captures:
        for ev in c.analysis.janus:
            t = view.rel(c, ev.time)
            times = seen.setdefault((ev.transaction, ev.label, ev.session), [])
            if any(abs(t - x) < 0.05 for x in times):  # the same message on another wire
                continue
            times.append(t)
            label = f"Janus {ev.label}" + (" +JSEP" if ev.has_jsep else "")
            detail = f"session {ev.session} transaction {ev.transaction} {c.name} #{ev.frame}"
            out.append(LadderEvent(t, "janus", label, *_ends(view, ev.src, ev.dst), detail))
    return out


def _jsep(view: RunView) -> list[LadderEvent]:
    seen: set[tuple[str, str | None, str]] = set()
    out = []
    for c in view.captures:
        for ev in c.analysis.sdp:
            if not ev.source.startswith("jsep"):
                continue
            key = (ev.type, ev.dialog, hashlib.sha1(ev.sdp.text.encode()).hexdigest())
            if key in seen:
                continue
            seen.add(key)
            via = ev.source.partition("/")[2]
            label = f"JSEP {ev.type} ({via})"
            detail = (
                f"session {ev.dialog} ufrags {' '.join(ev.sdp.ice_ufrags)} {c.name} #{ev.frame}"
            )
            out.append(
                LadderEvent(
                    view.rel(c, ev.time), "jsep", label, *_ends(view, ev.src, ev.dst), detail
                )
            )
    return out


def _ice(view: RunView) -> list[LadderEvent]:
    """One arrow per pair per generation; a generation is drawn from the first capture with it."""
    owner: dict[tuple[str, str], str] = {}
    for c in view.captures:
        for g in c.session.generations:
            owner.setdefault(g.ufrags, c.name)
    starts = sorted(
        (view.rel(c, g.first[1]), g.ufrags)
        for c in view.captures
        for g in c.session.generations
        if owner[g.ufrags] == c.name
    )
    number = {u: i + 1 for i, (_, u) in enumerate(starts)}
    out = []
    for c in view.captures:
        for g in c.session.generations:
            if owner[g.ufrags] != c.name:
                continue
            n = number[g.ufrags]
            for p in g.pairs:
                ta, tb = view.candidate_type(p.a, p.types[0]), view.candidate_type(p.b, p.types[1])
                label = f"ICE g{n} {ta}\u2192{tb}: {p.requests} checks, {p.successes} ok"
                if p.nominated:
                    label += ", nominated"
                if p.errors:
                    codes = sorted({code for _, code in p.errors})
                    label += f", errors {'/'.join(map(str, codes))} \u00d7{len(p.errors)}"
                detail = f"ufrags {':'.join(g.ufrags)} {p.name} {c.name} #{p.first_check[0]}"
                kind = "ice" if p.successes else "ice-fail"
                out.append(
                    LadderEvent(
                        view.rel(c, p.first_check[1]), kind, label, *_ends(view, p.a, p.b), detail
                    )
                )
    return out


def _dtls(view: RunView) -> list[LadderEvent]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for c in view.captures:
        frame_times = {ev.frame: ev.time for ev in c.analysis.dtls}
        for i, h in enumerate(c.session.handshakes):
            key = tuple(sorted(fp for _, fp in h.fingerprints.values())) or (c.name, str(i))
            if key in seen:
                continue
            seen.add(key)
            client, server = _ends(view, h.client, h.server)
            detail = f"{h.name} {c.name} #{h.start[0]}"
            out.append(
                LadderEvent(
                    view.rel(c, h.start[1]), "dtls", "DTLS ClientHello", client, server, detail
                )
            )
            if h.end:
                done = f"DTLS done {h.srtp_profile or 'no SRTP'}"
                out.append(LadderEvent(view.rel(c, h.end[1]), "dtls", done, server, client, detail))
            for frame, level, desc in h.alerts:
                out.append(
                    LadderEvent(
                        view.rel(c, frame_times.get(frame, h.start[1])),
                        "fault",
                        f"DTLS alert {level} {desc}",
                        client,
                        server,
                        f"{c.name} #{frame}",
                    )
                )
    return out


#: data channel messages drawn per run (the rest are in `harness analyze --keylog`)
MAX_CHANNEL_MESSAGES = 40


def _datachannel(view: RunView) -> list[LadderEvent]:
    """Data channel opens and messages (decrypted with the run's key logs), once per message."""
    seen: dict[tuple[str, int, str, int, str], list[float]] = {}
    out: list[LadderEvent] = []
    for c in view.captures:
        for ev in c.analysis.datachannel:
            t = view.rel(c, ev.time)
            times = seen.setdefault((ev.label, ev.stream, ev.kind, ev.size, ev.text), [])
            if any(abs(t - x) < 0.05 for x in times) or len(out) >= MAX_CHANNEL_MESSAGES:
                continue  # the same message on another wire (or on both legs of a relay)
            times.append(t)
            if ev.kind == "ack":
                continue
            label = f"DC {ev.label!r} open" if ev.kind == "open" else f"DC {ev.label!r} {ev.kind}"
            if ev.kind != "open":
                label += f" {ev.size} B: {ev.text[:24]}"
            detail = f"stream {ev.stream} {ev.text[:120]} {c.name} #{ev.frame}"
            out.append(LadderEvent(t, "datachannel", label, *_ends(view, ev.src, ev.dst), detail))
    return out


def _media(view: RunView) -> list[LadderEvent]:
    out = []
    for s in view.streams:
        st = s.stream
        pt = "/".join(map(str, sorted(st.pts)))
        detail = f"{st.flow} {s.capture} frames {st.first_frame}-{st.last_frame}"
        out.append(
            LadderEvent(
                float(s.times[0]),
                "media",
                f"first RTP 0x{st.ssrc:08x} PT {pt}",
                s.src,
                s.dst,
                detail,
            )
        )
        last = f"last RTP 0x{st.ssrc:08x}: {st.packets} pkts, lost {st.lost}"
        out.append(LadderEvent(float(s.times[-1]), "media", last, s.src, s.dst, detail))
    return out


def _peer_notes(view: RunView) -> list[LadderEvent]:
    out = []
    for name, events in view.result.peer_events.items():
        node = view.peer_nodes.get(name, ("", name))[1]
        for ev in events:
            kind, data = ev.get("kind", ""), ev.get("data") or {}
            if kind in PEER_EVENTS:
                label = f"{name}: {PEER_EVENTS[kind]} {data.get('state', '')}"
            elif kind == "selectedpair":
                loc, rem = data.get("local", {}), data.get("remote", {})
                label = f"{name}: selected {loc.get('type')}\u2192{rem.get('type')}"
            elif "error" in kind or "fail" in kind:
                label = f"{name}: {kind}"
            else:
                continue
            out.append(LadderEvent(float(ev.get("t", 0.0)), "note", label, node, node, str(data)))
    return out


def markers(view: RunView) -> list[LadderEvent]:
    """Steps and link faults: what the scenario did, on the run's time axis."""
    return _steps(view) + _conditions(view)


def _steps(view: RunView) -> list[LadderEvent]:
    out = []
    for s in view.result.steps:
        if s.status == "skipped":
            continue
        label = f"step {s.index + 1}: {s.kind} {s.status} ({s.duration_s:.2f} s)"
        kind = "fault" if s.status == "failed" or s.kind in FAULT_STEPS else "step"
        out.append(LadderEvent(s.started_s, kind, label, "", "", s.error or str(s.detail)))
    return out


def _conditions(view: RunView) -> list[LadderEvent]:
    out = []
    for key, rec in view.result.links.items():
        node = key.partition(".")[0]
        for ch in rec.get("changes", []) if isinstance(rec, dict) else []:
            t = ch.get("at_ns", 0) / 1e9 - view.t0
            what = ch.get("op", "change")
            if "seconds" in ch:
                what += f" {ch['seconds']} s"
            out.append(LadderEvent(t, "fault", f"{key}: {what}", node, node, str(ch)))
    return out


def _ends(view: RunView, a: tuple[str, int], b: tuple[str, int]) -> tuple[str, str]:
    return view.node_of(a), view.node_of(b)


# ------------------------------------------------------------------------------- drawing

LANE_W, LEFT, TOP, ROW = 200, 70, 58, 24


def lanes(view: RunView, events: list[LadderEvent]) -> list[str]:
    """Peers' nodes first, then other hosts, then routers; only lanes that are used."""
    used = {e.src for e in events} | {e.dst for e in events}
    order = [n for _, n in view.peer_nodes.values()]
    hosts = list(dict.fromkeys(view.hosts.values()))
    order += [n for n in hosts if n not in view.routers] + [n for n in hosts if n in view.routers]
    order += sorted(used - set(order))
    return [n for n in dict.fromkeys(order) if n and (n in used or n in order[:2])]


def render(view: RunView, events: list[LadderEvent] | None = None) -> str:
    events = ladder_events(view) if events is None else events
    names = lanes(view, events)
    x = {n: LEFT + LANE_W * (i + 0.5) for i, n in enumerate(names)}
    width = LEFT + LANE_W * max(len(names), 1) + 20
    height = TOP + ROW * (len(events) + 1)
    roles = _roles(view)
    body = []
    for n, cx in x.items():
        body.append(
            f'<rect x="{cx - 88:.0f}" y="6" width="176" height="38" rx="5" fill="#eef2f7" '
            'stroke="#90a4ae"/>'
        )
        body.append(svg.text(cx, 22, n, size=12, anchor="middle", font_weight="bold"))
        body.append(svg.text(cx, 37, svg.clip(roles.get(n, ""), 28), size=10, anchor="middle"))
        body.append(
            f'<line x1="{cx:.0f}" y1="44" x2="{cx:.0f}" y2="{height - 6}" stroke="#b0bec5" '
            'stroke-dasharray="4 3"/>'
        )
    for i, e in enumerate(events):
        y = TOP + ROW * i + 14
        body.append(_row(e, y, x, width))
    title = f"{view.result.scenario} seed {view.result.seed}: ladder"
    return svg.document(width, height, body, title)


def _row(e: LadderEvent, y: float, x: dict[str, float], width: float) -> str:
    color = svg.COLORS.get(e.kind, "#333")
    label = e.label + (f" \u00d7{e.count}" if e.count > 1 else "")
    tip = f"<title>{svg.esc(label + chr(10) + e.detail)}</title>"
    parts = [svg.text(LEFT - 6, y + 4, f"{e.t:+.3f}", size=10, anchor="end", fill="#666")]
    if not e.src:
        parts.append(
            f'<rect x="{LEFT}" y="{y - 9:.0f}" width="{width - LEFT - 10:.0f}" height="18" '
            f'fill="{"#fdecea" if e.kind == "fault" else "#eceff1"}"/>'
        )
        parts.append(svg.text(LEFT + 6, y + 4, label, size=11, fill=color, font_weight="bold"))
    elif e.src == e.dst or e.src not in x or e.dst not in x:
        cx = x.get(e.src) or x.get(e.dst) or LEFT + 100
        w = min(6.6 * len(label) + 12, LANE_W * 1.6)
        parts.append(
            f'<rect x="{cx - w / 2:.0f}" y="{y - 9:.0f}" width="{w:.0f}" height="17" rx="3" '
            f'fill="#fff" stroke="{color}"/>'
        )
        parts.append(
            svg.text(cx, y + 4, svg.clip(label, int(w / 6.6)), size=10, anchor="middle", fill=color)
        )
    else:
        x1, x2 = x[e.src], x[e.dst]
        parts.append(
            f'<line x1="{x1:.0f}" y1="{y + 5:.0f}" x2="{x2:.0f}" y2="{y + 5:.0f}" stroke="{color}" '
            f'stroke-width="1.4" marker-end="url(#arr-{e.kind})"/>'
        )
        room = max(abs(x2 - x1), LANE_W) * 1.5 / 6.2
        parts.append(svg.text(min(x1, x2) + 4, y, svg.clip(label, int(room)), size=10, fill=color))
    return (
        f'<g class="ev" data-kind="{e.kind}" data-t="{e.t:.4f}" data-src="{svg.esc(e.src)}" '
        f'data-dst="{svg.esc(e.dst)}" data-label="{svg.esc(label)}">{tip}{"".join(parts)}</g>'
    )


def _roles(view: RunView) -> dict[str, str]:
    roles: dict[str, list[str]] = {}
    for name, (kind, node) in {**view.peer_nodes, **view.component_nodes}.items():
        roles.setdefault(node, []).append(f"{name} {kind}")
    for r in view.routers:
        roles.setdefault(r, []).append("NAT router")
    return {n: ", ".join(v) for n, v in roles.items()}


def ladder_svg(view: RunView) -> str:
    return render(view)
