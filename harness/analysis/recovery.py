"""Recovery metrics: how media came back after a network event, measured on a capture.

The network event (a handoff, a NAT rebinding, a gateway restart...) comes from the
run's mobility log (harness/actions/mobility.py), written beside the pcaps; so do
the app's ICE restarts with their offer and answer times. Everything else is read
off the wire, per direction of media relative to the *fixed end* (the address every
media flow of the call shares: the far peer or the gateway, not the moving phone):

- `up`: media toward the fixed end (from the phone), `down`: media from it.

Times are wall-clock (time.time(), the clock of the pcaps and of peer events), and
in `to_dict()` seconds after the event's start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis.model import Address, Flow
from harness.analysis.rtp import RtpStream
from harness.analysis.session import Session
from harness.lazy import lazy

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy("numpy")  # imported on first use: `harness validate` never needs it

LOG_NAME = "mobility.json"
"""The run's mobility log in its run directory (written by harness/actions/mobility.py)."""
#: A direction whose media stops this long before the capture does (and whose silence
#: there is its longest) did not recover; shorter tails are hang-up and tear-down.
TAIL_GRACE_S = 1.0
#: Log entries that are reactions to, or parts of, an event: not events themselves.
REACTIONS = ("ice_restart", "reaction_error", "network_available", "network_lost")


@dataclass
class NetworkEvent:
    """One change made to the lab, or one app reaction, stamped with time.time()."""

    t: float
    kind: str
    node: str = ""
    signal: bool = False
    """True when the node's apps are told (a phone's connectivity-change broadcast)."""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def start(self) -> float:
        """When the step began changing the network (the old path's last good moment)."""
        return float(self.data.get("start", self.t))


def read_log(run_dir: Path) -> list[NetworkEvent]:
    """The events a run logged (empty when it had no mobility step)."""
    path = run_dir / LOG_NAME
    if not path.is_file():
        return []
    return [NetworkEvent(**e) for e in json.loads(path.read_text())]


@dataclass
class DirectionRecovery:
    """One direction of media across the event (absolute times; None: never seen)."""

    direction: str
    packets: int = 0
    old_path: str | None = None
    new_path: str | None = None
    last_media_old: float | None = None
    first_check_new: float | None = None
    nominated_new: float | None = None
    """The new pair is selected: nominated, and valid from both ends (see `_checks`)."""
    first_media_new: float | None = None
    """First media, after the event, on the path media ended up on (time to recover)."""
    gap_from: float | None = None
    gap_to: float | None = None
    largest_gap_s: float = 0.0
    lost: int = 0
    """Sequence numbers never seen, from 1 s before the event to the end of the capture."""
    lost_in_gap: int = 0
    """Sequence numbers skipped across the largest gap."""
    recovered: bool = False
    """Media came back after the largest silence (which did not last to the end)."""


@dataclass
class Recovery:
    """Recovery after one network event, from one capture."""

    event: NetworkEvent
    capture: str
    fixed_end: str
    directions: dict[str, DirectionRecovery] = field(default_factory=dict)
    restart: dict[str, Any] | None = None
    """The first ICE restart an app made at or after the event (mobility log)."""
    dtls_handshakes: int = 0
    reinvites: int = 0
    down_at: str = ""
    """The capture(s) where `down` was measured."""

    def to_dict(self) -> dict[str, Any]:
        t0 = self.event.start

        def rel(x: float | None) -> float | None:
            return None if x is None else round(x - t0, 4)

        out: dict[str, Any] = {
            "event": self.event.kind,
            "event_node": self.event.node,
            "capture": self.capture,
            "fixed_end": self.fixed_end,
            "down_measured_at": self.down_at,
            "dtls_handshakes": self.dtls_handshakes,
            "reinvites": self.reinvites,
            "restart_trigger": None,
            "restart_offer_s": None,
            "restart_answer_s": None,
            "restart_ok": None,
        }
        if self.restart:
            out["restart_trigger"] = self.restart.get("trigger")
            out["restart_offer_s"] = rel(self.restart.get("offer_t"))
            out["restart_answer_s"] = rel(self.restart.get("answer_t"))
            out["restart_ok"] = self.restart.get("ok")
        for name, d in self.directions.items():
            out[name] = {
                "packets": d.packets,
                "old_path": d.old_path,
                "new_path": d.new_path,
                "last_media_old_s": rel(d.last_media_old),
                "first_check_new_s": rel(d.first_check_new),
                "nominated_new_s": rel(d.nominated_new),
                "first_media_new_s": rel(d.first_media_new),
                "time_to_recover_s": rel(d.first_media_new) if d.recovered else None,
                "largest_gap_s": round(d.largest_gap_s, 4),
                "gap_from_s": rel(d.gap_from),
                "lost": d.lost,
                "lost_in_gap": d.lost_in_gap,
                "recovered": d.recovered,
            }
        return out

    def metric(self, direction: str, name: str) -> Any:
        """One metric by its `to_dict` name (a direction's, or the event's when shared)."""
        d = self.to_dict()
        return d[direction][name] if name in d.get(direction, {}) else d[name]


