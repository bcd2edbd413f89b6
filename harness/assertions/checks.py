"""The built-in `expect:` checks. Each docstring is what `harness analyze --checks` shows."""

from __future__ import annotations

from typing import Any

from harness.analysis import sdp_conformance as sdp_conformance_mod
from harness.analysis import stun
from harness.analysis.model import Flow, SdpEvent, fmt_addr
from harness.analysis.rtp import RtpStream
from harness.analysis.session import IceGeneration, Session
from harness.assertions.params import NUM, Choice, bounds, limits, unseen
from harness.assertions.registry import Outcome, check


def _at(frame: int, t: float) -> str:
    return f"frame {frame} t={t:.3f}s"


def _stream_line(s: RtpStream) -> str:
    return (
        f"RTP ssrc 0x{s.ssrc:08x} {s.flow}: {s.packets} pkts, frames {s.first_frame}-"
        f"{s.last_frame}, t={s.first_t:.3f}-{s.last_t:.3f}s, lost {s.lost}/{s.expected}, "
        f"max gap {s.max_gap * 1000:.1f} ms (frames {s.max_gap_frames[0]}-{s.max_gap_frames[1]})"
    )


# -- ICE ------------------------------------------------------------------------------------


@check("ice_restarts", min=int, max=int, count=int)
def ice_restarts(s: Session, p: dict[str, Any]) -> Outcome:
    """Number of ICE restarts (new ufrag generations after the first), within min/max/count
    (default at least one); zero needs ICE checks in the capture to tell."""
    ev = [
        f"restart {r.index}: {'/'.join(r.old_ufrags)} -> {'/'.join(r.new_ufrags)} started "
        f"{_at(*r.started)}, connected "
        + (f"{_at(*r.connected)} (+{r.time_to_connect:.3f}s)" if r.connected else "never")
        + (
            f"; checks mixing old and new ufrags first: {', '.join('/'.join(u) for u in r.transitional)}"
            if r.transitional
            else ""
        )
        for r in s.restarts
    ]
    bound = limits(p)
    why = unseen(bound, bool(s.generations), "ICE connectivity check") or bounds(
        len(s.restarts), bound
    )
    return Outcome(
        why is None,
        f"{len(s.restarts)} ICE restart(s)" + (f": {why}" if why else ""),
        ev,
        "RFC 8445 9",
    )


@check("ice_reconnect_time", max_s=NUM, media=bool)
def ice_reconnect_time(s: Session, p: dict[str, Any]) -> Outcome:
    """Each ICE restart connects (and with media: true, carries media) within max_s."""
    if not s.restarts:
        return Outcome(False, "no ICE restart in the capture", _generations(s), "RFC 8445 9")
    limit = p.get("max_s", 5.0)
    ok, ev = True, []
    for r in s.restarts:
        took = r.time_to_media if p.get("media") else r.time_to_connect
        good = took is not None and took <= limit
        ok &= good
        ev.append(
            f"restart {r.index} started {_at(*r.started)}: "
            + (f"took {took:.3f}s" if took is not None else "did not reconnect")
            + ("" if good else f" (limit {limit}s)")
        )
    return Outcome(
        ok, "all restarts reconnected in time" if ok else "a restart was too slow", ev, "RFC 8445 9"
    )


def _generations(s: Session) -> list[str]:
    out = []
    for g in s.generations:
        out.append(f"generation {'/'.join(g.ufrags)} from {_at(*g.first)}, {len(g.pairs)} pair(s)")
        for pair in g.pairs:
            out.append(
                f"  {pair.name} [{pair.kind}] checks {pair.requests}, ok {pair.successes}"
                + (", nominated" if pair.nominated else "")
                + (f", 401s {len(pair.errors)}" if pair.errors else "")
            )
    return out or ["no ICE connectivity checks in the capture"]


def _generation(s: Session, p: dict[str, Any], rfc: str) -> IceGeneration | Outcome:
    """The generation `generation` asks for (default: the last; -1, -2: from the end), or
    the failed outcome that says the capture has none, or not that one."""
    if not s.generations:
        return Outcome(False, "no ICE connectivity checks in the capture", [], rfc)
    i = p.get("generation", -1)
    if not -len(s.generations) <= i < len(s.generations):
        n = len(s.generations)
        return Outcome(False, f"no ICE generation {i}: the capture has {n}", _generations(s), rfc)
    return s.generations[i]


