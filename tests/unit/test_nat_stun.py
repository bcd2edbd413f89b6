"""STUN codec: RFC 5769 test vectors and round trips."""

from __future__ import annotations

import pytest

from harness.nat.stun import (
    BINDING_REQUEST,
    BINDING_SUCCESS,
    Attr,
    Message,
    StunError,
    change_request,
    parse_change_request,
    parse_response_port,
    response_port,
)
from harness.nat.stunserver import StunServer

# RFC 5769 2.1, 2.2, 2.3 (MESSAGE-INTEGRITY is kept as raw bytes; FINGERPRINT is checked)
SAMPLE_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"
    "002400046e0001ff80290008932ff9b151263b36"
    "000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004e57a3bcf"
)
SAMPLE_IPV4_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)
SAMPLE_IPV6_RESPONSE = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004c8fb0b4c"
)
TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")


def test_rfc5769_request() -> None:
    msg = Message.decode(SAMPLE_REQUEST)
    assert msg.type == BINDING_REQUEST and msg.transaction_id == TID
    assert msg.get(Attr.SOFTWARE) == b"STUN test client"
    assert msg.get(Attr.USERNAME) == b"evtj:h6vY"
    assert [t for t, _ in msg.attributes] == [0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028]


@pytest.mark.parametrize(
    "data, mapped",
    [
        (SAMPLE_IPV4_RESPONSE, ("192.0.2.1", 32853)),
        (SAMPLE_IPV6_RESPONSE, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_rfc5769_responses(data: bytes, mapped: tuple[str, int]) -> None:
    msg = Message.decode(data)
    assert msg.type == BINDING_SUCCESS
    assert msg.get(Attr.SOFTWARE) == b"test vector"
    assert msg.address(Attr.XOR_MAPPED_ADDRESS) == mapped


def test_rfc5769_response_reencodes_to_the_same_address_bytes() -> None:
    msg = Message(BINDING_SUCCESS, TID).add_address(Attr.XOR_MAPPED_ADDRESS, ("192.0.2.1", 32853))
    assert msg.encode(fingerprint=False)[20:] == SAMPLE_IPV4_RESPONSE[36:48]


def test_bad_fingerprint_is_rejected() -> None:
    damaged = bytearray(SAMPLE_IPV4_RESPONSE)
    damaged[40] ^= 0x01  # inside XOR-MAPPED-ADDRESS
    with pytest.raises(StunError, match="FINGERPRINT"):
        Message.decode(bytes(damaged))


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x01\x00\x00", SAMPLE_IPV4_RESPONSE[:-2], b"\xc0" + SAMPLE_IPV4_RESPONSE[1:]],
)
def test_garbage_is_rejected(data: bytes) -> None:
    with pytest.raises(StunError):
        Message.decode(data)


def test_round_trip_of_a_5780_response() -> None:
    msg = Message(BINDING_SUCCESS)
    msg.add_address(Attr.XOR_MAPPED_ADDRESS, ("198.18.0.10", 40000))
    msg.add_address(Attr.MAPPED_ADDRESS, ("198.18.0.10", 40000))
    msg.add_address(Attr.RESPONSE_ORIGIN, ("198.18.0.12", 3479))
    msg.add_address(Attr.OTHER_ADDRESS, ("198.18.0.254", 3479))
    msg.add(Attr.SOFTWARE, b"odd length")  # needs padding
    again = Message.decode(msg.encode())
    assert again.transaction_id == msg.transaction_id
    assert again.attributes[:-1] == msg.attributes  # plus FINGERPRINT
    assert again.address(Attr.XOR_MAPPED_ADDRESS) == ("198.18.0.10", 40000)
    assert again.address(Attr.OTHER_ADDRESS) == ("198.18.0.254", 3479)
    # the XOR form really differs on the wire from the plain one
    assert again.get(Attr.XOR_MAPPED_ADDRESS) != again.get(Attr.MAPPED_ADDRESS)


@pytest.mark.parametrize("ip, port", [(False, False), (True, False), (False, True), (True, True)])
def test_change_request_round_trip(ip: bool, port: bool) -> None:
    assert parse_change_request(change_request(ip, port)) == (ip, port)


def test_change_request_absent_or_malformed() -> None:
    assert parse_change_request(None) == (False, False)
    with pytest.raises(StunError):
        parse_change_request(b"\x00\x06")


def test_response_port_round_trip() -> None:
    assert parse_response_port(response_port(40000)) == 40000
    assert parse_response_port(None) is None


def test_server_answers_from_the_socket_change_request_asks_for() -> None:
    server = StunServer(("198.18.0.12", "198.18.0.254"), (3478, 3479))
    client = ("198.18.0.10", 40000)
    for change, origin in [
        ((False, False), (0, 0)),
        ((True, True), (1, 1)),
        ((False, True), (0, 1)),
        ((True, False), (1, 0)),
    ]:
        req = Message(BINDING_REQUEST).add(Attr.CHANGE_REQUEST, change_request(*change))
        answer = server.response(req.encode(), client, (0, 0))
        assert answer is not None
        data, out, dest = answer
        resp = Message.decode(data)
        assert out == origin and dest == client
        assert resp.transaction_id == req.transaction_id
        assert resp.address(Attr.XOR_MAPPED_ADDRESS) == client
        assert resp.address(Attr.RESPONSE_ORIGIN) == (
            server.addresses[origin[0]],
            server.ports[origin[1]],
        )
        assert resp.address(Attr.OTHER_ADDRESS) == ("198.18.0.254", 3479)
    req = Message(BINDING_REQUEST).add(Attr.RESPONSE_PORT, response_port(50000))
    answer = server.response(req.encode(), client, (0, 0))
    assert answer is not None and answer[2] == ("198.18.0.10", 50000)
    assert server.response(b"not stun at all", client, (0, 0)) is None
