"""SDP lint: one finding per problem, with its line and RFC."""

from __future__ import annotations

from harness.analysis.sdp import parse
from harness.analysis.sdplint import lint

OFFER = """v=0
o=- 1 1 IN IP4 198.18.0.10
s=-
t=0 0
a=group:BUNDLE 0
m=audio 9 UDP/TLS/RTP/SAVPF 111 0
c=IN IP4 0.0.0.0
a=mid:0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuv
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99
a=setup:actpass
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=candidate:1 1 udp 2130706431 198.18.0.10 5000 typ host
""".replace("\n", "\r\n")


def findings(text: str, role: str, profile: str = "webrtc", offer: str | None = None) -> list[str]:
    return [str(f) for f in lint(parse(text), role, profile, parse(offer) if offer else None)]


def test_good_offer_and_answer() -> None:
    assert findings(OFFER, "offer") == []
    answer = OFFER.replace("a=setup:actpass", "a=setup:active").replace(" 111 0\r", " 111\r")
    assert findings(answer, "answer", offer=OFFER) == []


def test_setup_role() -> None:
    assert findings(OFFER, "answer") == [
        "error: line 12: 'a=setup:actpass': an answer must use active or passive [RFC 8842 5.3]"
    ]
    active = OFFER.replace("a=setup:actpass", "a=setup:active")
    assert ["an offer must use actpass" in f for f in findings(active, "offer")] == [True]


def test_missing_webrtc_attributes() -> None:
    text = OFFER
    for line in ("a=ice-pwd:abcdefghijklmnopqrstuv\r\n", "a=rtcp-mux\r\n", "a=mid:0\r\n"):
        text = text.replace(line, "")
    got = findings(text, "offer")
    assert any("no a=ice-pwd [RFC 8839 5.4]" in f for f in got)
    assert any("no a=rtcp-mux" in f for f in got)
    assert any("m= section without a=mid" in f for f in got)
    assert any("BUNDLE names unknown mid '0'" in f and "line 5" in f for f in got)


def test_profile_and_bad_values() -> None:
    text = OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP").replace("ice-ufrag:abcd", "ice-ufrag:a!")
    text = text.replace("sha-256 AA:BB", "sha-256 AABB")
    got = findings(text, "offer")
    assert any(
        "line 6" in f and "profile RTP/AVP, WebRTC needs UDP/TLS/RTP/SAVPF" in f for f in got
    )
    assert any("line 9" in f and "ice-ufrag must be 4-256 ice-chars" in f for f in got)
    assert any("line 11" in f and "malformed fingerprint" in f for f in got)


def test_codecs_against_the_offer() -> None:
    answer = OFFER.replace("a=setup:actpass", "a=setup:passive").replace(" 111 0\r", " 8\r")
    answer = answer.replace("a=rtpmap:111 opus/48000/2\r\n", "")
    got = findings(answer, "answer", offer=OFFER)
    assert got == [
        "error: line 6: 'm=audio 9 UDP/TLS/RTP/SAVPF 8': no codec in common with the offer [RFC 3264 6.1]"
    ]
    dynamic = OFFER.replace("a=rtpmap:111 opus/48000/2\r\n", "")
    assert any(
        "dynamic payload type 111 has no a=rtpmap [RFC 8866 6.6]" in f
        for f in findings(dynamic, "offer")
    )


def test_sip_profile() -> None:
    got = findings(OFFER, "offer", "sip")
    assert any("BUNDLE is unknown to most SIP endpoints" in f for f in got)
    assert any("plain SIP endpoints take RTP/AVP" in f for f in got)
    plain = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n"
    assert findings(plain, "offer", "sip") == []


def test_session_basics() -> None:
    got = findings("v=0\nm=audio 4000 RTP/AVP 0\n", "offer", "sip")
    assert any("no o= line" in f for f in got) and any("no t= line" in f for f in got)
    assert any("LF, not CRLF" in f for f in got)
    assert any("no c= line" in f for f in got)


def test_derived_values_are_copies() -> None:
    """ufrags, fingerprints and codecs are the caller's own: changing what it got must not
    change what the next reader (session, summary, lint) sees, should they ever be memoised."""
    sdp = parse(OFFER)
    sdp.ice_ufrags.append("x")
    sdp.fingerprints.clear()
    sdp.media[0].codecs["111"] = "x"
    assert sdp.ice_ufrags == ["abcd"]
    assert [fp[:13] for fp in sdp.fingerprints] == ["sha-256 AA:BB"]
    assert sdp.media[0].codecs == {"111": "opus/48000/2", "0": "0"}