@check("ice_connected", generation=int)
def ice_connected(s: Session, p: dict[str, Any]) -> Outcome:
    """The ICE generation (default: the last) has a candidate pair that succeeded."""
    g = _generation(s, p, "RFC 8445 7.2.5")
    if isinstance(g, Outcome):
        return g
    ok = bool(g.succeeded)
    return Outcome(
        ok,
        f"generation {'/'.join(g.ufrags)} {'connected' if ok else 'never connected'}",
        _generations(s),
        "RFC 8445 7.2.5",
    )


PAIR_TYPES = Choice(("host", "srflx", "prflx", "relay"), many=True)


@check("selected_pair_type", type=PAIR_TYPES, not_type=PAIR_TYPES, generation=int)
def selected_pair_type(s: Session, p: dict[str, Any]) -> Outcome:
    """The selected pair (nominated, else first with media) is of this type: host, srflx,
    prflx or relay; with not_type, of any type but these (a type that must not be selected)."""
    types = ("host", "srflx", "prflx", "relay")
    if "not_type" in p:
        banned = [p["not_type"]] if isinstance(p["not_type"], str) else p["not_type"]
        want = [t for t in types if t not in banned]
        if set(banned) <= {"relay"}:
            want.append("unknown")  # no SDP on this wire, but TURN framing would show a relay
    else:
        want = p.get("type", "relay")
        want = [want] if isinstance(want, str) else want
    g = _generation(s, p, "RFC 8445 8")
    if isinstance(g, Outcome):
        return g
    sel = g.selected
    if sel is None:
        return Outcome(False, "no selected pair", _generations(s), "RFC 8445 8")
    ok = sel.kind in want
    msg = f"selected pair {sel.name} is {sel.kind} ({sel.types[0]}/{sel.types[1]})"
    return Outcome(
        ok, msg + ("" if ok else f", expected {' or '.join(want)}"), _generations(s), "RFC 8445 8"
    )


@check("ice_integrity")
def ice_integrity(s: Session, p: dict[str, Any]) -> Outcome:
    """Connectivity checks verify under the receiver's a=ice-pwd from the captured SDPs."""
    pairs = [pair for g in s.generations for pair in g.pairs]
    checked = sum(pair.integrity_checked for pair in pairs)
    bad = [(pair, f) for pair in pairs for f in pair.integrity_failures]
    ev = [f"frame {f}: {pair.name}: MESSAGE-INTEGRITY does not verify" for pair, f in bad[:20]]
    ev.append(f"{checked} message(s) verified against SDP ice-pwd values")
    if not checked:
        return Outcome(
            False, "no connectivity check could be verified (no SDP ice-pwd)", ev, "RFC 8445 7.2.2"
        )
    return Outcome(
        not bad, f"{len(bad)} of {checked} check message(s) fail integrity", ev, "RFC 8445 7.2.2"
    )


#: STUN methods by name, as the analyser names them (an unnamed one as 0xNNN)
STUN_METHODS = Choice(
    tuple(dict.fromkeys([*stun.METHODS.values(), *stun.CLASSIC_METHODS.values()])),
    pattern=("0x[0-9a-f]{3}", "0xNNN"),
)


@check("stun_errors", method=STUN_METHODS, code=int, max=int, min=int, count=int)
def stun_errors(s: Session, p: dict[str, Any]) -> Outcome:
    """Count STUN error responses (optionally of one method and code) against min/max/count
    (default max 0: none); zero needs STUN in the capture to tell."""
    hits = [
        e
        for e in s.analysis.stun
        if e.msg.cls == "error"
        and e.msg.method == p.get("method", e.msg.method)
        and e.msg.error_code == p.get("code", e.msg.error_code)
    ]
    ev = [
        f"{_at(e.frame, e.time)} {fmt_addr(e.src)} > {fmt_addr(e.dst)} {e.msg.method} error {e.msg.error_code} {e.msg.error_reason}"
        for e in hits[:20]
    ]
    bound = limits(p, {"max": 0})
    why = unseen(bound, bool(s.analysis.stun), "STUN") or bounds(len(hits), bound)
    return Outcome(
        why is None,
        f"{len(hits)} STUN error response(s)" + (f": {why}" if why else ""),
        ev,
        "RFC 8489 6.3.4",
    )


