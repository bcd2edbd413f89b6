"""SDP offer/answer conformance: real SDPs of every stack pass; each rule fails on an SDP
broken on purpose, naming its rule, line and RFC."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis.sdp import parse
from harness.analysis.sdp_conformance import Description, check_exchange

DATA = Path(__file__).parent.parent / "data" / "sdp"

OFFER = """v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 96 0
c=IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuv
a=ice-options:trickle
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99
a=setup:actpass
a=mid:0
a=sendrecv
a=msid:s1 t1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:96 rtx/48000
a=fmtp:96 apt=111
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuv
a=ice-options:trickle
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99
a=setup:actpass
a=mid:1
a=sctp-port:5000
"""
ANSWER = (
    OFFER.replace("o=- 4611731400430051336 2", "o=- 7000000000000000001 2")
    .replace("a=ice-ufrag:abcd", "a=ice-ufrag:wxyz")
    .replace("a=setup:actpass", "a=setup:active")
    .replace("AA:BB:CC", "11:22:33")
    .replace("a=msid:s1 t1", "a=msid:s2 t2")
)


def sdp(text: str) -> str:
    return text.replace("\n", "\r\n")


def run(*descs: tuple[str, str, str], trickled: str = "") -> list[str]:
    """(party, type, text) in order -> 'rule: message [RFC]' of every error and warning."""
    items = [Description(p, t, parse(sdp(x)), trickled=p == trickled) for p, t, x in descs]
    return [
        f"{f.severity} {f.message} [{f.rfc}]" for rep in check_exchange(items) for f in rep.findings
    ]


def rules(*descs: tuple[str, str, str], trickled: str = "") -> set[str]:
    return {f.split(" ", 2)[1].rstrip(":") for f in run(*descs, trickled=trickled)}


def test_a_clean_exchange_has_no_finding() -> None:
    assert run(("a", "offer", OFFER), ("b", "answer", ANSWER)) == []


def test_renegotiation_keeps_origin_and_adds_one() -> None:
    again = OFFER.replace(" 2 IN IP4", " 3 IN IP4").replace("a=sendrecv", "a=sendonly")
    answer2 = (
        ANSWER.replace(" 2 IN IP4", " 3 IN IP4")
        .replace("a=sendrecv", "a=recvonly")
        .replace("a=msid:s2 t2\n", "")
    )
    seq = [
        ("a", "offer", OFFER),
        ("b", "answer", ANSWER),
        ("a", "offer", again),
        ("b", "answer", answer2),
    ]
    assert run(*seq) == []


# -- one broken SDP per rule --------------------------------------------------------------------

BROKEN = {
    # rule: (exchange, the finding it must give)
    "placeholder": (
        [("a", "offer", OFFER.replace("m=audio 9 ", "m=audio 5004 ", 1))],
        "error placeholder: no candidates, so the port is the placeholder 9, not 5004 [RFC 8829 5.2.1, 5.3.1]",
    ),
    "subsequent": (
        [
            ("a", "offer", OFFER),
            ("b", "answer", ANSWER),
            (
                "a",
                "offer",
                OFFER.replace(" 2 IN IP4", " 4 IN IP4").replace("a=sendrecv", "a=sendonly"),
            ),
        ],
        "error subsequent: session version went 2 -> 4; a changed SDP adds exactly 1 [RFC 3264 8, RFC 8829 5.2.2]",
    ),
    "session-id": (
        [
            ("a", "offer", OFFER),
            ("b", "answer", ANSWER),
            ("a", "offer", OFFER.replace("4611731400430051336 2", "4611731400430051337 3")),
        ],
        "error session-id: o= username/session id changed from - 4611731400430051336 [RFC 3264 8, RFC 8829 5.2.2]",
    ),
    "mirror": (
        [
            ("a", "offer", OFFER),
            ("b", "answer", ANSWER.replace("9 UDP/DTLS/SCTP", "9 DTLS/SCTP")),
        ],
        "error mirror: proto DTLS/SCTP, the offer has UDP/DTLS/SCTP [RFC 3264 6, RFC 8829 5.3.1]",
    ),
    "rejected": (
        [
            ("a", "offer", OFFER.replace("m=application 9 ", "m=application 0 ")),
            ("b", "answer", ANSWER),
        ],
        "error rejected: m= section 1 was rejected (port 0) in the offer [RFC 3264 6]",
    ),
    "bundle": (
        [
            ("a", "offer", OFFER.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0")),
            ("b", "answer", ANSWER),
        ],
        "error bundle: mids ['1'] are not in the offer's BUNDLE group [RFC 8843 7.3]",
    ),
    "trickle": (
        [("a", "offer", OFFER.replace("a=ice-options:trickle\n", "")), ("b", "answer", ANSWER)],
        "error trickle: a trickled candidates without a=ice-options:trickle [RFC 8840 4.1.3]",
    ),
    "direction": (
        [("a", "offer", OFFER.replace("a=sendrecv", "a=sendonly")), ("b", "answer", ANSWER)],
        "error direction: answers sendonly with sendrecv [RFC 3264 6.1]",
    ),
    "payload-types": (
        [("a", "offer", OFFER.replace("a=fmtp:96 apt=111", "a=fmtp:96 apt=100"))],
        "error payload-types: rtx apt=100 does not name a codec of this m= line [RFC 4588 8.6]",
    ),
    "setup": (
        [
            ("a", "offer", OFFER),
            ("b", "answer", ANSWER),
            ("a", "offer", OFFER.replace(" 2 IN IP4", " 3 IN IP4")),
            (
                "b",
                "answer",
                ANSWER.replace(" 2 IN IP4", " 3 IN IP4").replace(
                    "a=setup:active", "a=setup:passive"
                ),
            ),
        ],
        "warning setup: DTLS role a=setup:active -> passive with the same certificate: a new DTLS association [RFC 8842 5.5]",
    ),
    "msid": (
        [("a", "offer", OFFER.replace("a=msid:s1 t1", "a=msid:s1 t1 extra"))],
        "error msid: msid is '<id> [<appdata>]', 1-64 token chars each [RFC 8830 2]",
    ),
}


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_each_rule_catches_its_broken_sdp(rule: str) -> None:
    exchange, want = BROKEN[rule]
    got = run(*exchange, trickled="a" if rule == "trickle" else "")
    assert want in got, got
    assert rules(*exchange, trickled="a" if rule == "trickle" else "") == {rule}, got


def test_more_rules_catch_more_breakage() -> None:
    """The second half of some rules: their findings, each on a fresh broken SDP."""
    fp = OFFER.replace(" 2 IN IP4", " 3 IN IP4").replace("AA:BB:CC", "AB:BB:CC")
    assert (
        "error subsequent: certificate fingerprint changed within the session [RFC 8829 5.2.2, RFC 8842 5.5]"
        in run(("a", "offer", OFFER), ("b", "answer", ANSWER), ("a", "offer", fp))
    )
    fb = OFFER.replace("a=rtcp-fb:111 transport-cc", "a=rtcp-fb:110 nack")
    assert "error payload-types: payload type 110 is not on the m= line [RFC 4585 4.2]" in run(
        ("a", "offer", fb)
    )
    mids = ANSWER.replace("a=mid:1", "a=mid:data")
    assert (
        "error mirror: mid data, the offer's section has 1 [RFC 5888 9.1, RFC 8829 5.3.1]"
        in run(("a", "offer", OFFER), ("b", "answer", mids))
    )
    c = OFFER.replace("c=IN IP4 0.0.0.0", "c=IN IP4 198.18.0.10", 1)
    assert any("no candidates, so c= is IN IP4 0.0.0.0" in f for f in run(("a", "offer", c)))
    only = OFFER.replace("a=mid:1\n", "a=mid:1\na=bundle-only\n")
    assert any("bundle-only section in an offer has port 0" in f for f in run(("a", "offer", only)))
    split = ANSWER.replace("a=ice-ufrag:wxyz", "a=ice-ufrag:wxyq", 1)
    assert (
        "error bundle: bundled sections carry different a=ice-ufrag [RFC 8843 7.3, RFC 8829 5.3.1]"
        in run(("a", "offer", OFFER), ("b", "answer", split))
    )
    two = OFFER.replace("a=sendrecv", "a=sendrecv\na=recvonly")
    assert any(
        f.startswith("error direction: more than one direction") for f in run(("a", "offer", two))
    )
    far = ANSWER.replace("a=ice-options:trickle\n", "")
    assert "error trickle: a trickled to b, whose SDP did not announce trickle [RFC 8838 5]" in run(
        ("a", "offer", OFFER), ("b", "answer", far), trickled="a"
    )


# -- real SDPs ---------------------------------------------------------------------------------


def load(name: str) -> list[Description]:
    """A recorded exchange (tests/data/sdp/extract.py wrote it; README.md says from what)."""
    import json

    data = json.loads((DATA / f"{name}.json").read_text())
    return [
        Description(
            d["party"],
            d["type"],
            parse(d["sdp"]),
            # the peer's own descriptions are all there; a far end's or the wire's may not be
            seen_all="remote" not in d["party"] and "dialog" not in d,
        )
        for d in data["descriptions"]
    ]


def findings_of(name: str) -> list[str]:
    return [
        f"{rep.description.party} {rep.description.type}: {f.severity} {f.message}"
        for rep in check_exchange(load(name))
        for f in rep.findings
    ]


@pytest.mark.parametrize("name", ["chromium-jsep-glare", "firefox-jsep-glare", "chromium-pranswer"])
def test_browser_exchanges_conform(name: str) -> None:
    """Chromium 156 and Firefox 153 through offer, answer, rollback, glare and pranswer."""
    assert findings_of(name) == []


def test_aiortc_changes_its_session_id() -> None:
    """aiortc 1.16 writes o=- <ntp seconds> <ntp seconds> afresh for every description
    (rtcpeerconnection.py), so its re-offer breaks RFC 3264 8; nothing else is wrong."""
    got = findings_of("aiortc-restart")
    assert got and all("session-id: o= username/session id changed" in f for f in got), got


def wire_findings(name: str) -> list[str]:
    """Findings on SDPs the analyser took from a capture (grouped per dialog and hop)."""
    import json
    from types import SimpleNamespace

    from harness.analysis.sdp_conformance import captured

    data = json.loads((DATA / f"{name}.json").read_text())
    events = [
        SimpleNamespace(
            sdp=parse(d["sdp"]),
            type=d["type"],
            frame=d["frame"],
            source=d["source"],
            dialog=d["dialog"],
            src=tuple(d["src"]),
            dst=tuple(d["dst"]),
        )
        for d in data["descriptions"]
    ]
    return [
        f"{rep.description.label}: {f.severity} {f.message}"
        for rep in captured(events)
        for f in rep.findings
    ]


def test_rtpengine_answers_a_webrtc_offer_with_another_proto() -> None:
    """Firefox (JsSIP) -> Kamailio + rtpengine -> baresip: rtpengine's answer to the
    browser says RTP/SAVPF to an offer of UDP/TLS/RTP/SAVPF (the Kamailio config asks
    rtpengine for RTP/SAVPF); the SIP leg (RTP/AVP both ways) is clean, and baresip's
    answer without a=mid is fine (it does not do grouping, RFC 5888 9.2)."""
    got = [f for f in wire_findings("rtpengine-firefox-jssip") if " error " in f]
    assert got == [
        "SDP answer frame 40 (sip/ws): error profile RTP/SAVPF, WebRTC needs UDP/TLS/RTP/SAVPF",
        "SDP answer frame 40 (sip/ws): error mirror: proto RTP/SAVPF, the offer has UDP/TLS/RTP/SAVPF",
    ]


def test_janus_forum_report_exchange() -> None:
    """The forum report's cell (no trickle, relay-only, Janus behind a NAT) with Firefox:
    offer, answer, restart offer, restart answer through Janus's API and its SIP leg.
    No error; Janus answers with port 9 but c= its address, which is no candidate
    (RFC 8839 wants the default candidate there): a warning on both answers."""
    got = wire_findings("janus-forum-report-firefox")
    assert [f for f in got if " error " in f] == []
    assert got == [
        f"SDP answer frame {n} (jsep/http): warning placeholder: c=198.18.0.10 port 9 is no "
        "candidate of this section (the default candidate goes there)"
        for n in (132, 599)
    ]


# -- what an SDP shows on its own, worked out once per text but its o= value -------------------


def test_unversioned_leaves_out_the_o_value_and_keeps_every_line_number() -> None:
    text = sdp(OFFER)
    got = parse(text).unversioned
    assert got == text.replace("o=- 4611731400430051336 2 IN IP4 127.0.0.1", "o=", 1)
    assert got.count("\n") == text.count("\n")
    first = "o=- 1 2 IN IP4 127.0.0.1\nv=0\ns=-\nt=0 0\n"
    assert parse(first).unversioned == first  # line 1 is quoted by a finding: kept whole


def test_successive_versions_share_findings_and_other_texts_do_not() -> None:
    """The exchange's SDPs, again with other o= values and one a=setup broken: the
    findings kept for a text differing only in its o= value are the same, and a text
    differing anywhere else gets its own."""
    again = [
        (p, t, x.replace(" 2 IN IP4", " 9 IN IP4"))
        for p, t, x in [("c", "offer", OFFER), ("d", "answer", ANSWER)]
    ]
    broken = ("e", "offer", OFFER.replace("a=setup:actpass", "a=setup:active", 1))
    assert run(("a", "offer", OFFER), ("b", "answer", ANSWER)) == []
    assert run(*again) == []
    assert run(broken) == [
        "error an offer must use actpass [RFC 8842 5.2]",
    ]


def test_a_first_line_o_keeps_its_own_quote() -> None:
    """An SDP whose o= is line 1 with LF ends: the finding quotes that line, its value and all."""
    first = "o=- {} 2 IN IP4 127.0.0.1\ns=-\nt=0 0\n"
    quotes = []
    for n in (1, 2):
        rep = check_exchange([Description("a", "offer", parse(first.format(n)))], "sip")[0]
        quotes.append(next(f.line for f in rep.findings if "CRLF" in f.message))
    assert quotes == ["o=- 1 2 IN IP4 127.0.0.1", "o=- 2 2 IN IP4 127.0.0.1"]
