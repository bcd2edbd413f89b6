"""Each repetition of a benchmark capture a call of its own, inside the payloads too.

`bench_analyze.build_capture` repeats a real call with its ports moved. Left at that,
every repetition would carry the same SIP Call-IDs, ICE credentials and SDP session ids:
one SIP dialog of hundreds of calls, three ICE generations in all, and every repeated
offer a "subsequent" one whose version goes back (hundreds of conformance errors no
real capture has). Here each repetition r > 0 gets its own: every Call-ID, ice-ufrag,
ice-pwd and o= session id of the source is rewritten to a same-length variant (so no
length, Content-Length or chunk size changes), wherever it appears as text (SIP, the
HTTP of Janus' API, JSON-escaped or not) and in STUN USERNAMEs, also inside TURN Send
and Data indications and ChannelData. A STUN check signed with an ice-pwd (found by
trying each password on its MESSAGE-INTEGRITY) is signed again with the repetition's,
and its FINGERPRINT recomputed; TURN's own long-term-credential messages carry none of
these and stay as captured. A TCP segment whose payload changed gets its checksum
recomputed. Binary payloads (DTLS, RTP) are not touched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct

from harness.nat.stun import fingerprint_crc

MAGIC = b"\x21\x12\xa4\x42"
ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UFRAG = re.compile(rb"a=ice-ufrag:([A-Za-z0-9+/]{4,256})")
_PWD = re.compile(rb"a=ice-pwd:([A-Za-z0-9+/]{22,256})")
_CALL_ID = re.compile(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*([^\s]{4,256})", re.I)
_SESSION = re.compile(rb"o=\S+ (\d{4,20}) ")


def variant(token: bytes, r: int) -> bytes:
    """`token` for repetition r: its last characters replaced by r's code, digits by digits."""
    if r == 0:
        return token
    if token.isdigit():
        width = min(6, len(token) - 1)
        code = b"%0*d" % (width, r % 10**width)
    else:
        code = bytes((ALPHABET[r // 3844 % 62], ALPHABET[r // 62 % 62], ALPHABET[r % 62]))
    return token[: -len(code)] + code


class Identities:
    """The call identities of a source capture's frames, and each repetition's."""

    def __init__(self, frames: list[bytes]) -> None:
        found: dict[re.Pattern[bytes], set[bytes]] = {}
        for rx in (_UFRAG, _PWD, _CALL_ID, _SESSION):
            found[rx] = {m for f in frames for m in rx.findall(f)}
        self.pwds = sorted(found[_PWD])
        self._signers: dict[bytes, bytes | None] = {}  # a source message -> its ice-pwd
        self.tokens = sorted(set().union(*found.values()), key=lambda t: (-len(t), t))
        self._maps: dict[int, tuple[list[tuple[bytes, bytes]], dict[bytes, bytes]]] = {}

    def _map(self, r: int) -> tuple[list[tuple[bytes, bytes]], dict[bytes, bytes]]:
        if r not in self._maps:
            pairs = []
            for tok in self.tokens:  # longest first: a ufrag never cuts into a password
                pairs.append((tok, variant(tok, r)))
                if b"/" in tok:  # as JSON may write it
                    pairs.append((tok.replace(b"/", b"\\/"), variant(tok, r).replace(b"/", b"\\/")))
            self._maps[r] = (pairs, {p: variant(p, r) for p in self.pwds})
        return self._maps[r]

    def text(self, p: bytes, r: int) -> bytes:
        for old, new in self._map(r)[0]:
            if old in p:
                p = p.replace(old, new)
        return p

    def frame(self, f: bytes, r: int) -> bytes:
        """Frame `f` (Ethernet/IPv4) of repetition r."""
        if r == 0 or len(f) < 42 or f[12:14] != b"\x08\x00" or f[23] not in (6, 17):
            return f
        l4, end = 14 + (f[14] & 15) * 4, 14 + (f[16] << 8 | f[17])
        if f[23] == 17:
            p = f[l4 + 8 : end]
            if p[:1] and 0x40 <= p[0] <= 0x4F and len(p) >= 4:  # TURN ChannelData
                n = p[2] << 8 | p[3]
                new = p[:4] + self.stun(p[4 : 4 + n], r) + p[4 + n :]
            elif p[:1] and p[0] <= 1:
                new = self.stun(p, r)
            elif p[:1].isalpha():  # SIP
                new = self.text(p, r)
            else:
                return f
            return f[: l4 + 8] + new + f[end:] if new != p else f
        if len(f) < l4 + 20:
            return f
        off = l4 + (f[l4 + 12] >> 4) * 4
        p = f[off:end]
        new = self.text(p, r)
        if new == p:
            return f
        out = bytearray(f[:off] + new + f[end:])
        struct.pack_into("!H", out, l4 + 16, 0)
        pseudo = f[26:34] + struct.pack("!BBH", 0, 6, end - l4)
        struct.pack_into("!H", out, l4 + 16, _checksum(pseudo + bytes(out[l4:end])))
        return bytes(out)

    def stun(self, p: bytes, r: int) -> bytes:
        """A STUN message (and what follows it) of repetition r; anything else as it is."""
        if len(p) < 20 or p[0] > 1 or p[4:8] != MAGIC or 20 + (p[2] << 8 | p[3]) > len(p):
            return p
        end = 20 + (p[2] << 8 | p[3])
        msg, changed, off, integrity, fingerprint = bytearray(p[:end]), False, 20, None, None
        while off + 4 <= end:
            kind, n = struct.unpack_from("!HH", msg, off)
            v0, v1 = off + 4, off + 4 + n
            if v1 > end:
                return p
            if kind in (0x0006, 0x0013):  # USERNAME; DATA (a Send or Data indication's)
                old = bytes(msg[v0:v1])
                new = self.text(old, r) if kind == 0x0006 else self.stun(old, r)
                changed |= new != old
                msg[v0:v1] = new
            elif kind == 0x0008:
                integrity = off
            elif kind == 0x8028:
                fingerprint = off
            off = v1 + (-n % 4)
        if integrity is not None:
            key = self._signer(p, integrity)
            if key is not None:
                mac = hmac.new(self._map(r)[1][key], _upto(msg, integrity, 24), hashlib.sha1)
                msg[integrity + 4 : integrity + 24] = mac.digest()
                changed = True
        if fingerprint is not None and changed:
            crc = fingerprint_crc(_upto(msg, fingerprint, 8))
            struct.pack_into("!I", msg, fingerprint + 4, crc)
        return bytes(msg) + p[end:]

    def _signer(self, p: bytes, at: int) -> bytes | None:
        """The ice-pwd that signed the MESSAGE-INTEGRITY at `at`, if one did."""
        if p not in self._signers:
            data, signer = _upto(p, at, 24), None
            for pwd in self.pwds:
                if hmac.new(pwd, data, hashlib.sha1).digest() == p[at + 4 : at + 24]:
                    signer = pwd
            self._signers[p] = signer
        return self._signers[p]


def _upto(msg: bytes | bytearray, at: int, size: int) -> bytes:
    """The message before the attribute at `at`, its length field covering that attribute
    (`size` bytes): what MESSAGE-INTEGRITY and FINGERPRINT are computed over."""
    data = bytearray(msg[:at])
    struct.pack_into("!H", data, 2, at + size - 20)
    return bytes(data)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
