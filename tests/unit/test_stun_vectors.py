"""RFC 5769 test vectors: the STUN dissector against the RFC's own bytes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from harness.analysis import stun


def hexbytes(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"

# RFC 5769 2.1 Sample Request
REQUEST = hexbytes("""
00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
00 24 00 04 6e 00 01 ff
80 29 00 08 93 2f f9 b1 51 26 3b 36
00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
80 28 00 04 e5 7a 3b cf""")
# RFC 5769 2.2 Sample IPv4 Response
RESPONSE_V4 = hexbytes("""
01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
00 20 00 08 00 01 a1 47 e1 12 a6 43
00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
80 28 00 04 c0 7d 4c 96""")
# RFC 5769 2.3 Sample IPv6 Response
RESPONSE_V6 = hexbytes("""
01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
80 28 00 04 c8 fb 0b 4c""")
# RFC 5769 2.4 Sample Request with Long-Term Authentication
LONG_TERM = hexbytes("""
00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66""")


def test_sample_request() -> None:
    m = stun.parse(REQUEST)
    assert m is not None
    assert (m.method, m.cls, m.txid) == ("Binding", "request", "b7e7a701bc34d686fa87dfae")
    assert m.software == "STUN test client"
    assert m.username == "evtj:h6vY"
    assert m.priority == 0x6E0001FF
    assert m.ice_controlled == 0x932FF9B151263B36
    assert m.ice_controlling is None and not m.use_candidate
    assert m.fingerprint_ok is True
    assert stun.check_integrity(REQUEST, PASSWORD) is True
    assert stun.check_integrity(REQUEST, b"wrong password") is False


@pytest.mark.parametrize(
    ("vector", "mapped"),
    [
        (RESPONSE_V4, ("192.0.2.1", 32853)),
        (RESPONSE_V6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_sample_responses(vector: bytes, mapped: tuple[str, int]) -> None:
    m = stun.parse(vector)
    assert m is not None
    assert (m.method, m.cls, m.software) == ("Binding", "success", "test vector")
    assert m.xor_mapped == mapped
    assert m.fingerprint_ok is True
    assert stun.check_integrity(vector, PASSWORD) is True


def test_long_term_request() -> None:
    m = stun.parse(LONG_TERM)
    assert m is not None
    user = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
    assert m.username == user
    assert m.realm == "example.org"
    assert m.nonce == "f//499k954d6OL34oL9FSTvy64sA"
    assert m.fingerprint_ok is None
    # The RFC's password "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep is "TheMatrIX".
    assert stun.check_integrity(LONG_TERM, stun.long_term_key(user, "example.org", "TheMatrIX"))
    assert not stun.check_integrity(LONG_TERM, stun.long_term_key(user, "example.org", "TheMatrix"))


def test_changed_byte_breaks_fingerprint_and_integrity() -> None:
    damaged = bytearray(REQUEST)
    damaged[30] ^= 1  # inside SOFTWARE
    m = stun.parse(bytes(damaged))
    assert m is not None and m.fingerprint_ok is False
    assert stun.check_integrity(bytes(damaged), PASSWORD) is False


def hmac_digest_reference(p: bytes, key: bytes) -> bool | None:
    """check_integrity as hmac.digest does it, key schedule and all (the pre-computed pads
    of stun._hmac_pads must agree with it for any key length, either digest, any length)."""
    m = stun.parse_py(p)
    if m is None or not m.integrity:
        return None
    off = m.integrity_offset
    atype, alen = p[off] << 8 | p[off + 1], p[off + 2] << 8 | p[off + 3]
    head = p[:2] + (off + 4 + alen - 20).to_bytes(2, "big") + p[4:off]
    mac = hmac.digest(key, head, "sha1" if atype == stun.A_INTEGRITY else "sha256")
    return hmac.compare_digest(mac[:alen], p[off + 4 : off + 4 + alen])


def integrity_variants(p: bytes) -> list[bytes]:
    """`p` cut after MESSAGE-INTEGRITY, as -SHA256, with its value shorter and longer."""
    m = stun.parse_py(p)
    assert m is not None and m.integrity
    off = m.integrity_offset
    out = [p]
    for atype, size in ((0x0008, 20), (0x001C, 32), (0x0008, 16), (0x001C, 40), (0x0008, 0)):
        body = p[20:off] + atype.to_bytes(2, "big") + size.to_bytes(2, "big") + bytes(size)
        out.append(p[:2] + len(body).to_bytes(2, "big") + p[4:20] + body)
    for key in (PASSWORD, b"k" * 64, b"k" * 65):  # the right MAC for some keys, in place
        for digest, atype in (("sha1", 0x0008), ("sha256", 0x001C)):
            size = hashlib.new(digest).digest_size
            body = p[20:off] + atype.to_bytes(2, "big") + size.to_bytes(2, "big")
            head = p[:2] + (len(body) + size).to_bytes(2, "big") + p[4:20] + body[:-4]
            out.append(head + body[-4:] + hmac.digest(key, head, digest))
    return out


@pytest.mark.parametrize("vector", [REQUEST, RESPONSE_V4, RESPONSE_V6, LONG_TERM])
def test_integrity_matches_hmac_digest(vector: bytes) -> None:
    keys = [PASSWORD, b"", b"x", b"k" * 63, b"k" * 64, b"k" * 65, b"k" * 200]
    keys.append(
        stun.long_term_key("\u30de\u30c8\u30ea\u30c3\u30af\u30b9", "example.org", "TheMatrIX")
    )
    results = []
    for p in integrity_variants(vector):
        for key in keys:
            want = hmac_digest_reference(p, key)
            assert stun.check_integrity(p, key) is want, (p.hex(), key)
            assert stun.check_integrity(p, key, stun.parse(p)) is want
            results.append(want)
    assert True in results and False in results


def test_not_stun() -> None:
    assert stun.parse(REQUEST[:19]) is None
    wrong_cookie = bytearray(REQUEST)
    wrong_cookie[4] ^= 1
    assert stun.parse(bytes(wrong_cookie)) is None
    too_long = bytearray(REQUEST)
    too_long[3] = 0x5C  # message length past the datagram
    assert stun.parse(bytes(too_long)) is None
    overrun = bytearray(REQUEST)
    overrun[23] = 0x40  # SOFTWARE length runs past the message
    assert stun.parse(bytes(overrun)) is None


def test_message_types() -> None:
    cases = {
        0x0003: ("Allocate", "request"),
        0x0113: ("Allocate", "error"),
        0x0004: ("Refresh", "request"),
        0x0016: ("Send", "indication"),
        0x0017: ("Data", "indication"),
        0x0008: ("CreatePermission", "request"),
        0x0109: ("ChannelBind", "success"),
    }
    for mtype, want in cases.items():
        p = mtype.to_bytes(2, "big") + b"\x00\x00" + stun.MAGIC_BYTES + bytes(12)
        m = stun.parse(p)
        assert m is not None and (m.method, m.cls) == want, hex(mtype)


def test_channel_data() -> None:
    frame = b"\x40\x01\x00\x05hello\x00\x00\x00"
    assert stun.is_channel_data(frame)
    assert stun.channel_data(frame) == (0x4001, b"hello")
    assert not stun.is_channel_data(b"\x40\x01\x00\x09hello")