# -- DTLS -----------------------------------------------------------------------------------


def _hs_line(h: Any) -> str:
    return (
        f"{h.name}{' (relayed)' if h.relayed else ''}: ClientHello {_at(*h.start)}, "
        + (f"Finished {_at(*h.end)}" if h.end else "no Finished")
        + f", complete={h.complete}, srtp={h.srtp_profile}, ems={h.extended_master_secret}"
        + (f", alerts={[a[1:] for a in h.alerts]}" if h.alerts else "")
    )


@check("dtls_handshakes", min=int, max=int, count=int, complete=bool)
def dtls_handshakes(s: Session, p: dict[str, Any]) -> Outcome:
    """Number of DTLS handshakes (distinct ClientHello randoms) within min/max/count (default
    at least one); complete: true counts only finished ones; zero needs UDP in the capture."""
    hs = [h for h in s.handshakes if h.complete or not p.get("complete")]
    bound = limits(p)
    udp = any(f.proto == "udp" for f in s.analysis.flows)
    why = unseen(bound, udp, "UDP") or bounds(len(hs), bound)
    return Outcome(
        why is None,
        f"{len(hs)} DTLS handshake(s)" + (f": {why}" if why else ""),
        [_hs_line(h) for h in s.handshakes],
        "RFC 6347 4.2",
    )


@check("dtls_fingerprint_matches_sdp")
def dtls_fingerprint_matches_sdp(s: Session, p: dict[str, Any]) -> Outcome:
    """Every certificate in a DTLS handshake hashes to an a=fingerprint of a captured SDP."""
    sdp_fps: dict[str, tuple[SdpEvent, int]] = {}
    for sdp_ev in s.analysis.sdp:
        for m in [None, *sdp_ev.sdp.media]:
            for no, v in m.attrs("fingerprint") if m else sdp_ev.sdp.attrs("fingerprint"):
                algo, _, fp = v.partition(" ")
                if algo.lower() == "sha-256":
                    sdp_fps.setdefault(fp.upper(), (sdp_ev, no))
    if not s.handshakes:
        return Outcome(False, "no DTLS handshake in the capture", [], "RFC 8122 5")
    if not sdp_fps:
        return Outcome(
            False,
            "no SDP with a sha-256 a=fingerprint in the capture",
            [_hs_line(h) for h in s.handshakes],
            "RFC 8122 5",
        )
    ok, ev = True, []
    for h in s.handshakes:
        for side, (frame, fp) in sorted(h.fingerprints.items()):
            found = sdp_fps.get(fp)
            if found:
                e, no = found
                ev.append(
                    f"{h.name} {side} certificate frame {frame} = SDP {e.type} frame {e.frame} line {no}"
                )
            else:
                ok = False
                ev.append(f"{h.name} {side} certificate frame {frame}: sha-256 {fp} is in no SDP")
                ev += [
                    f"  SDP {e.type} frame {e.frame} line {no}: a=fingerprint:sha-256 {k}"
                    for k, (e, no) in sdp_fps.items()
                ]
    return Outcome(
        ok,
        "certificates match the SDP fingerprints"
        if ok
        else "a certificate does not match any SDP fingerprint",
        ev,
        "RFC 8122 5, RFC 5763 5",
    )


# -- RTP ------------------------------------------------------------------------------------


