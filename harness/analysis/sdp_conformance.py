"""SDP offer/answer conformance: the rules one SDP alone cannot show, with RFC references.

`sdplint` judges one SDP; this module judges an exchange: each party's successive
descriptions and each answer against its offer (RFC 3264, RFC 8829 5.2-5.3,
RFC 8843 BUNDLE, RFC 8842 a=setup, RFC 8838/8840 trickle), plus the per-SDP rules
JSEP adds (placeholders, payload types of rtcp-fb/rtx, direction, msid).
Every finding names its rule, line and RFC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.analysis.sdp import Media, Sdp
from harness.analysis.sdplint import Finding, lint

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
#: RFC 3264 6.1: what an answer may say to each offered direction
ANSWER_DIRECTIONS = {
    "sendrecv": set(DIRECTIONS),
    "sendonly": {"recvonly", "inactive"},
    "recvonly": {"sendonly", "inactive"},
    "inactive": {"inactive"},
}
MSID = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,64}( [!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,64})?$")


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


def finding(rule: str, sev: str, line: tuple[int, str] | None, msg: str, rfc: str) -> Finding:
    no, text = line if line else (None, "")
    return Finding(sev, no, text, f"{rule}: {msg}", rfc)


def check_exchange(descs: list[Description], profile: str = "webrtc") -> list[Report]:
    """Findings per description, in order: sdplint's own plus the exchange rules.

    Descriptions are in the order they were applied; an offer is answered by the
    next answer (or pranswer) of another party; `rollback` entries (type
    'rollback', empty SDP) cancel the last offer.
    """
    reports: list[Report] = []
    last_local: dict[str, Description] = {}
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
        rep.findings += lint(d.sdp, role, prof, answering.sdp if answering else None)
        rep.findings += single(d.sdp, role, prof)
        if d.party in last_local:
            rep.findings += subsequent(last_local[d.party].sdp, d.sdp, d.seen_all)
        if answering is not None:
            rep.findings += answer_rules(answering.sdp, d.sdp)
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
        last_local[d.party] = d
    return reports


def captured(events: list, profile: str | None = None) -> list[Report]:
    """Reports for SDPs seen on the wire (analysis SdpEvents), one exchange per dialog.

    The wire does not say who wrote an SDP; its o= username and session id do
    (RFC 8866 5.2), so a party that changes its session id looks like a new one.
    """
    by_dialog: dict[object, list[Description]] = {}
    for ev in events:
        o = next((t for _, t in ev.sdp.session if t.startswith("o=")), "o=")
        party = " ".join(o[2:].split()[:2]) or f"{ev.src}"
        prof = profile or (
            "webrtc"
            if any("SAVPF" in m.proto or "DTLS" in m.proto for m in ev.sdp.media)
            else "sip"
        )
        label = f"SDP {ev.type or 'offer'} frame {ev.frame} ({ev.source})"
        d = Description(party, ev.type or "offer", ev.sdp, label, profile=prof, seen_all=False)
        by_dialog.setdefault(ev.dialog, []).append(d)
    reports = [r for descs in by_dialog.values() for r in check_exchange(descs)]
    order = {id(ev.sdp): i for i, ev in enumerate(events)}
    return sorted(reports, key=lambda r: order.get(id(r.description.sdp), 0))


# -- one SDP ---------------------------------------------------------------------------------


def single(sdp: Sdp, role: str, profile: str) -> list[Finding]:
    out: list[Finding] = []
    for m in sdp.media:
        out += payload_types(m)
        dirs = [(no, v) for v in DIRECTIONS for no, _ in m.attrs(v)]
        if len(dirs) > 1:
            no = sorted(dirs)[1][0]
            out.append(
                finding(
                    "direction",
                    "error",
                    (no, f"a={sorted(dirs)[1][1]}"),
                    "more than one direction attribute",
                    "RFC 8866 6.7",
                )
            )
        for no, v in m.attrs("msid"):
            if not MSID.match(v):
                out.append(
                    finding(
                        "msid",
                        "error",
                        (no, f"a=msid:{v}"),
                        "msid is '<id> [<appdata>]', 1-64 token chars each",
                        "RFC 8830 2",
                    )
                )
            if direction(sdp, m) in ("recvonly", "inactive"):
                out.append(
                    finding(
                        "msid",
                        "warning",
                        (no, f"a=msid:{v}"),
                        f"a=msid in a {direction(sdp, m)} section: it names a track that is not sent",
                        "RFC 8829 5.2.1",
                    )
                )
        if profile == "webrtc":
            out += placeholders(sdp, m, role)
    return out


def direction(sdp: Sdp, m: Media) -> str:
    for d in DIRECTIONS:
        if m.has(d):
            return d
    for d in DIRECTIONS:
        if sdp.attrs(d):
            return d
    return "sendrecv"


def payload_types(m: Media) -> list[Finding]:
    """rtpmap, fmtp and rtcp-fb name formats of the m= line; rtx's apt names a real codec."""
    out: list[Finding] = []
    if m.kind not in ("audio", "video") or m.port == 0:
        return out
    formats = set(m.formats)
    for attr, rfc in (
        ("rtpmap", "RFC 8866 6.6"),
        ("fmtp", "RFC 8866 6.15"),
        ("rtcp-fb", "RFC 4585 4.2"),
    ):
        for no, v in m.attrs(attr):
            pt = v.split(" ", 1)[0]
            if pt not in formats and not (attr == "rtcp-fb" and pt == "*"):
                out.append(
                    finding(
                        "payload-types",
                        "error",
                        (no, f"a={attr}:{v}"),
                        f"payload type {pt} is not on the m= line",
                        rfc,
                    )
                )
    codecs = m.codecs
    for no, v in m.attrs("fmtp"):
        pt, _, params = v.partition(" ")
        if not codecs.get(pt, "").lower().startswith("rtx/"):
            continue
        apt = dict(p.strip().partition("=")[::2] for p in params.split(";")).get("apt")
        target = codecs.get(apt or "", "")
        if apt is None or apt not in formats or target.lower().startswith("rtx/"):
            out.append(
                finding(
                    "payload-types",
                    "error",
                    (no, f"a=fmtp:{v}"),
                    f"rtx apt={apt} does not name a codec of this m= line",
                    "RFC 4588 8.6",
                )
            )
    return out


