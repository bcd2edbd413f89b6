"""TLS 1.2 and 1.3 decryption of signalling with a key log file (NSS SSLKEYLOGFILE format).

SIP over TLS and secure WebSockets are opaque without keys; Chromium, Firefox,
OpenSSL and Python's ssl write a key log that names each session's secrets by its
ClientHello random. Records are followed per connection: plaintext handshake
records give the randoms and the cipher suite, then each direction decrypts with
keys derived as RFC 5246 (TLS 1.2 PRF, key block) or RFC 8446 section 7
(HKDF-Expand-Label) describe. AEAD suites only (AES-GCM, ChaCha20-Poly1305): what
browsers and SIP stacks negotiate; anything else stays opaque and is counted.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when keys are made: a run without --keylog never needs them
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

#: cipher suite -> (AEAD, key length, hash) for the suites we decrypt
SUITES = {
    0x1301: ("gcm", 16, "sha256"),
    0x1302: ("gcm", 32, "sha384"),
    0x1303: ("chacha", 32, "sha256"),
    0xC02B: ("gcm", 16, "sha256"),
    0xC02F: ("gcm", 16, "sha256"),
    0xC02C: ("gcm", 32, "sha384"),
    0xC030: ("gcm", 32, "sha384"),
    0x009C: ("gcm", 16, "sha256"),
    0x009D: ("gcm", 32, "sha384"),
    0xCCA8: ("chacha", 32, "sha256"),
    0xCCA9: ("chacha", 32, "sha256"),
}
HANDSHAKE, APPLICATION, CHANGE_CIPHER_SPEC = 22, 23, 20
#: the longest record body (RFC 5246 6.2.3: 2^14 + 2048) and the shortest AEAD one (a tag)
MAX_RECORD, MIN_RECORD = 2**14 + 2048, 16
#: record sequence numbers tried for the first record after a capture gap, at most
MAX_TRIES = 4096


def read_keylog(path: Path | str) -> dict[tuple[str, bytes], bytes]:
    """(label, client random) -> secret, from an NSS key log file; bad lines are skipped."""
    return parse_keylog(Path(path).read_text(errors="replace"))


def parse_keylog(text: str) -> dict[tuple[str, bytes], bytes]:
    """(label, client random) -> secret, from an NSS key log's text; bad lines are skipped."""
    keys: dict[tuple[str, bytes], bytes] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            try:
                keys[(parts[0], bytes.fromhex(parts[1]))] = bytes.fromhex(parts[2])
            except ValueError:
                continue
    return keys


def hkdf_label(
    secret: bytes, label: str, length: int, digest: str, prefix: bytes = b"tls13 "
) -> bytes:
    """HKDF-Expand-Label with an empty context (RFC 8446 7.1; DTLS 1.3 prefixes "dtls13")."""
    full = prefix + label.encode()
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), digest).digest()
        out += block
        i += 1
    return out[:length]