@check("rtp_flowing", after_s=NUM, both_ways=bool, min_streams=int)
def rtp_flowing(s: Session, p: dict[str, Any]) -> Outcome:
    """RTP is still flowing after after_s seconds (default both ways on at least one path;
    both ways but on different paths, the two ends on different candidate pairs, fails
    naming both)."""
    after = float(p.get("after_s", 0.0))
    live = [st for st in s.analysis.rtp_streams if st.last_t > after]
    ev = [_stream_line(st) for st in s.analysis.rtp_streams]
    if len(live) < p.get("min_streams", 1):
        return Outcome(
            False, f"{len(live)} RTP stream(s) with packets after t={after}s", ev, "RFC 3550"
        )
    if p.get("both_ways", True):
        live_flows = [
            f for f in s.analysis.flows if any(st.last_t > after for st in f.streams.values())
        ]
        flows = {(f.src, f.dst) for f in live_flows}
        if not any((b, a) in flows for a, b in flows):
            crossed = _crossed(s.analysis.flows, live_flows)
            if crossed:
                return Outcome(
                    False,
                    f"RTP after t={after}s flows both ways, on different paths: {crossed[0]}",
                    [*crossed, *ev],
                    "RFC 8445 12.1",
                )
            return Outcome(
                False, f"RTP after t={after}s flows one way only on every path", ev, "RFC 3550"
            )
    return Outcome(True, f"{len(live)} RTP stream(s) flowing after t={after}s", ev, "RFC 3550")


def _crossed(every: list[Flow], live: list[Flow]) -> list[str]:
    """RTP both ways between two hosts on the wire, but on no one path: each end sends on
    a candidate pair the other does not answer on (they selected different pairs). A relayed
    flow's hosts are those of the TURN flow it came inside."""
    outer = {f.label: f for f in every if not f.via}

    def hosts(f: Flow) -> tuple[str, str]:
        w = outer.get(f.via, f) if f.via else f
        return w.src[0], w.dst[0]

    return sorted(
        f"{f.label} one way, {g.label} the other"
        for f in live
        for g in live
        if f.label < g.label and hosts(g) == hosts(f)[::-1]
    )


def ssrc_gaps(s: Session) -> list[tuple[float, str, tuple[float, float]]]:
    """Largest media gap per SSRC: inside a stream, or while it moved to another 5-tuple;
    (seconds, evidence line, (from, to) in capture time), largest first."""
    by_ssrc: dict[int, list[RtpStream]] = {}
    for st in s.analysis.rtp_streams:
        by_ssrc.setdefault(st.ssrc, []).append(st)
    out: list[tuple[float, str, tuple[float, float]]] = []
    for ssrc, streams in by_ssrc.items():
        streams.sort(key=lambda x: x.first_t)
        best = max(streams, key=lambda x: x.max_gap)
        gap, line, span = best.max_gap, _stream_line(best), best.max_gap_times
        for a, b in zip(streams, streams[1:], strict=False):
            if b.first_t - a.last_t > gap:
                gap, span = b.first_t - a.last_t, (a.last_t, b.first_t)
                line = (
                    f"RTP ssrc 0x{ssrc:08x} moved from {a.flow} (last frame {a.last_frame} "
                    f"t={a.last_t:.3f}s) to {b.flow} (first frame {b.first_frame} t={b.first_t:.3f}s)"
                )
        out.append((gap, line, span))
    return sorted(out, key=lambda g: (g[0], g[1]), reverse=True)


@check("max_media_gap", max_s=NUM)
def max_media_gap(s: Session, p: dict[str, Any]) -> Outcome:
    """The largest gap between consecutive RTP packets of any SSRC is at most max_s."""
    gaps = ssrc_gaps(s)
    if not gaps:
        return Outcome(False, "no RTP in the capture", [], "RFC 3550")
    worst, limit = gaps[0][0], p.get("max_s", 0.5)
    t0 = s.analysis.start_time
    return Outcome(
        worst <= limit,
        f"largest media gap {worst * 1000:.1f} ms (limit {limit * 1000:.0f} ms)",
        [f"{g * 1000:.1f} ms: {line}" for g, line, _ in gaps],
        "RFC 3550",
        [(t0 + a, t0 + b) for g, _, (a, b) in gaps if g > limit],
    )


@check("rtp_loss", max_ratio=NUM, max_percent=NUM)
def rtp_loss(s: Session, p: dict[str, Any]) -> Outcome:
    """Every RTP stream's loss (expected - received, RFC 3550 A.3) is below the limit."""
    limit = p["max_percent"] / 100 if "max_percent" in p else p.get("max_ratio", 0.01)
    streams = s.analysis.rtp_streams
    if not streams:
        return Outcome(False, "no RTP in the capture", [], "RFC 3550 A.3")
    bad = [st for st in streams if st.loss_ratio > limit]
    worst = max(st.loss_ratio for st in streams)
    return Outcome(
        not bad,
        f"worst loss {worst:.2%} (limit {limit:.2%})",
        [_stream_line(st) for st in (bad or streams)],
        "RFC 3550 A.3",
    )