class RecoveryError(ValueError):
    """The capture or the log cannot say anything about recovery (with why)."""


def pick_event(
    events: list[NetworkEvent], kind: str | None, index: int, after: float
) -> NetworkEvent:
    """The `index`-th event of `kind` (default: any but reactions) after media started."""
    cands = [
        e
        for e in events
        if e.kind not in REACTIONS and (kind is None or e.kind == kind) and e.start >= after
    ]
    if not cands:
        known = ", ".join(sorted({e.kind for e in events})) or "none"
        raise RecoveryError(
            f"no {kind or 'network'} event during media in the log (logged: {known})"
        )
    if index >= len(cands):
        raise RecoveryError(f"only {len(cands)} {kind or 'network'} event(s) during media")
    return cands[index]


def analyse(
    s: Session,
    events: list[NetworkEvent],
    *,
    mobile: list[Session] | None = None,
    kind: str | None = None,
    index: int = 0,
    fixed: str | None = None,
    exclude: set[str] | None = None,
) -> Recovery:
    """Recovery metrics for one logged event.

    `exclude`: addresses whose media is not the call's leg to measure (e.g. the SIP side
    of a gateway, whose media crosses the same capture).

    `s` is the capture at the fixed end: `up` is measured there, where it is received.
    `mobile` are the captures on the phone's interfaces, where `down` is received; without
    them `down` is measured where it is sent, which cannot see packets lost on the way.
    """
    media = _media([s], exclude)
    if not media:
        raise RecoveryError(f"no RTP in {s.analysis.path.name}")
    first = min(st.first_t + x.analysis.start_time for x, _, st in media)
    ev = pick_event(events, kind, index, first)
    fixed_ip = fixed or _fixed_end([f for _, f, _ in media])
    rec = Recovery(ev, s.analysis.path.name, fixed_ip)
    rec.restart = next(
        (
            e.data
            for e in events
            if e.kind == "ice_restart" and e.data.get("start", e.t) >= ev.start
        ),
        None,
    )
    rec.dtls_handshakes = len(s.handshakes)
    rec.reinvites = sum(len(d.reinvites) for d in s.dialogs)
    down_media = _media(mobile, exclude) if mobile else media
    rec.down_at = ", ".join(x.analysis.path.name for x in mobile) if mobile else rec.capture
    # the end of observation: the last frame of any capture (the phone's may stop early)
    end = max(x.analysis.start_time + _duration(x) for x in [s, *(mobile or [])])
    up = [m for m in media if _wire_dst(m[1]) == fixed_ip]
    rec.directions["up"] = _direction("up", up, ev.start, end)
    down = [m for m in down_media if m[1].src[0] == fixed_ip]
    rec.directions["down"] = _direction("down", down, ev.start, end)
    return rec


Media = tuple[Session, Flow, RtpStream]


