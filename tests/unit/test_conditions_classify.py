"""Packet classes, checked on packets made by independent encoders (aioice, aiortc, OpenSSL)."""

import pytest
from aioice import stun
from aiortc.rtp import RtcpByePacket, RtpPacket
from OpenSSL import SSL
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from harness.conditions.classify import classify, matches
from harness.conditions.model import FaultMatch


def udp(payload: bytes, sport: int = 40000, dport: int = 3478) -> bytes:
    return bytes(
        Ether() / IP(src="198.18.0.10", dst="198.18.0.11") / UDP(sport=sport, dport=dport) / payload
    )


def stun_msg(method: stun.Method, cls: stun.Class, username: str | None = None) -> bytes:
    msg = stun.Message(message_method=method, message_class=cls)
    if username:
        msg.attributes["USERNAME"] = username
    return bytes(msg)


def dtls_client_hello() -> bytes:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    conn = SSL.Connection(ctx)
    conn.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    return conn.bio_read(65536)


def sip(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


INVITE = sip("INVITE sip:bob@198.18.0.11 SIP/2.0\nVia: SIP/2.0/UDP 198.18.0.10\nCSeq: 1 INVITE\n\n")
RINGING = sip("SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 198.18.0.10\nCSeq: 1 INVITE\n\n")
BYE_OK = sip("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 198.18.0.10\ncseq: 2 BYE\n\n")


@pytest.mark.parametrize(
    ("payload", "kind", "message"),
    [
        (stun_msg(stun.Method.BINDING, stun.Class.REQUEST, "aaaa:bbbb"), "stun-binding", "request"),
        (stun_msg(stun.Method.BINDING, stun.Class.RESPONSE), "stun-binding", "response"),
        (stun_msg(stun.Method.ALLOCATE, stun.Class.ERROR), "turn-allocate", "response"),
        (stun_msg(stun.Method.REFRESH, stun.Class.REQUEST), "turn-refresh", "request"),
        (stun_msg(stun.Method.CHANNEL_BIND, stun.Class.REQUEST), "turn-channelbind", "request"),
        (dtls_client_hello(), "dtls-handshake", ""),
        (
            RtpPacket(payload_type=111, sequence_number=1, ssrc=5, payload=b"x" * 40).serialize(),
            "rtp",
            "",
        ),
        (bytes(RtcpByePacket(sources=[5])), "rtcp", ""),
        (INVITE, "sip", "request"),
        (RINGING, "sip", "response"),
    ],
    # stable ids (the STUN transaction ids are random): pytest-xdist workers and
    # --shard runners must collect the same test names
    ids=lambda v: "payload" if isinstance(v, bytes) else None,
)
def test_kinds(payload: bytes, kind: str, message: str) -> None:
    pc = classify(udp(payload))
    assert (pc.kind, pc.message) == (kind, message)


def test_indication_and_unknown_payloads_are_not_classified() -> None:
    assert classify(udp(stun_msg(stun.Method.SEND, stun.Class.INDICATION))).kind is None
    assert classify(udp(b"\x10hello")).kind is None  # ZRTP range
    assert classify(udp(b"")).kind is None


def test_rtp_inside_turn_channel_data() -> None:
    rtp = RtpPacket(payload_type=96, sequence_number=9, ssrc=1, payload=b"y" * 20).serialize()
    channel = b"\x40\x00" + len(rtp).to_bytes(2, "big") + rtp
    assert classify(udp(channel)).kind == "rtp"


def test_ufrag_matches_either_side_of_username() -> None:
    pc = classify(udp(stun_msg(stun.Method.BINDING, stun.Class.REQUEST, "remote1:local22")))

    def request(ufrag: str) -> FaultMatch:
        return FaultMatch(kind="stun-binding", message="request", ufrag=ufrag)

    assert matches(request("remote1"), pc)
    assert matches(request("local22"), pc)
    assert not matches(request("remote"), pc)
    assert not matches(FaultMatch(kind="stun-binding", message="response"), pc)


def test_sip_method_from_request_line_or_cseq() -> None:
    assert matches(FaultMatch(kind="sip", method="invite"), classify(udp(INVITE, dport=5060)))
    assert matches(
        FaultMatch(kind="sip", method="INVITE", message="response"), classify(udp(RINGING))
    )
    assert matches(FaultMatch(kind="sip", method="BYE"), classify(udp(BYE_OK)))
    assert not matches(FaultMatch(kind="sip", method="BYE"), classify(udp(INVITE)))


def test_sip_status_of_responses() -> None:
    ringing = classify(udp(RINGING))
    assert ringing.status == 180 and classify(udp(BYE_OK)).status == 200
    assert classify(udp(INVITE)).status == 0
    assert matches(FaultMatch(kind="sip", status=180), ringing)
    assert matches(FaultMatch(kind="sip", status=180, method="INVITE"), ringing)
    assert not matches(FaultMatch(kind="sip", status=200), ringing)
    assert not matches(FaultMatch(kind="sip", status=180, method="BYE"), ringing)
    for odd in (b"SIP/2.0 1800 Odd\r\n\r\n", b"SIP/2.0 18 Odd\r\n\r\n"):
        assert classify(udp(odd)).status == 0  # three digits, then a space or the line's end


def test_tcp_by_port_and_sip_over_tcp() -> None:
    syn = bytes(Ether() / IP() / TCP(sport=50000, dport=443, flags="S"))
    assert matches(FaultMatch(kind="tcp", port=443), classify(syn))
    assert not matches(FaultMatch(kind="tcp", port=80), classify(syn))
    seg = bytes(Ether() / IP() / TCP(sport=50000, dport=5060, flags="PA") / INVITE)
    assert matches(FaultMatch(kind="sip", method="INVITE"), classify(seg))
    assert matches(FaultMatch(kind="tcp", port=5060), classify(seg))


def test_vnet_header_offset_and_fragments() -> None:
    frame = udp(INVITE)
    assert classify(b"\x00" * 10 + frame, 10).kind == "sip"
    frag = bytes(Ether() / IP(frag=100) / UDP() / INVITE)
    assert classify(frag).kind is None