def prf(secret: bytes, label: bytes, seed: bytes, length: int, digest: str) -> bytes:
    """The TLS 1.2 PRF, P_hash (RFC 5246 section 5)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, digest).digest()
        out += hmac.new(secret, a + seed, digest).digest()
    return out[:length]


@dataclass
class _Keys:
    aead: AESGCM | ChaCha20Poly1305
    iv: bytes
    tls13: bool
    seq: int = 0

    def open(self, rtype: int, version: bytes, body: bytes, seq: int | None = None) -> bytes:
        """The plaintext of the record numbered `seq` (default: the next); the count goes
        on past it, opened or not. InvalidTag when the record is not that one."""
        seq = self.seq if seq is None else seq
        self.seq = seq + 1
        if self.tls13:
            nonce = bytes(a ^ b for a, b in zip(self.iv, seq.to_bytes(12, "big"), strict=True))
            aad = bytes([rtype]) + version + len(body).to_bytes(2, "big")
        elif len(self.iv) == 4:  # AES-GCM: 4 implicit + 8 explicit nonce bytes
            nonce, body = self.iv + body[:8], body[8:]
            aad = seq.to_bytes(8, "big") + bytes([rtype]) + version
            aad += (len(body) - 16).to_bytes(2, "big")
        else:  # ChaCha20-Poly1305 (RFC 7905): the TLS 1.3 style nonce
            nonce = bytes(a ^ b for a, b in zip(self.iv, seq.to_bytes(12, "big"), strict=True))
            aad = seq.to_bytes(8, "big") + bytes([rtype]) + version
            aad += (len(body) - 16).to_bytes(2, "big")
        return self.aead.decrypt(nonce, body, aad)


def make_aead(kind: str, key: bytes) -> AESGCM | ChaCha20Poly1305:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    return AESGCM(key) if kind == "gcm" else ChaCha20Poly1305(key)


@dataclass
class TlsConnection:
    """Both directions of one TLS connection; `client` is the side that sent ClientHello."""

    keylog: dict[tuple[str, bytes], bytes]
    client: bytes | None = None  # flow key of the client's direction
    client_random: bytes = b""
    server_random: bytes = b""
    suite: int | None = None
    tls13: bool = False
    keys: dict[bytes, _Keys] = field(default_factory=dict)
    app: dict[bytes, bool] = field(default_factory=dict)  # direction uses traffic secret 0
    problem: str = ""
    #: direction -> [bytes a capture gap took from it, bytes searched since] until its next
    #: whole record is found ([-1, ...]: none was, and the direction is passed over)
    lost: dict[bytes, list[int]] = field(default_factory=dict)

    def missed(self, key: bytes, n: int) -> None:
        """The capture lost `n` bytes of direction `key` (a TCP hole given up, with the
        bytes held before it): `records` reads on from the next whole record."""
        gap = self.lost.setdefault(key, [0, 0])
        if gap[0] >= 0:
            gap[0] += n

    def records(self, key: bytes, buf: bytearray) -> tuple[list[tuple[int, bytes]], int, int]:
        """Whole records of `buf` as (content type, plaintext); bytes used; bytes skipped to
        find the next record after a capture gap."""
        out: list[tuple[int, bytes]] = []
        i = skipped = 0
        if key in self.lost:
            if self.lost[key][0] < 0:  # given up after a gap
                return out, len(buf), 0
            i, found = self._resync(key, buf)
            skipped = i
            if not found:
                return out, i, skipped
        while i + 5 <= len(buf):
            rtype, version = buf[i], bytes(buf[i + 1 : i + 3])
            n = buf[i + 3] << 8 | buf[i + 4]
            if i + 5 + n > len(buf):
                break
            body = bytes(buf[i + 5 : i + 5 + n])
            i += 5 + n
            out += self._record(key, rtype, version, body)
        return out, i, skipped

    def _resync(self, key: bytes, buf: bytearray) -> tuple[int, bool]:
        """After a capture gap: (offset of the next whole record in `buf`, True), or (bytes
        known to start none, False) while `buf` cannot tell yet.

        With keys, a record is the one that opens at a sequence number the missing bytes
        allow (each record lost took at least 5 + MIN_RECORD of them, so at most that many
        numbers are tried: its tag makes a wrong place or number fail, not mislead); before
        them, a record header followed by another, or by the end of `buf`. Two longest
        records searched with none found, decryption of the direction is given up.
        """
        k = self.keys.get(key)
        gap = self.lost[key]
        tries = min(gap[0] // (5 + MIN_RECORD) + 2, MAX_TRIES)
        i, wait = 0, None
        while i + 5 <= len(buf):
            n = buf[i + 3] << 8 | buf[i + 4]
            if (
                buf[i] not in (20, 21, 22, 23)
                or buf[i + 1] != 3
                or buf[i + 2] > 4
                or not (0 < n <= MAX_RECORD)
            ):
                i += 1
                continue
            end = i + 5 + n
            if end > len(buf):  # a record may start here: wait for its end, unless (with
                if k is None:  # keys) a later one opens, and then this was none
                    gap[1] += i
                    return i, False
                wait = i if wait is None else wait
            elif k is None:  # plaintext yet: another header next, or the end so far
                if end == len(buf) or (
                    end + 3 <= len(buf) and buf[end] in (20, 21, 22, 23) and buf[end + 1] == 3
                ):
                    del self.lost[key]
                    return i, True
            else:
                from cryptography.exceptions import InvalidTag

                rtype, version, body = buf[i], bytes(buf[i + 1 : i + 3]), bytes(buf[i + 5 : end])
                first = k.seq
                for seq in range(first, first + tries):
                    try:
                        k.open(rtype, version, body, seq)
                    except (InvalidTag, ValueError):
                        continue
                    k.seq = seq  # `records` opens it again, in its turn
                    del self.lost[key]
                    return i, True
                k.seq = first
            i += 1
        i = max(0, len(buf) - 4) if wait is None else wait
        gap[1] += i
        if gap[1] > 2 * (5 + MAX_RECORD):
            self.problem = "decryption lost at a capture gap (no record opens after it)"
            gap[0] = -1  # the rest of the direction is passed over
        return i, False

    def _record(
        self, key: bytes, rtype: int, version: bytes, body: bytes
    ) -> list[tuple[int, bytes]]:
        k = self.keys.get(key)
        if rtype == CHANGE_CIPHER_SPEC:
            if not self.tls13:
                self._tls12_keys(key)
            return []
        if k is None:
            if rtype == HANDSHAKE:
                self._hello(key, body)
            return [(rtype, body)] if rtype != APPLICATION else []
        from cryptography.exceptions import InvalidTag

        try:
            plain = k.open(rtype, version, body)
        except (InvalidTag, ValueError):
            self.problem = "decryption failed (wrong key or damaged record)"
            return []
        if self.tls13:
            plain = plain.rstrip(b"\x00")
            rtype, plain = (plain[-1], plain[:-1]) if plain else (0, b"")
            if rtype == HANDSHAKE and not self.app.get(key) and _has_finished(plain):
                self._tls13_keys(key, "TRAFFIC_SECRET_0")
        return [(rtype, plain)]

    def _hello(self, key: bytes, body: bytes) -> None:
        """ClientHello and ServerHello (possibly with other handshake messages after)."""
        off = 0
        while off + 4 <= len(body):
            ht, n = body[off], int.from_bytes(body[off + 1 : off + 4], "big")
            msg = body[off + 4 : off + 4 + n]
            if ht == 1 and len(msg) >= 34:
                self.client, self.client_random = key, msg[2:34]
            elif ht == 2 and len(msg) >= 38:
                self.server_random = msg[2:34]
                sid = msg[34]
                if len(msg) >= 37 + sid:
                    self.suite = int.from_bytes(msg[35 + sid : 37 + sid], "big")
                self.tls13 = server_version(msg, 38 + sid) == b"\x03\x04"
                if self.tls13 and self.client is not None:
                    self._tls13_keys(key, "HANDSHAKE_TRAFFIC_SECRET")
                    self._tls13_keys(self.client, "HANDSHAKE_TRAFFIC_SECRET")
            off += 4 + n

    def _suite(self) -> tuple[str, int, str] | None:
        spec = SUITES.get(self.suite or -1)
        if spec is None:
            self.problem = f"cipher suite 0x{self.suite or 0:04x} is not decrypted"
        return spec

    def _tls13_keys(self, key: bytes, which: str) -> None:
        spec = self._suite()
        side = "CLIENT" if key == self.client else "SERVER"
        secret = self.keylog.get((f"{side}_{which}", self.client_random))
        if spec is None or secret is None:
            self.problem = self.problem or "no key log entry for this session"
            return
        kind, klen, digest = spec
        self.keys[key] = _Keys(
            make_aead(kind, hkdf_label(secret, "key", klen, digest)),
            hkdf_label(secret, "iv", 12, digest),
            True,
        )
        self.app[key] = which == "TRAFFIC_SECRET_0"

    def _tls12_keys(self, key: bytes) -> None:
        spec = self._suite()
        master = self.keylog.get(("CLIENT_RANDOM", self.client_random))
        if spec is None or master is None:
            self.problem = self.problem or "no key log entry for this session"
            return
        kind, klen, digest = spec
        ivlen = 4 if kind == "gcm" else 12
        block = prf(
            master,
            b"key expansion",
            self.server_random + self.client_random,
            2 * (klen + ivlen),
            digest,
        )
        ck, sk = block[:klen], block[klen : 2 * klen]
        civ, siv = block[2 * klen : 2 * klen + ivlen], block[2 * klen + ivlen :]
        mine = key == self.client
        self.keys[key] = _Keys(make_aead(kind, ck if mine else sk), civ if mine else siv, False)


def server_version(msg: bytes, off: int) -> bytes:
    """The version a ServerHello's supported_versions extension (43) picks, or b"" (none).

    `off` is where the extensions block starts: 0x0304 is TLS 1.3, 0xfefc DTLS 1.3.
    """
    if off + 2 > len(msg):
        return b""
    end = min(len(msg), off + 2 + int.from_bytes(msg[off : off + 2], "big"))
    off += 2
    while off + 4 <= end:
        et, n = (
            int.from_bytes(msg[off : off + 2], "big"),
            int.from_bytes(msg[off + 2 : off + 4], "big"),
        )
        if et == 43 and n == 2:
            return msg[off + 4 : off + 6]
        off += 4 + n
    return b""


def _has_finished(plain: bytes) -> bool:
    off = 0
    while off + 4 <= len(plain):
        if plain[off] == 20:
            return True
        off += 4 + int.from_bytes(plain[off + 1 : off + 4], "big")
    return False