def _media(sessions: list[Session], exclude: set[str] | None) -> list[Media]:
    skip = exclude or set()
    return [
        (x, f, st)
        for x in sessions
        for f in x.analysis.flows
        if f.src[0] not in skip and f.dst[0] not in skip
        for st in f.streams.values()
        if st.packets
    ]


def _wire_dst(f: Flow) -> str:
    """Where a flow's packets went on the wire: inside TURN, the outer packets' destination
    (media a client sent into a lost allocation never reached the far end)."""
    if f.via:
        return f.via.split(" > ")[-1].split(" (")[0].rsplit(":", 1)[0].strip("[]")
    return f.dst[0]


def _fixed_end(flows: list[Flow]) -> str:
    """The address on every media flow; if both ends are, the one that kept its port."""
    common: set[str] | None = None
    for f in flows:
        ends = {f.src[0], f.dst[0]}
        common = ends if common is None else common & ends
    if common and len(common) > 1:
        ports = {ip: {a for f in flows for a in (f.src, f.dst) if a[0] == ip} for ip in common}
        fewest = min(len(p) for p in ports.values())
        common = {ip for ip, p in ports.items() if len(p) == fewest}
    if not common or len(common) > 1:
        raise RecoveryError(
            "cannot tell the fixed end of the call: "
            + ("media flows share no address" if not common else "media never changed path")
            + "; give `fixed: IP`"
        )
    return common.pop()


def _columns(st: RtpStream) -> tuple[np.ndarray, np.ndarray]:
    """(times, sequence numbers) of a finished stream's packets, in frame order."""
    cols = st.columns
    return cols[1].astype(np.float64), cols[2].astype(np.int64)


def _direction(name: str, chosen: list[Media], ref: float, end: float) -> DirectionRecovery:
    d = DirectionRecovery(name)
    if not chosen:
        return d
    parts_t, parts_flow, parts_seq, parts_ssrc = [], [], [], []
    flows: list[tuple[Session, Flow]] = []
    for x, f, st in chosen:
        t, seq = _columns(st)
        if (x, f) not in flows:
            flows.append((x, f))
        parts_t.append(t + x.analysis.start_time)
        parts_flow.append(np.full(len(t), flows.index((x, f))))
        parts_seq.append(seq)
        parts_ssrc.append(np.full(len(t), st.ssrc, dtype=np.int64))
    order = np.argsort(np.concatenate(parts_t), kind="stable")
    t = np.concatenate(parts_t)[order]
    fl = np.concatenate(parts_flow)[order]
    seq = np.concatenate(parts_seq)[order]
    ssrc = np.concatenate(parts_ssrc)[order]
    d.packets = len(t)
    before = np.flatnonzero(t < ref)
    if not len(before):
        return d
    last = int(before[-1])
    old = flows[int(fl[last])][1]
    d.old_path = old.label
    d.last_media_old = float(t[fl == fl[last]][-1])
    # the largest silence between packets, from the last one before the event on
    gaps = np.diff(t[last:])
    if len(gaps):
        i = last + int(gaps.argmax())
        d.largest_gap_s = float(t[i + 1] - t[i])
        d.gap_from, d.gap_to = float(t[i]), float(t[i + 1])
    tail = end - float(t[-1])
    if tail > TAIL_GRACE_S and tail >= d.largest_gap_s:
        # media never came back: the silence runs to the end of the capture
        d.largest_gap_s, d.gap_from, d.gap_to = tail, float(t[-1]), end
        resumed = np.flatnonzero(t > end)
    else:
        d.recovered = True
        resumed = np.flatnonzero(t > (d.gap_from if d.gap_from is not None else t[last]))
    if d.recovered and len(resumed):
        # the new path is where media ended up
        final = int(fl[-1])
        on_final = np.flatnonzero((fl == final) & (t >= ref))
        k = int(resumed[0]) if final == int(fl[last]) else int(on_final[0])
        x, new = flows[final]
        d.new_path = new.label
        d.first_media_new = float(t[k])
        d.first_check_new, d.nominated_new = _checks(x, (new.src, new.dst), ref)
    d.lost = _lost(t, seq, ssrc, ref - 1.0)
    if len(resumed) and ssrc[resumed[0]] == ssrc[resumed[0] - 1]:
        j = int(resumed[0])
        jump = ((int(seq[j]) - int(seq[j - 1]) + 0x8000) & 0xFFFF) - 0x8000
        d.lost_in_gap = max(0, jump - 1)
    return d


