"""The compiled STUN parsers (`_stunparse.c`) against stun.py's, on damaged real messages.

The messages are every shape of STUN message in the repo's captures (RFC 8489, RFC 3489,
[MS-TURN] from Teams, the ones relayed inside Send/Data indications) and the RFC 5769
vectors, damaged where the parsers decide things: attribute types and lengths, the
header's length, padding taken out, values cut or filled with invalid UTF-8. Both
parsers must give the same StunMessage, value and type of every field (repr: True is
not 1), or both None.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import stun
from tests.fuzzing import examples, segment_payloads

pytestmark = pytest.mark.skipif(
    stun._stunparse is None,
    reason="harness/analysis/_stunparse.c is not built (pip install -e . builds it)",
)

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS = Path(__file__).with_name("test_stun_vectors.py")

#: every attribute type a filler reads, and neighbours that only get listed
TYPES = [
    *(v for k, v in vars(stun).items() if k.startswith("A_")),
    0x0002,
    0x0030,
    0x0031,
    0x7FFF,
    0x8000,
    0x802B,
    0xFFFF,
]


@cache
def real_messages() -> list[bytes]:
    """One message of each (kind, attribute list) in the captures, plus RFC 5769's."""
    shapes: dict[tuple[str, tuple[int, ...]], bytes] = {}
    for p in segment_payloads():
        for c in (p, p[4:], p[2:]):  # UDP, in ChannelData, RFC 4571 framed on TCP
            m = stun.parse_py(c) or stun.parse_classic_py(c)
            found: list[tuple[bytes, stun.StunMessage | None]] = [(c, m)] if m else []
            if m and m.data:  # relayed inside a Send or Data indication
                found.append((m.data, stun.parse_py(m.data)))
            for q, mm in found:
                if mm is not None:
                    shapes.setdefault((mm.kind, tuple(mm.attributes)), q)
    for vector in ("REQUEST", "RESPONSE_V4", "RESPONSE_V6", "LONG_TERM"):
        shapes[(vector, ())] = vector_bytes(vector)
    return list(shapes.values())


def vector_bytes(name: str) -> bytes:
    """An RFC 5769 vector, read from test_stun_vectors.py (the one copy of the bytes)."""
    found = re.search(name + r' = hexbytes\("""(.*?)"""\)', VECTORS.read_text(), re.S)
    assert found, f"{name} is not in {VECTORS}"
    return bytes.fromhex("".join(found[1].split()))


def attribute_offsets(p: bytes | bytearray) -> list[int]:
    off, out = 20, []
    while off + 4 <= len(p):
        out.append(off)
        off += 4 + ((p[off + 2] << 8 | p[off + 3]) + 3 & ~3)
    return out


def unpadded(p: bytes) -> bytes:
    """The message as [MS-TURN] sends it: attributes not padded to 4 bytes."""
    body = b""
    for off in attribute_offsets(p):
        n = p[off + 2] << 8 | p[off + 3]
        body += p[off : off + 4 + n]
    return p[:2] + len(body).to_bytes(2, "big") + p[4:20] + body


def same(p: bytes) -> None:
    for py, c in ((stun.parse_py, stun.parse), (stun.parse_classic_py, stun.parse_classic)):
        want, got = py(p), c(p)
        assert repr(got) == repr(want), p.hex()
        assert got == want
        if want is not None:
            for name in want.__slots__:
                assert type(getattr(got, name)) is type(getattr(want, name)), name


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    p = bytearray(draw(st.sampled_from(real_messages())))
    if draw(st.booleans()):
        p = bytearray(unpadded(bytes(p)))
    for _ in range(draw(st.integers(0, 6))):
        offs = attribute_offsets(p) or [20]
        at = draw(st.sampled_from(offs))
        how = draw(st.integers(0, 6))
        if how == 0 and at + 2 <= len(p):  # another attribute type: its value read otherwise
            p[at : at + 2] = draw(st.sampled_from(TYPES)).to_bytes(2, "big")
        elif how == 1 and at + 4 <= len(p):  # another attribute length
            n = (p[at + 2] << 8 | p[at + 3]) + draw(st.integers(-9, 9))
            p[at + 2 : at + 4] = min(0xFFFF, max(0, n)).to_bytes(2, "big")
        elif how == 2:  # invalid UTF-8, NULs, an address family, anywhere in a value
            i = draw(st.integers(0, len(p)))
            p[i:i] = draw(
                st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\x00", b"\x02", b"\x01"])
            )
        elif how == 3:  # any byte
            i = draw(st.integers(0, max(0, len(p) - 1)))
            if i < len(p):
                p[i] = draw(st.integers(0, 255))
        elif how == 4:  # cut, or more bytes after
            p = p[: draw(st.integers(0, len(p)))] + draw(st.binary(max_size=6))
        elif how == 5:  # a whole attribute, of a type and size the fillers test
            value = draw(st.binary(max_size=24) | st.sampled_from([bytes(4), bytes(8), bytes(20)]))
            if value[1:2] in (b"\x01", b"\x02") or draw(st.booleans()):
                value = b"\x00" + draw(st.sampled_from([b"\x01", b"\x02"])) + value[2:]
            attr = draw(st.sampled_from(TYPES)).to_bytes(2, "big") + len(value).to_bytes(2, "big")
            p[at:at] = attr + value + bytes(draw(st.sampled_from([0, -len(value) % 4])))
        if draw(st.integers(0, 3)):  # the header's length follows, else the test is the header
            p[2:4] = max(0, min(0xFFFF, len(p) - 20)).to_bytes(2, "big")
    return bytes(p)