def placeholders(sdp: Sdp, m: Media, role: str) -> list[Finding]:
    """RFC 8829 5.2.1/5.3.1: without candidates, port 9 (0 if bundle-only) and c=IN IP4 0.0.0.0;
    with candidates, c= and port are a candidate's (the default candidate, RFC 8839 4.2.1.2)."""
    if m.port == 0:
        return []
    out: list[Finding] = []
    cands = [v.split() for _, v in m.attrs("candidate")]
    cline = next(((no, t) for no, t in m.lines if t.startswith("c=")), None)
    conn = (cline[1][2:] if cline else sdp.connection) or ""
    addr = conn.split()[-1] if conn else ""
    if m.has("bundle-only") and role == "offer":
        out.append(
            finding(
                "placeholder",
                "error",
                m.line,
                "a bundle-only section in an offer has port 0",
                "RFC 8843 6, 7.2.1",
            )
        )
    _, group = _bundle(sdp)
    if m.attr("mid") in group[1:] and not cands:
        return out  # bundled, not the tagged section: its transport is the tagged one's
    if not cands:
        if m.port != 9:
            out.append(
                finding(
                    "placeholder",
                    "error",
                    m.line,
                    f"no candidates, so the port is the placeholder 9, not {m.port}",
                    "RFC 8829 5.2.1, 5.3.1",
                )
            )
        if addr not in ("0.0.0.0", "::"):
            out.append(
                finding(
                    "placeholder",
                    "error",
                    cline or m.line,
                    f"no candidates, so c= is IN IP4 0.0.0.0, not {addr}",
                    "RFC 8829 5.2.1, 5.3.1",
                )
            )
        return out
    default = {(c[4], c[5]) for c in cands if len(c) > 5}
    if (addr, str(m.port)) not in default and not (m.port == 9 and addr in ("0.0.0.0", "::")):
        out.append(
            finding(
                "placeholder",
                "warning",
                m.line,
                f"c={addr} port {m.port} is no candidate of this section (the default candidate goes there)",
                "RFC 8839 4.2.1.2",
            )
        )
    return out