def _duration(x: Session) -> float:
    """Seconds from a capture's first frame to its last (media or not)."""
    times = [f.last_t for f in x.analysis.flows]
    return max(times) if times else 0.0


def _checks(
    s: Session, ends: tuple[Address, Address], ref: float
) -> tuple[float | None, float | None]:
    """First connectivity check on `ends` at/after `ref`, and when the pair was selected
    as this capture sees it: a nomination answered with success, and a check from each
    end answered with success (RFC 8445 7.3.1.5: the controlled agent selects a nominated
    pair once its own check on it succeeded; on a slow link that is an RTT later)."""
    base = s.analysis.start_time
    want = {ends[0], ends[1]}
    first: float | None = None
    sent: dict[str, tuple[Address, bool]] = {}  # txid -> (requester, nominating)
    valid: dict[Address, float] = {}  # requester -> first success seen
    nominated: float | None = None
    for ev in s.analysis.stun:
        t = base + ev.time
        if t < ref or ev.msg.method != "Binding" or {ev.src, ev.dst} != want:
            continue
        if ev.msg.cls == "request":
            first = t if first is None else first
            sent[ev.msg.txid] = (ev.src, ev.msg.use_candidate)
        elif ev.msg.cls == "success" and ev.msg.txid in sent:
            requester, nominating = sent[ev.msg.txid]
            valid.setdefault(requester, t)
            if nominating and nominated is None:
                nominated = t
        if nominated is not None and len(valid) == 2:
            return first, max(nominated, *valid.values())
    return first, None


def _lost(t: np.ndarray, seq: np.ndarray, ssrc: np.ndarray, since: float) -> int:
    """Sequence numbers missing per SSRC among packets from `since` on (RFC 3550 A.3)."""
    lost = 0
    for x in np.unique(ssrc):
        s = seq[(ssrc == x) & (t >= since)]
        if len(s) < 2:
            continue
        step = ((np.diff(s) + 0x8000) & 0xFFFF) - 0x8000
        ext = np.concatenate(([s[0]], s[0] + np.cumsum(step)))
        values = np.unique(ext)
        lost += int(values[-1] - values[0] + 1 - len(values))
    return lost


def _after(s: float | None) -> str:
    return "not seen" if s is None else f"+{s}s"


def describe(rec: Recovery) -> list[str]:
    """Evidence lines for checks and reports."""
    d = rec.to_dict()
    lines = [
        f"event {d['event']} on {d['event_node']} at {rec.event.start:.3f} (times below are after it); "
        f"fixed end {rec.fixed_end} (down measured at {rec.down_at}); DTLS handshakes {d['dtls_handshakes']}; re-INVITEs {d['reinvites']}",
    ]
    if rec.restart:
        lines.append(
            f"ICE restart ({d['restart_trigger']}): offer {_after(d['restart_offer_s'])}, "
            f"answer {_after(d['restart_answer_s'])}, ok={d['restart_ok']}"
            + (f" ({str(rec.restart['error'])[:400]})" if rec.restart.get("error") else "")
        )
    for name in ("up", "down"):
        x = d.get(name, {})
        if not x.get("packets"):
            lines.append(f"{name}: no media")
            continue
        lines.append(
            f"{name}: old {x['old_path']} last +{x['last_media_old_s']}s; new {x['new_path']} "
            f"check +{x['first_check_new_s']}s nominated +{x['nominated_new_s']}s media "
            f"+{x['first_media_new_s']}s; largest gap {x['largest_gap_s']}s from "
            f"+{x['gap_from_s']}s; lost {x['lost']} ({x['lost_in_gap']} in the gap); "
            f"recovered {x['recovered']}"
        )
    return lines