@examples(1000)
@given(damaged())
def test_compiled_stun_matches_python(p: bytes) -> None:
    same(p)


def test_every_real_message_and_vector() -> None:
    messages = real_messages()
    assert len(messages) > 40  # the captures hold RFC 8489, RFC 3489 and [MS-TURN] shapes
    for p in messages:
        same(p)
        same(unpadded(p))
        for cut in range(len(p)):
            same(p[:cut])


def message(attrs: list[tuple[int, bytes]], pad: bool = True, head: bytes = b"\x01\x01") -> bytes:
    body = b"".join(
        a.to_bytes(2, "big") + len(v).to_bytes(2, "big") + v + bytes(-len(v) % 4 if pad else 0)
        for a, v in attrs
    )
    return head + len(body).to_bytes(2, "big") + stun.MAGIC_BYTES + bytes(range(12)) + body


def test_fields_are_filled_like_python() -> None:
    """The fields the fuzzing might miss: IPv6 text, SOFTWARE's NULs, ICE 64-bit values."""
    m = stun.parse(vector_bytes("RESPONSE_V6"))
    assert m is not None and m.xor_mapped == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)
    assert m.fingerprint_ok is True and m.integrity and m.software == "test vector"
    odd = [
        (stun.A_SOFTWARE, b"caf\xc3\xa9 \xff\x00\x00"),
        (stun.A_ICE_CONTROLLING, b"\xff" * 8),
        (stun.A_PRIORITY, b"\xfe\xdc\xba\x98"),
        (stun.A_ERROR_CODE, b"\x00\x00\x04\x01Unauthorized \xe2\x82"),
        (stun.A_MAPPED, b"\x00\x02\x12\x34" + bytes(range(16))),
        (stun.A_XOR_PEER, b"\x00\x01\x12\x34\x01\x02\x03\x04"),
        (stun.A_XOR_PEER, b"\x00\x03\x12\x34\x01\x02\x03\x04"),
        (stun.A_XOR_PEER, b"\x00\x02\x12\x34" + bytes(16)),
        (stun.A_DATA, b"\x00\x01\x02"),
        (stun.A_FINGERPRINT, b"\x00\x00\x00\x00"),
    ]
    for pad in (True, False):
        p = message(odd, pad)
        want = stun.parse_py(p)
        assert want is not None and want.software == "caf\xe9 \ufffd" and want.error_code == 401
        assert want.ice_controlling == 2**64 - 1 and len(want.xor_peer) == 2
        same(p)
    classic = message([(stun.A_MAPPED, b"\x00\x01\x12\x34\x01\x02\x03\x04")], head=b"\x00\x01")
    classic = classic[:4] + bytes(16) + classic[20:]
    assert stun.parse_classic_py(classic) is not None
    same(classic)
    with pytest.raises(TypeError):
        stun.parse("not bytes")  # type: ignore[arg-type]  # the wrong type on purpose
    rfc = vector_bytes("REQUEST")
    # any buffer; the walk: bytes (what the type says)
    assert stun.parse(bytearray(rfc)) == stun.parse_py(rfc)  # type: ignore[arg-type]  # see above


def test_repeated_values_are_shared_and_equal() -> None:
    """Values the C parser keeps (USERNAME, addresses, attribute lists, transaction IDs)
    give the same message whatever was parsed before, and one object when they repeat."""
    messages = real_messages()
    for p in [*messages, *reversed(messages), *messages[::3]]:
        same(p)
    rfc = vector_bytes("REQUEST")
    first, again = stun.parse(rfc), stun.parse(bytes(bytearray(rfc)))
    assert first is not None and again is not None and first == again
    assert again.username is first.username and again.attributes is first.attributes
    assert again.txid is first.txid
    v4 = vector_bytes("RESPONSE_V4")
    a, b = stun.parse(v4), stun.parse(bytes(bytearray(v4)))
    assert a is not None and b is not None and b.xor_mapped is a.xor_mapped


