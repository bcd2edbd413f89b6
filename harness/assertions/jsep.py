"""JSEP state machines (RFC 8829 3.2, 4.1; W3C webrtc-pc 4.3-4.4) checked on peer events.

The peer reports each state change; the harness records each description the
peer applied. `jsep_states` checks that every reported transition is one the
state machines allow, and that the signalling states are exactly those the
applied descriptions lead to. `peer_sdp_conformance` runs the SDP offer/answer
rules (harness/analysis/sdp_conformance.py) on those descriptions.
"""

from __future__ import annotations

from typing import Any

from harness.analysis import sdp as sdpmod
from harness.analysis.sdp_conformance import Description, check_exchange
from harness.assertions.peer import PeerEvents, peer_check
from harness.assertions.registry import CheckError, Outcome

#: RFC 8829 3.2 (figure 1): signalling state transitions
SIGNALING = {
    ("stable", "have-local-offer"),
    ("stable", "have-remote-offer"),
    ("have-local-offer", "stable"),  # remote answer, or rollback
    ("have-local-offer", "have-remote-pranswer"),
    ("have-remote-pranswer", "stable"),
    ("have-remote-offer", "stable"),  # local answer, or rollback
    ("have-remote-offer", "have-local-pranswer"),
    ("have-local-pranswer", "stable"),
}
#: W3C webrtc-pc 4.4.1: gathering never completes without gathering first
GATHERING = {("new", "gathering"), ("gathering", "complete"), ("complete", "gathering")}
#: RTCIceConnectionState / RTCPeerConnectionState: connected only after checking /
#: connecting, recovery from failed only through a new round of checks (an ICE restart)
ICE = {
    ("new", "checking"),
    *{("checking", s) for s in ("connected", "completed", "failed", "disconnected")},
    *{("connected", s) for s in ("completed", "disconnected", "failed", "checking")},
    *{("completed", s) for s in ("connected", "disconnected", "failed", "checking")},
    *{("disconnected", s) for s in ("connected", "completed", "checking", "failed")},
    ("failed", "checking"),
}
CONNECTION = {
    ("new", "connecting"),
    *{("connecting", s) for s in ("connected", "failed", "disconnected")},
    *{("connected", s) for s in ("disconnected", "failed", "connecting")},
    *{("disconnected", s) for s in ("connected", "connecting", "failed")},
    ("failed", "connecting"),
}
MACHINES = {
    "signalingstatechange": ("signalling", "stable", SIGNALING),
    "icegatheringstatechange": ("ICE gathering", "new", GATHERING),
    "iceconnectionstatechange": ("ICE connection", "new", ICE),
    "connectionstatechange": ("connection", "new", CONNECTION),
}
#: (state, description applied) -> the state it leads to (RFC 8829 4.1.8-4.1.10)
APPLY = {
    ("stable", "local", "offer"): "have-local-offer",
    ("stable", "remote", "offer"): "have-remote-offer",
    ("have-local-offer", "remote", "answer"): "stable",
    ("have-local-offer", "remote", "pranswer"): "have-remote-pranswer",
    ("have-remote-pranswer", "remote", "pranswer"): "have-remote-pranswer",
    ("have-remote-pranswer", "remote", "answer"): "stable",
    ("have-remote-offer", "local", "answer"): "stable",
    ("have-remote-offer", "local", "pranswer"): "have-local-pranswer",
    ("have-local-pranswer", "local", "pranswer"): "have-local-pranswer",
    ("have-local-pranswer", "local", "answer"): "stable",
}


def transitions(events: list[dict[str, Any]], kind: str) -> list[tuple[float, str]]:
    """(t, state) of each change of one machine, repeats folded."""
    out: list[tuple[float, str]] = []
    for ev in events:
        state = ev["data"].get("state") if ev["kind"] == kind else None
        if state and (not out or out[-1][1] != state):
            out.append((ev["t"], state))
    return out