# -- successive descriptions of one party ----------------------------------------------------


def _origin(sdp: Sdp) -> tuple[tuple[int, str] | None, list[str]]:
    line = next(((no, t) for no, t in sdp.session if t.startswith("o=")), None)
    return line, (line[1][2:].split() if line else [])


def _body(sdp: Sdp) -> str:
    return "\n".join(t for _, t in sdp.session if not t.startswith("o=")) + "\n".join(
        t for m in sdp.media for t in [m.line[1], *(x for _, x in m.lines)]
    )


def subsequent(prev: Sdp, cur: Sdp, seen_all: bool = True) -> list[Finding]:
    """RFC 3264 8 and RFC 8829 5.2.2: same origin and session id, version +1 when the
    SDP changed (+0 when not; more than +1 only across descriptions not seen), the
    same certificate and mids, no m= line removed."""
    out: list[Finding] = []
    (line, o_now), (_, o_then) = _origin(cur), _origin(prev)
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
        elif o_now[2].isdigit() and o_then[2].isdigit():
            step = int(o_now[2]) - int(o_then[2])
            want = 0 if _body(prev) == _body(cur) else 1
            if step < 0 or (want == 1 and step == 0) or (seen_all and step > 1):
                out.append(
                    finding(
                        "subsequent",
                        "error",
                        line,
                        f"session version went {o_then[2]} -> {o_now[2]}; a changed SDP adds exactly 1",
                        "RFC 3264 8, RFC 8829 5.2.2",
                    )
                )
    before, after = set(prev.fingerprints), set(cur.fingerprints)
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
        if o.attr("mid") != a.attr("mid"):
            out.append(
                finding(
                    "mirror",
                    "error",
                    a.line,
                    f"mid {a.attr('mid')}, the offer's section has {o.attr('mid')}",
                    "RFC 5888 9.1, RFC 8829 5.3.1",
                )
            )
        od, ad = direction(offer, o), direction(answer, a)
        if ad not in ANSWER_DIRECTIONS[od]:
            out.append(
                finding("direction", "error", a.line, f"answers {od} with {ad}", "RFC 3264 6.1")
            )
    out += bundle_rules(offer, answer)
    return out


def _bundle(sdp: Sdp) -> tuple[tuple[int, str] | None, list[str]]:
    for no, v in sdp.attrs("group"):
        if v.startswith("BUNDLE"):
            return (no, f"a=group:{v}"), v.split()[1:]
    return None, []


def bundle_rules(offer: Sdp, answer: Sdp) -> list[Finding]:
    out: list[Finding] = []
    _, offered = _bundle(offer)
    line, answered = _bundle(answer)
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
    for attr in ("ice-ufrag", "fingerprint"):
        values = {answer.media_attr(m, attr) for m in live}
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


def trickle_rules(offer: Description, answer: Description) -> list[Finding]:
    """RFC 8838 4-5, RFC 8840 4.1.3: trickle only what both sides announced."""
    out: list[Finding] = []
    for d, other in ((offer, answer), (answer, offer)):
        if not d.trickled:
            continue
        own = any("trickle" in v.split() for _, v in d.sdp.attrs("ice-options")) or any(
            "trickle" in v.split() for m in d.sdp.media for _, v in m.attrs("ice-options")
        )
        theirs = any("trickle" in v.split() for _, v in other.sdp.attrs("ice-options")) or any(
            "trickle" in v.split() for m in other.sdp.media for _, v in m.attrs("ice-options")
        )
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