def integrity_cases() -> list[tuple[bytes, int]]:
    """(message, offset of its MESSAGE-INTEGRITY) of every real shape that has one."""
    out = []
    for p in real_messages():
        m = stun.parse_py(p)
        if m is not None and m.integrity:
            out.append((p[: 20 + m.length], m.integrity_offset))
    return out


KEYS = [b"", b"k", b"x" * 22, b"k" * 64, b"k" * 65, stun.long_term_key("u", "r", "p")]


def verify_both(p: bytes, off: int, key: bytes) -> None:
    """_stunparse.verify against stun._verify_py: the same verdict, or None (no fit)."""
    for atype in (stun.A_INTEGRITY, stun.A_INTEGRITY_SHA256):
        pads = stun._hmac_pads(key, atype)
        got = stun._stunparse.verify(p, off, pads[0], pads[1])
        if got is None:  # the attribute at `off` does not fit: Python decides (or raises)
            assert off < 20 or off + 4 > len(p) or off + 4 + (p[off + 2] << 8 | p[off + 3]) > len(p)
            continue
        assert got is stun._verify_py(p, off, pads), (p.hex(), off, key)


def test_verify_matches_python_on_real_messages() -> None:
    cases = integrity_cases()
    assert len(cases) > 5
    signed = []  # (message type, key) of each message a key above verifies
    for p, off in cases:
        for key in KEYS:
            verify_both(p, off, key)
            if stun.check_integrity(p, key):
                signed.append((p[:2], key))
        for cut in range(len(p)):
            verify_both(p[:cut], off, KEYS[1])
    # No key above is a capture's password, but for the empty one: nDPI's
    # stun_dtls_rtp_unidir.pcapng signs a CreatePermission request (0x0008) with it.
    assert signed == [(b"\x00\x08", b"")]
    rfc = vector_bytes("REQUEST")
    assert stun.check_integrity(rfc, b"VOkJxbRl1RmTxUk/WvJxBt") is True
    m = stun.parse(rfc)
    assert m is not None
    pads = stun._hmac_pads(b"VOkJxbRl1RmTxUk/WvJxBt", stun.A_INTEGRITY)
    assert stun._stunparse.verify(rfc, m.integrity_offset, *pads) is True
    with pytest.raises(TypeError):
        stun._stunparse.verify(bytearray(rfc), m.integrity_offset, *pads)


@examples(500)
@given(st.data())
def test_check_matches_python_on_damaged_messages(data: st.DataObject) -> None:
    """check (OpenSSL's SHA-1 in C when built with it) against stun._verify_py (hashlib)
    on real messages with bytes changed, cut, and with the integrity offset moved: the
    same verdict, or NotImplemented exactly where the attribute does not fit."""
    p, off = data.draw(st.sampled_from(integrity_cases()))
    m = stun.parse(p)
    assert m is not None  # parse_py read it: integrity_cases()
    b = bytearray(p)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    q = bytes(b[: data.draw(st.integers(off, len(b)))])
    m = dataclasses.replace(
        m, integrity_offset=data.draw(st.sampled_from([off, off, off - 4, off + 4, 20, len(q) - 4]))
    )
    key = data.draw(st.sampled_from(KEYS) | st.binary(max_size=100))
    got = stun._stunparse.check(q, key, m, stun._SHA1_PADS, stun._SHA256_PADS)
    o = m.integrity_offset
    fits = o >= 20 and o + 4 <= len(q) and o + 4 + (q[o + 2] << 8 | q[o + 3]) <= len(q)
    if not fits:
        assert got is NotImplemented
    elif got is not NotImplemented:
        assert got is stun._verify_py(q, o, stun._hmac_pads(key, q[o] << 8 | q[o + 1]))


@examples(500)
@given(st.data())
def test_check_integrity_compiled_matches_python(data: st.DataObject) -> None:
    """stun.check_integrity (compiled: _stunparse.check, else the Python version it was
    given) against check_integrity_py on real messages with bytes changed and cut, the
    integrity offset moved, keys known and not, with the message parsed by either parser
    or not given: the same verdict."""
    assert stun.check_integrity is not stun.check_integrity_py
    p, off = data.draw(st.sampled_from(integrity_cases()))
    b = bytearray(p)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    q = bytes(b[: data.draw(st.integers(0, len(b)))])
    key = data.draw(st.sampled_from(KEYS) | st.binary(max_size=100))
    m = data.draw(st.sampled_from([stun.parse(p), stun.parse_py(p), stun.parse(q), None]))
    if m is not None and data.draw(st.booleans()):
        m = dataclasses.replace(
            m, integrity_offset=data.draw(st.sampled_from([off, off - 4, off + 4, 20, len(q)]))
        )
    try:
        want: object = stun.check_integrity_py(q, key, m)
    except IndexError:  # an offset past the datagram: the reference fails, so must this
        with pytest.raises(IndexError):
            stun.check_integrity(q, key, m)
        return
    assert stun.check_integrity(q, key, m) is want
    if m is None:
        assert stun.check_integrity(q, key) is want


