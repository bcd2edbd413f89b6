"""The few STUN pieces (RFC 8489, RFC 5780) the NAT probe needs: Binding messages,
address attributes, CHANGE-REQUEST, RESPONSE-PORT and FINGERPRINT. No authentication: a probe
server in a lab answers anyone. The pcap analyser (harness/analysis/stun.py) decodes
addresses and checks FINGERPRINTs with the same functions.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

MAGIC_COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E
HEADER = struct.Struct("!HHI12s")

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

CHANGE_IP = 0x04
CHANGE_PORT = 0x02

Address = tuple[str, int]


class Attr(IntEnum):
    MAPPED_ADDRESS = 0x0001
    CHANGE_REQUEST = 0x0003
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    XOR_MAPPED_ADDRESS = 0x0020
    PADDING = 0x0026
    RESPONSE_PORT = 0x0027
    SOFTWARE = 0x8022
    FINGERPRINT = 0x8028
    RESPONSE_ORIGIN = 0x802B
    OTHER_ADDRESS = 0x802C


XOR_ATTRS = {Attr.XOR_MAPPED_ADDRESS}


class StunError(ValueError):
    """Bytes that are not a well-formed STUN message."""


def transaction_id() -> bytes:
    return os.urandom(12)


@dataclass
class Message:
    """A STUN message; attribute values are kept raw, in order, and decoded on demand."""

    type: int
    transaction_id: bytes = field(default_factory=transaction_id)
    attributes: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, attr: int) -> bytes | None:
        return next((v for t, v in self.attributes if t == attr), None)

    def add(self, attr: int, value: bytes) -> Message:
        self.attributes.append((attr, value))
        return self

    def add_address(self, attr: Attr, addr: Address) -> Message:
        return self.add(attr, encode_address(addr, self.transaction_id, xor=attr in XOR_ATTRS))

    def address(self, attr: Attr) -> Address | None:
        value = self.get(attr)
        if value is None:
            return None
        return decode_address(value, self.transaction_id, xor=attr in XOR_ATTRS)

    def encode(self, fingerprint: bool = True) -> bytes:
        body = b"".join(_tlv(t, v) for t, v in self.attributes)
        if fingerprint:
            head = HEADER.pack(self.type, len(body) + 8, MAGIC_COOKIE, self.transaction_id)
            crc = fingerprint_crc(head + body)
            return head + body + _tlv(Attr.FINGERPRINT, struct.pack("!I", crc))
        return HEADER.pack(self.type, len(body), MAGIC_COOKIE, self.transaction_id) + body

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Parse a message; a FINGERPRINT, when present, must be right."""
        if len(data) < HEADER.size or data[0] & 0xC0:
            raise StunError("not a STUN message")
        mtype, length, cookie, tid = HEADER.unpack_from(data)
        if cookie != MAGIC_COOKIE:
            raise StunError("bad magic cookie")
        if length % 4 or HEADER.size + length != len(data):
            raise StunError(f"length {length} does not match {len(data) - HEADER.size} bytes")
        msg = cls(mtype, tid)
        pos = HEADER.size
        while pos < len(data):
            if pos + 4 > len(data):
                raise StunError("truncated attribute header")
            atype, alen = struct.unpack_from("!HH", data, pos)
            value = data[pos + 4 : pos + 4 + alen]
            if len(value) != alen:
                raise StunError(f"attribute {atype:#06x} is truncated")
            if atype == Attr.FINGERPRINT:
                (crc,) = struct.unpack("!I", value)
                if fingerprint_crc(data[:pos]) != crc:
                    raise StunError("bad FINGERPRINT")
            msg.attributes.append((atype, value))
            pos += 4 + alen + (-alen % 4)
        return msg


def fingerprint_crc(before: bytes) -> int:
    """FINGERPRINT (RFC 8489 14.7) of the message bytes before the attribute, whose header
    length already counts the attribute."""
    return zlib.crc32(before) ^ FINGERPRINT_XOR


def _tlv(attr: int, value: bytes) -> bytes:
    return struct.pack("!HH", attr, len(value)) + value + b"\x00" * (-len(value) % 4)


def encode_address(addr: Address, tid: bytes, xor: bool) -> bytes:
    ip = ipaddress.ip_address(addr[0])
    port = addr[1]
    raw = ip.packed
    if xor:
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC_COOKIE) + tid, strict=False))
    family = 0x01 if ip.version == 4 else 0x02
    return struct.pack("!BBH", 0, family, port) + raw


def decode_address(value: bytes, tid: bytes, xor: bool) -> Address:
    if len(value) < 8:
        raise StunError("address attribute too short")
    _, family, port = struct.unpack_from("!BBH", value)
    size = {0x01: 4, 0x02: 16}.get(family)
    if size is None or len(value) != 4 + size:
        raise StunError(f"bad address family {family} or length {len(value)}")
    raw = value[4:]
    if xor:
        port ^= MAGIC_COOKIE >> 16
        raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC_COOKIE) + tid, strict=False))
    return str(ipaddress.ip_address(raw)), port


def change_request(change_ip: bool, change_port: bool) -> bytes:
    return struct.pack("!I", (CHANGE_IP if change_ip else 0) | (CHANGE_PORT if change_port else 0))


def response_port(port: int) -> bytes:
    """RESPONSE-PORT value (RFC 5780 7.5): the port, then 2 bytes of padding."""
    return struct.pack("!HH", port, 0)


def parse_response_port(value: bytes | None) -> int | None:
    if value is None:
        return None
    if len(value) != 4:
        raise StunError("RESPONSE-PORT must be 4 bytes")
    return struct.unpack("!HH", value)[0]


def parse_change_request(value: bytes | None) -> tuple[bool, bool]:
    """(change IP, change port) of a CHANGE-REQUEST value; (False, False) when absent."""
    if value is None:
        return False, False
    if len(value) != 4:
        raise StunError("CHANGE-REQUEST must be 4 bytes")
    (flags,) = struct.unpack("!I", value)
    return bool(flags & CHANGE_IP), bool(flags & CHANGE_PORT)