@check("jitter", max_ms=NUM)
def jitter(s: Session, p: dict[str, Any]) -> Outcome:
    """Every RTP stream's interarrival jitter (RFC 3550 6.4.1) is at most max_ms."""
    streams = s.analysis.rtp_streams
    if not streams:
        return Outcome(False, "no RTP in the capture", [], "RFC 3550 6.4.1")
    worst = max(streams, key=lambda x: x.jitter_ms)
    ok = worst.jitter_ms <= p.get("max_ms", 30.0)
    return Outcome(
        ok,
        f"worst jitter {worst.jitter_ms:.2f} ms",
        [f"{st.jitter_ms:.2f} ms (clock {st.clock}): {_stream_line(st)}" for st in streams],
        "RFC 3550 6.4.1",
    )


# -- SIP and SDP ----------------------------------------------------------------------------


@check("sip_reinvite", min=int, max=int, count=int)
def sip_reinvite(s: Session, p: dict[str, Any]) -> Outcome:
    """Number of re-INVITEs (in-dialog INVITEs) across SIP dialogs; default at least one;
    zero needs a SIP dialog in the capture to tell."""
    re = [e for d in s.dialogs for e in d.reinvites]
    ev = [
        f"{_at(e.frame, e.time)} {fmt_addr(e.src)} > {fmt_addr(e.dst)} {e.msg.summary} Call-ID {e.msg.call_id}"
        for e in re
    ]
    ev += [f"dialog {d.call_id}: {d.state}, {len(d.events)} messages" for d in s.dialogs]
    bound = limits(p)
    why = unseen(bound, bool(s.dialogs), "SIP dialog") or bounds(len(re), bound)
    return Outcome(
        why is None, f"{len(re)} re-INVITE(s)" + (f": {why}" if why else ""), ev, "RFC 3261 14"
    )


@check("sip_dialog_state", state=str)
def sip_dialog_state(s: Session, p: dict[str, Any]) -> Outcome:
    """Every SIP INVITE dialog ended in this state (confirmed, terminated, failed NNN)."""
    dialogs = [d for d in s.dialogs if d.invites]
    if not dialogs:
        return Outcome(False, "no INVITE dialog in the capture", [], "RFC 3261 12")
    want = p.get("state", "terminated")
    ev = [
        f"dialog {d.call_id}: {d.state}; "
        + ", ".join(f"{t.method}->{t.final}" for t in d.transactions)
        for d in dialogs
    ]
    ok = all(d.state == want for d in dialogs)
    return Outcome(
        ok, f"dialogs: {', '.join(d.state for d in dialogs)} (want {want})", ev, "RFC 3261 12"
    )


@check(
    "sdp_conformance", profile=Choice(("webrtc", "sip")), max_errors=int, warnings=bool, ignore=list
)
def sdp_conformance(s: Session, p: dict[str, Any]) -> Outcome:
    """Captured SDPs pass the lint and the offer/answer rules (harness/analysis/
    sdp_conformance.py) for profile webrtc or sip (default: each SDP's own), with at
    most `max_errors` errors; `ignore: [rule, ...]` leaves named rules out."""
    if not s.analysis.sdp:
        return Outcome(False, "no SDP in the capture", [], "RFC 8866")
    ignore = set(p.get("ignore") or [])
    ev, errors = [], 0
    for rep in sdp_conformance_mod.captured(s.analysis.sdp, p.get("profile")):
        for f in rep.findings:
            if f.message.split(":", 1)[0] in ignore:
                continue
            if f.severity == "error" or p.get("warnings"):
                errors += f.severity == "error"
                ev.append(f"{rep.description.label}: {f}")
    ok = errors <= p.get("max_errors", 0)
    return Outcome(
        ok,
        f"{errors} SDP error(s) in {len(s.analysis.sdp)} SDPs",
        ev,
        "RFC 8829, RFC 3264",
    )