def test_check_integrity_compiled_wants_its_arguments() -> None:
    with pytest.raises(TypeError):
        stun.check_integrity(b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        stun._stunparse.setup_integrity(stun.check_integrity_py, {}, [])


@examples(300)
@given(
    st.sampled_from(KEYS) | st.binary(max_size=100),
    st.lists(st.tuples(st.sampled_from([0x0006, 0x0024, 0x8022]), st.binary(max_size=40))),
    st.integers(0, 200),
)
def test_check_accepts_what_hmac_signs(key: bytes, attrs: list, flip: int) -> None:
    """Messages signed by Python's hmac module (the oracle) with keys of every length, a
    block's and longer (hashed first) among them: True; a byte changed anywhere in
    what the MAC covers, or in the MAC: False."""
    head = message([*attrs, (stun.A_INTEGRITY, bytes(20))])
    off = len(head) - 24
    covered = bytearray(head[:off])
    covered[2:4] = (off + 4).to_bytes(2, "big")  # the length up to MESSAGE-INTEGRITY's end
    mac = hmac.new(key, bytes(covered), hashlib.sha1).digest()
    p = head[:off] + head[off : off + 4] + mac
    m = stun.parse(p)
    assert m is not None and m.integrity and m.integrity_offset == off
    assert stun._stunparse.check(p, key, m, stun._SHA1_PADS, stun._SHA256_PADS) is True
    assert stun.check_integrity(p, key, m) is True
    assert stun.check_integrity(p[:-1] + bytes([p[-1] ^ 0x80]), key, m) is False  # its last
    bad = bytearray(p)
    i = flip % len(bad)
    if i in (2, 3) or off <= i < off + 4:  # the length and the attribute's header move it
        return
    bad[i] ^= 0x01
    m_bad = stun.parse(bytes(bad))
    if m_bad is not None and m_bad.integrity and m_bad.integrity_offset == off:
        assert stun.check_integrity(bytes(bad), key, m_bad) is False


@examples(500)
@given(st.data())
def test_verify_matches_python_on_damaged_messages(data: st.DataObject) -> None:
    p, off = data.draw(st.sampled_from(integrity_cases()))
    b = bytearray(p)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    off = data.draw(st.sampled_from([off, off, off - 4, off + 4, 20, 0, len(b) - 4, len(b)]))
    verify_both(
        bytes(b[: data.draw(st.integers(0, len(b)))]), off, data.draw(st.sampled_from(KEYS))
    )


def test_check_is_check_integrity_in_one_call() -> None:
    """_stunparse.check gives check_integrity's verdict, or hands back to Python
    (NotImplemented) for what it does not take: unmade pads (HMAC-SHA256, or SHA-1 when
    built without OpenSSL's headers), other types, bad offsets."""
    sha1, sha256 = stun._SHA1_PADS, stun._SHA256_PADS
    for p, off in integrity_cases():
        m = stun.parse(p)
        m_py = stun.parse_py(p)
        atype = p[off] << 8 | p[off + 1]
        for key in KEYS:
            stun._hmac_pads(key, atype)
            want = stun._verify_py(p, off, stun._hmac_pads(key, atype))
            assert stun._stunparse.check(p, key, m, sha1, sha256) is want
            assert stun._stunparse.check(p, key, m_py, sha1, sha256) is want
            assert stun.check_integrity(p, key, m) is want
        got = stun._stunparse.check(p, b"never made", m, sha1, sha256)
        if stun._stunparse.OWN_SHA1 and atype == stun.A_INTEGRITY:  # any key: hashed in C
            assert got is stun._verify_py(p, off, stun._hmac_pads(b"never made", atype))
            del sha1[b"never made"]
        else:
            assert got is NotImplemented
        assert stun._stunparse.check(bytearray(p), KEYS[0], m, sha1, sha256) is NotImplemented
        assert stun._stunparse.check(p[:off], KEYS[0], m, sha1, sha256) is NotImplemented
        assert stun._stunparse.check(p, KEYS[0], None, sha1, sha256) is NotImplemented
        plain = stun.parse(message([(stun.A_SOFTWARE, b"x")]))
        assert plain is not None and not plain.integrity
        assert stun._stunparse.check(p, KEYS[0], plain, sha1, sha256) is None
    with pytest.raises(TypeError):
        stun._stunparse.check(b"", b"", None, {}, [])
