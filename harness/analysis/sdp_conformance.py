"""SDP offer/answer conformance: the rules one SDP alone cannot show, with RFC references.

`sdplint` judges one SDP; this module judges an exchange: each party's successive
descriptions and each answer against its offer (RFC 3264, RFC 8829 5.2-5.3,
RFC 8843 BUNDLE, RFC 8842 a=setup, RFC 8838/8840 trickle), plus the per-SDP rules
JSEP adds (placeholders, payload types of rtcp-fb/rtx, direction, msid).
Every finding names its rule, line and RFC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.analysis.memo import Bounded
from harness.analysis.sdp import DIRECTIONS, Sdp
from harness.analysis.sdp_rules import finding, single
from harness.analysis.sdplint import Finding, lint

#: RFC 3264 6.1: what an answer may say to each offered direction
ANSWER_DIRECTIONS = {
    "sendrecv": set(DIRECTIONS),
    "sendonly": {"recvonly", "inactive"},
    "recvonly": {"sendonly", "inactive"},
    "inactive": {"inactive"},
}


@dataclass
class Description:
    """One SDP as a party applied it: who made it, offer/answer/pranswer, and its text."""

    party: str
    type: str
    sdp: Sdp
    label: str = ""
    """Where it came from, for reports (e.g. 'alice local offer +1.203s', 'frame 12')."""
    trickled: bool = False
    """The party sent trickled candidates for this description."""
    profile: str | None = None
    """'webrtc' or 'sip' for this SDP (default: the exchange's)."""
    seen_all: bool = True
    """Every description this party made is in the list (its own view); False for a
    far end's, which may have made some it never sent (a rolled-back offer)."""


@dataclass
class Report:
    """The findings of one description."""

    description: Description
    findings: list[Finding] = field(default_factory=list)


def check_exchange(descs: list[Description], profile: str = "webrtc") -> list[Report]:
    """Findings per description, in order: sdplint's own plus the exchange rules.

    Descriptions are in the order they were applied; an offer is answered by the
    next answer (or pranswer) of another party; `rollback` entries (type
    'rollback', empty SDP) cancel the last offer.
    """
    reports: list[Report] = []
    last_local: dict[str, tuple[Description, _Version]] = {}
    offer: Description | None = None
    for d in descs:
        if d.type == "rollback":
            offer = None
            continue
        rep = Report(d)
        reports.append(rep)
        answering = offer if d.type in ("answer", "pranswer") and offer else None
        role = "answer" if d.type in ("answer", "pranswer") else "offer"
        prof = d.profile or profile
        rep.findings += _own(d.sdp, role, prof, answering.sdp if answering else None)
        version = _Version(d.sdp)
        if d.party in last_local:
            rep.findings += _subsequent(last_local[d.party][1], version, d.seen_all)
        if answering is not None:
            rep.findings += _against(answering.sdp, d.sdp)
            rep.findings += trickle_rules(answering, d)
        elif role == "answer":
            rep.findings.append(
                finding(
                    "mirror", "warning", None, "an answer with no offer before it", "RFC 3264 5"
                )
            )
        if role == "offer":
            offer = d
        elif d.type == "answer":
            offer = None
        last_local[d.party] = (d, version)
    return reports


#: what `_own` and `_against` found, by the SDPs' texts but their o= values (`Sdp.unversioned`:
#: neither reads them); a key holds whole SDP texts, hence the smaller bound
Kept = Bounded[tuple[str | None, ...], tuple[Finding, ...]]
_owns: Kept = Bounded(1024)
_answers: Kept = Bounded(1024)


def _own(sdp: Sdp, role: str, profile: str, offer: Sdp | None) -> tuple[Finding, ...]:
    """`lint`'s and `single`'s findings, worked out once per distinct text but its o= value:
    a call's successive SDPs (a SIP re-INVITE's) differ only in the session version."""
    key = (sdp.unversioned, role, profile, offer.unversioned if offer else None)
    found = _owns.get(key)
    if found is None:
        found = _owns.keep(key, (*lint(sdp, role, profile, offer), *single(sdp, role, profile)))
    return found


def _against(offer: Sdp, answer: Sdp) -> tuple[Finding, ...]:
    """`answer_rules`, worked out once per distinct pair of texts but their o= values."""
    key = (offer.unversioned, answer.unversioned)
    found = _answers.get(key)
    if found is None:
        found = _answers.keep(key, tuple(answer_rules(offer, answer)))
    return found


def captured(events: list, profile: str | None = None) -> list[Report]:
    """Reports for SDPs seen on the wire (analysis SdpEvents), one exchange per dialog
    and hop (a proxy's forwarded copy starts the next hop's exchange).

    The wire does not say who wrote an SDP; its o= username and session id do
    (RFC 8866 5.2), so a party that changes its session id looks like a new one. The
    sender's address is part of the party too: two stacks that take their session id from
    the clock (aiortc) and start in the same second write the same o= line.
    """
    by_dialog: dict[object, list[Description]] = {}
    order: dict[int, int] = {}  # id of each SDP -> where its (last) event is
    for i, ev in enumerate(events):
        sdp, src = ev.sdp, ev.src[0]
        o = sdp.origin[1] if sdp.origin else "o="
        party = f"{' '.join(o[2:].split()[:2])} from {src}"
        prof = profile or _profile(sdp)
        kind = ev.type or "offer"
        label = f"SDP {kind} frame {ev.frame} ({ev.source})"
        d = Description(party, kind, sdp, label, profile=prof, seen_all=False)
        # Janus API requests name their handle in the URL, its events in the body:
        # the JSEP of one client and Janus is one exchange.
        dialog = "jsep" if ev.source.startswith("jsep/") else ev.dialog
        by_dialog.setdefault((dialog, frozenset((src, ev.dst[0]))), []).append(d)
        order[id(sdp)] = i
    reports = [r for descs in by_dialog.values() for r in check_exchange(descs)]
    return sorted(reports, key=lambda r: order.get(id(r.description.sdp), 0))


def _profile(sdp: Sdp) -> str:
    """'webrtc' for an SDP with a secure (SAVPF) or DTLS section, else 'sip'."""
    for m in sdp.media:
        if "SAVPF" in m.proto or "DTLS" in m.proto:
            return "webrtc"
    return "sip"


# -- successive descriptions of one party ----------------------------------------------------


class _Version:
    """What `subsequent` compares of one description, worked out once for it."""

    __slots__ = ("sdp", "line", "origin", "fingerprints")

    def __init__(self, sdp: Sdp) -> None:
        self.sdp = sdp
        self.line = sdp.origin
        self.origin = self.line[1][2:].split() if self.line else []
        self.fingerprints = set(sdp._fingerprints)


def subsequent(prev: Sdp, cur: Sdp, seen_all: bool = True) -> list[Finding]:
    """RFC 3264 8 and RFC 8829 5.2.2: same origin and session id, version +1 when the
    SDP changed (+0 when not; more than +1 only across descriptions not seen), the
    same certificate and mids, no m= line removed."""
    return _subsequent(_Version(prev), _Version(cur), seen_all)


def _subsequent(then: _Version, now: _Version, seen_all: bool) -> list[Finding]:
    out: list[Finding] = []
    prev, cur = then.sdp, now.sdp
    line, o_now, o_then = now.line, now.origin, then.origin
    if len(o_now) >= 3 and len(o_then) >= 3:
        if o_now[:2] != o_then[:2]:
            out.append(
                finding(
                    "session-id",
                    "error",
                    line,
                    f"o= username/session id changed from {' '.join(o_then[:2])}",
                    "RFC 3264 8, RFC 8829 5.2.2",
                )
            )
        elif (o_now[2] + o_then[2]).isascii() and o_now[2].isdigit() and o_then[2].isdigit():
            step = int(o_now[2]) - int(o_then[2])
            # a changed SDP must add 1: its body is compared only when the version stayed
            changed = step == 0 and then.sdp.body != now.sdp.body
            if step < 0 or changed or (seen_all and step > 1):
                out.append(
                    finding(
                        "subsequent",
                        "error",
                        line,
                        f"session version went {o_then[2]} -> {o_now[2]}; a changed SDP adds exactly 1",
                        "RFC 3264 8, RFC 8829 5.2.2",
                    )
                )
    before, after = then.fingerprints, now.fingerprints
    if before and after and before != after:
        no = next((n for m in cur.media for n, _ in m.attrs("fingerprint")), None) or next(
            (n for n, _ in cur.attrs("fingerprint")), None
        )
        out.append(
            finding(
                "subsequent",
                "error",
                (no, "a=fingerprint") if no else None,
                "certificate fingerprint changed within the session",
                "RFC 8829 5.2.2, RFC 8842 5.5",
            )
        )
    if len(cur.media) < len(prev.media):
        out.append(
            finding(
                "subsequent",
                "error",
                None,
                f"{len(prev.media)} m= sections became {len(cur.media)}: sections are never removed",
                "RFC 3264 8.1",
            )
        )
    for i, (a, b) in enumerate(zip(prev.media, cur.media, strict=False)):
        ma, mb = a.attr("mid"), b.attr("mid")
        if ma and mb and ma != mb and a.port != 0:
            out.append(
                finding(
                    "subsequent",
                    "error",
                    b.line,
                    f"m= section {i} changed its mid {ma} -> {mb}",
                    "RFC 8829 5.2.2",
                )
            )
        sa, sb = a.attr("setup"), b.attr("setup")
        if (
            sa in ("active", "passive")
            and sb in ("active", "passive")
            and sa != sb
            and before == after
        ):
            out.append(
                finding(
                    "setup",
                    "warning",
                    b.line,
                    f"DTLS role a=setup:{sa} -> {sb} with the same certificate: a new DTLS association",
                    "RFC 8842 5.5",
                )
            )
    return out


# -- an answer against its offer --------------------------------------------------------------


def answer_rules(offer: Sdp, answer: Sdp) -> list[Finding]:
    """RFC 3264 6 and RFC 8829 5.3.1: same sections in the same order, same proto and mid,
    rejected sections stay rejected, a compatible direction; BUNDLE within the offer's."""
    out: list[Finding] = []
    if len(answer.media) != len(offer.media):
        out.append(
            finding(
                "mirror",
                "error",
                None,
                f"the offer has {len(offer.media)} m= sections, the answer {len(answer.media)}",
                "RFC 3264 6",
            )
        )
    for i, (o, a) in enumerate(zip(offer.media, answer.media, strict=False)):
        if o.kind != a.kind:
            out.append(
                finding(
                    "mirror",
                    "error",
                    a.line,
                    f"m= section {i} is {o.kind} in the offer",
                    "RFC 3264 6",
                )
            )
            continue
        if o.port == 0 and a.port != 0 and not o.has("bundle-only"):
            out.append(
                finding(
                    "rejected",
                    "error",
                    a.line,
                    f"m= section {i} was rejected (port 0) in the offer",
                    "RFC 3264 6",
                )
            )
        if a.port == 0:
            continue
        if a.proto != o.proto:
            out.append(
                finding(
                    "mirror",
                    "error",
                    a.line,
                    f"proto {a.proto}, the offer has {o.proto}",
                    "RFC 3264 6, RFC 8829 5.3.1",
                )
            )
        # an answerer without grouping support ignores a=mid (RFC 5888 9.2)
        if a.attr("mid") is not None and o.attr("mid") != a.attr("mid"):
            out.append(
                finding(
                    "mirror",
                    "error",
                    a.line,
                    f"mid {a.attr('mid')}, the offer's section has {o.attr('mid')}",
                    "RFC 5888 9.1, RFC 8829 5.3.1",
                )
            )
        od, ad = o.direction, a.direction
        if ad not in ANSWER_DIRECTIONS[od]:
            out.append(
                finding("direction", "error", a.line, f"answers {od} with {ad}", "RFC 3264 6.1")
            )
    out += bundle_rules(offer, answer)
    return out


def bundle_rules(offer: Sdp, answer: Sdp) -> list[Finding]:
    out: list[Finding] = []
    _, offered = offer.bundle
    line, answered = answer.bundle
    extra = [m for m in answered if m not in offered]
    if extra:
        out.append(
            finding(
                "bundle",
                "error",
                line,
                f"mids {extra} are not in the offer's BUNDLE group",
                "RFC 8843 7.3",
            )
        )
    by_mid = {m.attr("mid"): m for m in answer.media}
    grouped = [by_mid[m] for m in answered if m in by_mid]
    for m in grouped:
        if m.port == 0:
            out.append(
                finding(
                    "bundle",
                    "error",
                    m.line,
                    f"mid {m.attr('mid')} is in the BUNDLE group but rejected",
                    "RFC 8843 7.3.3",
                )
            )
    live = [m for m in grouped if m.port != 0]
    for attr, at in (("ice-ufrag", 0), ("fingerprint", 2)):
        values = {m.transport[at] for m in live}
        if len(values) > 1:
            out.append(
                finding(
                    "bundle",
                    "error",
                    line,
                    f"bundled sections carry different a={attr}",
                    "RFC 8843 7.3, RFC 8829 5.3.1",
                )
            )
    return out


def announces_trickle(sdp: Sdp) -> bool:
    """a=ice-options:trickle at session level or in any section (RFC 8840 4.1.1)."""
    lines = [*sdp.attrs("ice-options"), *(x for m in sdp.media for x in m.attrs("ice-options"))]
    return any("trickle" in v.split() for _, v in lines)


def trickle_rules(offer: Description, answer: Description) -> list[Finding]:
    """RFC 8838 4-5, RFC 8840 4.1.3: trickle only what both sides announced."""
    out: list[Finding] = []
    for d, other in ((offer, answer), (answer, offer)):
        if not d.trickled:
            continue
        own, theirs = announces_trickle(d.sdp), announces_trickle(other.sdp)
        if not own:
            out.append(
                finding(
                    "trickle",
                    "error",
                    None,
                    f"{d.party} trickled candidates without a=ice-options:trickle",
                    "RFC 8840 4.1.3",
                )
            )
        elif not theirs:
            out.append(
                finding(
                    "trickle",
                    "error",
                    None,
                    f"{d.party} trickled to {other.party}, whose SDP did not announce trickle",
                    "RFC 8838 5",
                )
            )
    return out