def expected_signaling(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The signalling states the applied descriptions lead to, and descriptions JSEP forbids."""
    state, out, bad = "stable", [], []
    for ev in events:
        side = {"localdescription": "local", "remotedescription": "remote"}.get(ev["kind"])
        if side is None:
            continue
        typ = ev["data"].get("type")
        if typ == "rollback":
            nxt = "stable"
        elif side == "remote" and typ == "offer" and state == "have-local-offer":
            out.append("stable")  # perfect negotiation: an implicit rollback first (4.1.10.2)
            nxt = "have-remote-offer"
        else:
            nxt = APPLY.get((state, side, typ), "")
            if not nxt:
                bad.append(f"+{ev['t']:.3f}s {side} {typ} in {state}")
                continue
        if nxt != state:
            out.append(nxt)
        state = nxt
    return out, bad


@peer_check("jsep_states", "require", rfc="RFC 8829 3.2, 4.1.8-4.1.10", on_events=True)
def jsep_states(events: PeerEvents, p: dict[str, Any]) -> Outcome:
    """Every state change allowed; signalling states match the applied descriptions.

    `require: [have-local-pranswer, ...]`: states that must have been reached.
    """
    peer = p["peer"]
    if peer not in events:
        raise CheckError(f"no events were recorded from peer {peer!r}")
    evs = [e for e in events[peer] if e["data"].get("state") != "closed"]
    ev: list[str] = []
    problems: list[str] = []
    for kind, (label, first, allowed) in MACHINES.items():
        seq = transitions(evs, kind)
        ev.append(f"{label}: " + " -> ".join(f"{s} (+{t:.3f}s)" for t, s in seq))
        prev = first
        for t, state in seq:
            if (prev, state) not in allowed:
                problems.append(f"{label} {prev} -> {state} at +{t:.3f}s is not allowed")
            prev = state
    observed = [s for _, s in transitions(evs, "signalingstatechange")]
    want, bad = expected_signaling(evs)
    problems += [f"description JSEP forbids: {b}" for b in bad]
    ev.append("signalling the descriptions lead to: " + " -> ".join(["stable", *want]))
    if observed != want:
        problems.append(
            f"signalling states {observed} differ from those the descriptions lead to {want}"
        )
    reached = {s for kind in MACHINES for _, s in transitions(evs, kind)}
    for state in p.get("require") or []:
        if state not in reached:
            problems.append(f"never reached {state}")
    if problems:
        return Outcome(False, "; ".join(problems), ev)
    return Outcome(True, f"{peer}: {len(observed)} signalling changes, all as JSEP says", ev)


def peer_descriptions(peer: str, events: list[dict[str, Any]]) -> list[Description]:
    """The descriptions `peer` applied, in order: its own and its partner's."""
    out: list[Description] = []
    for ev in events:
        side = {"localdescription": "local", "remotedescription": "remote"}.get(ev["kind"])
        if side is None:
            if ev["kind"] == "icecandidate" and ev["data"].get("candidate") and out:
                for d in reversed(out):
                    if d.party == peer:
                        d.trickled = True
                        break
            continue
        typ = ev["data"].get("type") or ""
        party = peer if side == "local" else f"{peer}'s remote"
        label = f"{peer} {side} {typ} +{ev['t']:.3f}s"
        sdp = sdpmod.parse(ev["data"].get("sdp") or "")
        out.append(Description(party, typ, sdp, label, seen_all=side == "local"))
    return out


@peer_check(
    "peer_sdp_conformance",
    "max_errors",
    "warnings",
    "ignore",
    rfc="RFC 3264, RFC 8829 5.2-5.3",
    on_events=True,
)
def peer_sdp_conformance(events: PeerEvents, p: dict[str, Any]) -> Outcome:
    """Every description the peer set (local and remote) against the offer/answer rules.

    `ignore: [rule, ...]` leaves out findings of named rules (say why in the scenario).
    """
    peer = p["peer"]
    if peer not in events:
        raise CheckError(f"no events were recorded from peer {peer!r}")
    descs = peer_descriptions(peer, events[peer])
    if not descs:
        return Outcome(False, f"{peer} applied no description", [])
    ignore = set(p.get("ignore") or [])
    ev, errors = [], 0
    for rep in check_exchange(descs):
        for f in rep.findings:
            if f.message.split(":", 1)[0] in ignore:
                continue
            if f.severity == "error" or p.get("warnings"):
                errors += f.severity == "error"
                ev.append(f"{rep.description.label}: {f}")
    ok = errors <= p.get("max_errors", 0)
    return Outcome(ok, f"{errors} SDP error(s) in {len(descs)} descriptions of {peer}", ev)
