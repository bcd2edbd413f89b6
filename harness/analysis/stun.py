"""STUN and TURN messages (RFC 8489, RFC 8656, RFC 8445 attributes).

Parsing keeps what ICE and TURN analysis needs; FINGERPRINT is checked on
parse, MESSAGE-INTEGRITY when a key is known (SDP ice-pwd, test vectors).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.analysis.net import inet_ntoa, ipv6_text
from harness.nat.stun import StunError, decode_address, fingerprint_crc

try:  # the compiled parsers (pip install -e . builds them); parse_py is the same in Python
    from harness.analysis import _stunparse  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:
    _stunparse = None

MAGIC = 0x2112A442
MAGIC_BYTES = b"\x21\x12\xa4\x42"

METHODS = {
    0x001: "Binding",
    0x003: "Allocate",
    0x004: "Refresh",
    0x006: "Send",
    0x007: "Data",
    0x008: "CreatePermission",
    0x009: "ChannelBind",
    0x00A: "Connect",
    0x00B: "ConnectionBind",
    0x00C: "ConnectionAttempt",
}
CLASSES = ("request", "indication", "success", "error")

A_MAPPED = 0x0001
A_USERNAME = 0x0006
A_INTEGRITY = 0x0008
A_ERROR_CODE = 0x0009
A_CHANNEL_NUMBER = 0x000C
A_LIFETIME = 0x000D
A_XOR_PEER = 0x0012
A_DATA = 0x0013
A_REALM = 0x0014
A_NONCE = 0x0015
A_XOR_RELAYED = 0x0016
A_REQUESTED_TRANSPORT = 0x0019
A_XOR_MAPPED = 0x0020
A_PRIORITY = 0x0024
A_USE_CANDIDATE = 0x0025
A_SOFTWARE = 0x8022
A_FINGERPRINT = 0x8028
A_ICE_CONTROLLED = 0x8029
A_ICE_CONTROLLING = 0x802A
A_INTEGRITY_SHA256 = 0x001C

Address = tuple[str, int]


@dataclass(slots=True)  # slots: _stunparse.c fills them directly
class StunMessage:
    """One decoded STUN message; addresses are (ip, port).

    A record of what was on the wire: tuples, not lists (the walk keeps one per message,
    tens of thousands; an empty tuple is shared, an empty list is 72 bytes each).
    """

    method: str
    cls: str
    txid: str
    length: int
    attributes: tuple[int, ...] = ()
    username: str | None = None
    priority: int | None = None
    use_candidate: bool = False
    ice_controlling: int | None = None
    ice_controlled: int | None = None
    xor_mapped: Address | None = None
    xor_relayed: tuple[Address, ...] = ()
    xor_peer: tuple[Address, ...] = ()
    error_code: int | None = None
    error_reason: str = ""
    realm: str | None = None
    nonce: str | None = None
    software: str | None = None
    lifetime: int | None = None
    channel: int | None = None
    requested_transport: int | None = None
    data: bytes | None = None
    integrity: bool = False
    integrity_offset: int = 0
    fingerprint_ok: bool | None = None
    classic: bool = False  # RFC 3489: no magic cookie, a 128-bit transaction ID

    @property
    def kind(self) -> str:
        """'Binding request', 'Allocate error', 'classic Binding success' (RFC 3489), ..."""
        return kind_name(self.classic, self.method, self.cls)


def kind_name(classic: bool, method: str, cls: str) -> str:
    """`StunMessage.kind` from its parts (the session counts messages by them)."""
    return f"{'classic ' if classic else ''}{method} {cls}"


def is_stun(p: bytes) -> bool:
    """RFC 8489 header shape: two zero bits, the magic cookie, a length that fits.

    The length need not be a multiple of four: Microsoft's TURN ([MS-TURN], Teams)
    leaves attributes unpadded, and the magic cookie already vouches for the header.
    """
    return len(p) >= 20 and p[0] < 4 and p[4:8] == MAGIC_BYTES and 20 + (p[2] << 8 | p[3]) <= len(p)


def parse(p: bytes) -> StunMessage | None:
    """Decode a STUN message, or None if `p` is not one or its attributes overrun."""
    if not is_stun(p):
        return None
    mtype = p[0] << 8 | p[1]
    length = p[2] << 8 | p[3]
    method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
    cls = ((mtype >> 4) & 1) | ((mtype >> 7) & 2)
    txid = p[8:20]
    for pad in (3, 0):  # RFC 8489 pads attributes to 4 bytes; [MS-TURN] does not
        msg = StunMessage(METHODS.get(method, f"0x{method:03x}"), CLASSES[cls], txid.hex(), length)
        off, end = 20, 20 + length
        attributes: list[int] = []
        fillers = FILLERS
        while off + 4 <= end:
            atype = p[off] << 8 | p[off + 1]
            alen = p[off + 2] << 8 | p[off + 3]
            if off + 4 + alen > end:
                break
            attributes.append(atype)
            fill = fillers.get(atype)
            if fill is not None:  # attributes nobody reads are only listed
                fill(msg, p[off + 4 : off + 4 + alen], txid, p, off)
            off += 4 + ((alen + pad) & ~pad)
        if off >= end:
            msg.attributes = tuple(attributes)
            return msg
    return None


#: RFC 3489 and the pre-RFC TURN drafts that [MS-TURN] (Teams, Skype) still speaks
CLASSIC_METHODS = {
    0x001: "Binding",
    0x002: "SharedSecret",
    0x003: "Allocate",
    0x004: "Send",
    0x005: "Data",
    0x006: "SetActiveDestination",
}


def parse_classic(p: bytes) -> StunMessage | None:
    """Decode an RFC 3489 message (libnice still sends them), or None.

    Without a magic cookie the test is stricter than for RFC 8489: the length must
    cover the datagram exactly and the attributes must tile it. Their types may be any
    (Zoom's 0x0101 and 0x0103 are in no RFC): an unknown comprehension-required one is
    the receiver's 420 to send (RFC 3489 11.1), not a reason to read the datagram as
    something else.
    """
    if len(p) < 20 or p[0] >= 4 or p[4:8] == MAGIC_BYTES:
        return None
    length = p[2] << 8 | p[3]
    mtype = p[0] << 8 | p[1]
    method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
    cls = ((mtype >> 4) & 1) | ((mtype >> 7) & 2)
    if len(p) != 20 + length or method not in CLASSIC_METHODS:
        return None
    txid = p[4:20]
    msg = StunMessage(CLASSIC_METHODS[method], CLASSES[cls], txid.hex(), length, classic=True)
    off = 20
    attributes = []
    while off + 4 <= len(p):
        atype, alen = struct.unpack_from("!HH", p, off)
        if off + 4 + alen > len(p):
            return None
        attributes.append(atype)
        v = p[off + 4 : off + 4 + alen]
        if atype == A_MAPPED:
            msg.xor_mapped = plain_address(v)
        elif atype in (A_USERNAME, A_ERROR_CODE):
            _apply(msg, atype, v, txid, p, off)
        off += 4 + ((alen + 3) & ~3)
    msg.attributes = tuple(attributes)
    return msg if off == len(p) else None


def _apply(msg: StunMessage, atype: int, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    fill = FILLERS.get(atype)
    if fill is not None:
        fill(msg, v, txid, p, off)


# One small function per attribute the analyses read, looked up by type: a parse
# costs one dict lookup per attribute instead of a chain of comparisons.
Filler = Callable[[StunMessage, bytes, bytes, bytes, int], None]


def _username(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.username = v.decode("utf-8", "replace")


def _priority(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) == 4:
        m.priority = int.from_bytes(v, "big")


def _use_candidate(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.use_candidate = True


def _controlling(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) == 8:
        m.ice_controlling = int.from_bytes(v, "big")


def _controlled(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) == 8:
        m.ice_controlled = int.from_bytes(v, "big")


def _xor_mapped(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.xor_mapped = xor_address(v, txid)


def _mapped(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if m.xor_mapped is None:
        m.xor_mapped = plain_address(v)


def _xor_relayed(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    a = xor_address(v, txid)
    if a is not None:
        m.xor_relayed += (a,)


def _xor_peer(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    a = xor_address(v, txid)
    if a is not None:
        m.xor_peer += (a,)


def _error_code(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) >= 4:
        m.error_code = (v[2] & 7) * 100 + v[3]
        m.error_reason = v[4:].decode("utf-8", "replace")


def _realm(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.realm = v.decode("utf-8", "replace")


def _nonce(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.nonce = v.decode("utf-8", "replace")


def _software(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.software = v.decode("utf-8", "replace").rstrip("\x00")


def _lifetime(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) == 4:
        m.lifetime = int.from_bytes(v, "big")


def _channel(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) == 4:
        m.channel = v[0] << 8 | v[1]


def _transport(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) == 4:
        m.requested_transport = v[0]


def _data(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.data = v


def _integrity(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    m.integrity = True
    m.integrity_offset = off


def _fingerprint(m: StunMessage, v: bytes, txid: bytes, p: bytes, off: int) -> None:
    if len(v) == 4:
        m.fingerprint_ok = fingerprint_crc(p[:off]) == int.from_bytes(v, "big")


FILLERS: dict[int, Filler] = {
    A_USERNAME: _username,
    A_PRIORITY: _priority,
    A_USE_CANDIDATE: _use_candidate,
    A_ICE_CONTROLLING: _controlling,
    A_ICE_CONTROLLED: _controlled,
    A_XOR_MAPPED: _xor_mapped,
    A_MAPPED: _mapped,
    A_XOR_RELAYED: _xor_relayed,
    A_XOR_PEER: _xor_peer,
    A_ERROR_CODE: _error_code,
    A_REALM: _realm,
    A_NONCE: _nonce,
    A_SOFTWARE: _software,
    A_LIFETIME: _lifetime,
    A_CHANNEL_NUMBER: _channel,
    A_REQUESTED_TRANSPORT: _transport,
    A_DATA: _data,
    A_INTEGRITY: _integrity,
    A_INTEGRITY_SHA256: _integrity,
    A_FINGERPRINT: _fingerprint,
}


def xor_address(v: bytes, txid: bytes) -> Address | None:
    """Decode an XOR-*-ADDRESS value (RFC 8489 section 14.2); None when malformed."""
    if len(v) == 8 and v[1] == 1:  # IPv4, the common case, without ipaddress objects
        ip = int.from_bytes(v[4:8], "big") ^ MAGIC
        return inet_ntoa(ip.to_bytes(4, "big")), (v[2] << 8 | v[3]) ^ 0x2112
    try:
        return decode_address(v, txid, xor=True)
    except StunError:
        return None


def plain_address(v: bytes) -> Address | None:
    """Decode a MAPPED-ADDRESS value; None when malformed."""
    try:
        return decode_address(v, b"", xor=False)
    except StunError:
        return None


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """MD5(username:realm:password), the long-term credential key (RFC 8489 9.2.2)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def check_integrity(p: bytes, key: bytes, msg: StunMessage | None = None) -> bool | None:
    """Verify MESSAGE-INTEGRITY (HMAC-SHA1) with `key`; None if the message has none.

    `msg`, if given, is `parse(p)` already done (the analyser keeps it: no second parse).
    Compiled when built (`_stunparse.check_integrity`: `_stunparse.check` in one call, and
    this for what that does not take); this is then `check_integrity_py`, the reference.
    """
    msg = msg or parse(p)
    if msg is None or not msg.integrity:
        return None
    off = msg.integrity_offset
    atype = p[off] << 8 | p[off + 1]
    pads = (_SHA1_PADS if atype == A_INTEGRITY else _SHA256_PADS).get(key) or _hmac_pads(key, atype)
    return _verify_py(p, off, pads)


def _verify_py(p: bytes, off: int, pads: tuple[Any, Any]) -> bool:
    """The HMAC of the message up to MESSAGE-INTEGRITY at `off` against its value."""
    alen = p[off + 2] << 8 | p[off + 3]
    inner, outer = pads[0].copy(), pads[1].copy()
    # The length field covers the message up to and including MESSAGE-INTEGRITY.
    inner.update(p[:2] + (off + alen - 16).to_bytes(2, "big") + p[4:off])
    outer.update(inner.digest())
    return hmac.compare_digest(outer.digest()[:alen], p[off + 4 : off + 4 + alen])


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
#: key -> HMAC pads, one map per hash (no (key, type) tuple to build and hash per check)
_SHA1_PADS: dict[bytes, tuple[Any, Any]] = {}
_SHA256_PADS: dict[bytes, tuple[Any, Any]] = {}


def _hmac_pads(key: bytes, atype: int) -> tuple[Any, Any]:
    """HMAC's inner and outer hashes with the key absorbed (RFC 2104), made once per key.

    A capture checks thousands of messages with a handful of ICE passwords: a check then
    costs two hash copies, not a key schedule (hmac.digest redoes it every call).
    """
    digest = "sha1" if atype == A_INTEGRITY else "sha256"
    cache = _SHA1_PADS if atype == A_INTEGRITY else _SHA256_PADS
    block = hashlib.new(digest).block_size
    k = (hashlib.new(digest, key).digest() if len(key) > block else key).ljust(block, b"\0")
    if len(cache) >= 256:  # bounded: a capture with many credentials
        cache.clear()
    pads = cache[key] = (
        hashlib.new(digest, k.translate(_IPAD)),
        hashlib.new(digest, k.translate(_OPAD)),
    )
    return pads


def is_channel_data(p: bytes) -> bool:
    """TURN ChannelData framing: channel 0x4000-0x4FFF, length that fits (RFC 8656 12.4)."""
    return len(p) >= 4 and 0x40 <= p[0] <= 0x4F and 4 + (p[2] << 8 | p[3]) <= len(p)


def channel_data(p: bytes) -> tuple[int, bytes]:
    """(channel number, application data) of a ChannelData message."""
    return p[0] << 8 | p[1], p[4 : 4 + (p[2] << 8 | p[3])]


def _ipv6_text(raw: bytes) -> str:
    """An IPv6 address as `decode_address` writes it, for the compiled parser."""
    return ipv6_text(raw)


#: the Python parsers: the fallback, and the reference the compiled ones are tested against
parse_py, parse_classic_py = parse, parse_classic
if _stunparse is not None:
    _stunparse.setup(StunMessage, METHODS, CLASSIC_METHODS, CLASSES, _ipv6_text)
    parse, parse_classic = _stunparse.parse, _stunparse.parse_classic  # noqa: F811
check_integrity_py = check_integrity
if _stunparse is not None:  # one C call per check (no Python frame), this as its fallback
    _stunparse.setup_integrity(check_integrity_py, _SHA1_PADS, _SHA256_PADS)
    check_integrity = _stunparse.check_integrity  # noqa: F811
