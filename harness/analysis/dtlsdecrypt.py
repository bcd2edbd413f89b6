"""DTLS 1.2 record decryption with a key log (RFC 6347 records, NSS SSLKEYLOGFILE secrets).

WebRTC data channels run SCTP inside DTLS, so their signalling (JSON, SIP over a
data channel) is opaque on the wire. aiortc, Firefox and Chromium log each DTLS
1.2 session's master secret under its ClientHello random (CLIENT_RANDOM lines):
the key block comes from the TLS 1.2 PRF as in TLS (tlsdecrypt.py); only the
record differs: the explicit sequence number is epoch (16 bits) and sequence (48
bits) from the header, and it is both the AEAD's associated data prefix and, for
ChaCha20-Poly1305 (RFC 7905), the nonce's counter. A ServerHello that picks DTLS
1.3 hands the session's protected records to dtls13.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.analysis import dtls13
from harness.analysis.tlsdecrypt import SUITES, make_aead, prf, server_version

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

HANDSHAKE, APPLICATION, CHANGE_CIPHER_SPEC, ALERT = 22, 23, 20, 21
#: record header: type, version (2), epoch (2), sequence (6), length (2)
HEADER = 13


@dataclass(frozen=True)
class RawRecord:
    """One DTLS record as sent, ciphertext untouched."""

    type: int
    version: bytes
    epoch: int
    seq: int
    body: bytes


def split_records(p: bytes, limit: int = 1 << 16) -> list[RawRecord]:
    """Records of one datagram (RFC 6347 4.1: several may share it); stops at an overrun."""
    out: list[RawRecord] = []
    off = 0
    while off + HEADER <= len(p) and p[off + 1] == 0xFE and len(out) < limit:
        n = p[off + 11] << 8 | p[off + 12]
        if off + HEADER + n > len(p):
            break
        out.append(
            RawRecord(
                p[off],
                p[off + 1 : off + 3],
                p[off + 3] << 8 | p[off + 4],
                int.from_bytes(p[off + 5 : off + 11], "big"),
                p[off + HEADER : off + HEADER + n],
            )
        )
        off += HEADER + n
    return out


@dataclass
class _Keys:
    aead: AESGCM | ChaCha20Poly1305
    iv: bytes

    def open(self, r: RawRecord) -> bytes:
        seq = (r.epoch << 48 | r.seq).to_bytes(8, "big")
        body = r.body
        if len(self.iv) == 4:  # AES-GCM: 4 implicit + 8 explicit nonce bytes (RFC 5288)
            nonce, body = self.iv + body[:8], body[8:]
        else:  # ChaCha20-Poly1305: IV xor the padded 64-bit sequence (RFC 7905)
            nonce = bytes(a ^ b for a, b in zip(self.iv, bytes(4) + seq, strict=True))
        aad = seq + bytes([r.type]) + r.version + (len(body) - 16).to_bytes(2, "big")
        return self.aead.decrypt(nonce, body, aad)


@dataclass
class DtlsAssociation:
    """Both directions of one DTLS association (one 5-tuple, possibly inside TURN).

    `client` is the flow key of the direction that sent ClientHello. A new
    ClientHello random on the same 5-tuple starts a new session (a new handshake).
    """

    keylog: dict[tuple[str, bytes], bytes]
    client: bytes | None = None
    client_random: bytes = b""
    server_random: bytes = b""
    suite: int | None = None
    keys: dict[bytes, _Keys] = field(default_factory=dict)
    problem: str = ""
    v13: dtls13.Dtls13 | None = None  # set when the ServerHello picks DTLS 1.3
    decrypted: int = 0  # application data records
    failed: int = 0
    alerts: list[bytes] = field(default_factory=list)  # of the last datagram, decrypted
    adopt_tries: int = 0  # datagrams tried against other sessions (`adopt`)

    def plaintexts(self, key: bytes, p: bytes) -> list[bytes]:
        """Application data plaintexts of one datagram sent in direction `key`."""
        from cryptography.exceptions import InvalidTag

        out: list[bytes] = []
        self.alerts = []
        off = 0
        while off < len(p):
            if p[off] & 0xE0 == 0x20:  # RFC 9147 unified header: DTLS 1.3 protected
                r13, off = dtls13.split(p, off)
                if r13 is None or self.v13 is None:
                    continue
                try:
                    opened = self.v13.open(key == self.client, r13)
                except (InvalidTag, ValueError):
                    self._failed()
                    continue
                if opened is not None and opened[0] in (APPLICATION, ALERT):
                    (out if opened[0] == APPLICATION else self.alerts).append(opened[1])
                    self.decrypted += opened[0] == APPLICATION
                continue
            recs = split_records(p[off:], limit=1)
            if not recs:
                break
            r = recs[0]
            off += HEADER + len(r.body)
            if r.epoch == 0:
                if r.type == HANDSHAKE:
                    self._hello(key, r.body)
                continue
            if r.type not in (APPLICATION, ALERT):
                continue  # the encrypted Finished: nothing for the application
            k = self.keys.get(key) or self._derive(key)
            if k is None:
                continue
            try:
                (out if r.type == APPLICATION else self.alerts).append(k.open(r))
                self.decrypted += r.type == APPLICATION
            except (InvalidTag, ValueError):
                self._failed()
        return out

    def _failed(self) -> None:
        self.failed += 1
        self.problem = "decryption failed (wrong key or damaged record)"

    def adopt(self, others: list[DtlsAssociation], key: bytes, back: bytes, p: bytes) -> bool:
        """Take over the session of another 5-tuple, if this datagram opens with its keys.

        An ICE restart or a switch of candidate pair moves DTLS to a new 5-tuple without a
        new handshake (RFC 8445: the DTLS association outlives ICE). The AEAD tag tells
        whether a session's keys fit, so a wrong guess never yields plaintext. `back` is
        the flow key of the other direction.
        """
        r = next((r for r in split_records(p) if r.epoch and r.type == APPLICATION), None)
        if r is None:
            return False
        from cryptography.exceptions import InvalidTag

        for other in others:
            for client in (key, back):  # this direction is the client's, or the server's
                trial = DtlsAssociation(
                    self.keylog, client, other.client_random, other.server_random, other.suite
                )
                k = trial._derive(key)
                if k is None:
                    break
                try:
                    k.open(r)
                except (InvalidTag, ValueError):
                    continue
                self.client, self.client_random = client, other.client_random
                self.server_random, self.suite, self.problem = other.server_random, other.suite, ""
                return True
        return False

    def _hello(self, key: bytes, body: bytes) -> None:
        """ClientHello and ServerHello: randoms and cipher suite (DTLS handshake headers)."""
        off = 0
        while off + 12 <= len(body):
            ht, n = body[off], int.from_bytes(body[off + 9 : off + 12], "big")
            frag_off = int.from_bytes(body[off + 6 : off + 9], "big")
            msg = body[off + 12 : off + 12 + n]
            if ht == 1 and frag_off == 0 and len(msg) >= 34:
                if msg[2:34] != self.client_random:
                    self.keys.clear()
                    self.server_random, self.suite, self.problem = b"", None, ""
                self.client, self.client_random = key, msg[2:34]
            elif ht == 2 and frag_off == 0 and len(msg) >= 38:
                self.server_random = msg[2:34]
                sid = msg[34]
                if len(msg) >= 37 + sid:
                    self.suite = int.from_bytes(msg[35 + sid : 37 + sid], "big")
                self.keys.clear()
                self.v13 = None
                if server_version(msg, 38 + sid) == b"\xfe\xfc":
                    self.v13 = dtls13.Dtls13(self.keylog, self.client_random, self.suite or 0)
            off += 12 + n

    def _derive(self, key: bytes) -> _Keys | None:
        """This direction's key and IV from the key block (RFC 5246 6.3)."""
        if not self.client_random or not self.server_random:
            self.problem = self.problem or "handshake not captured (no Client/ServerHello)"
            return None
        spec = SUITES.get(self.suite or -1)
        if spec is None:
            self.problem = f"cipher suite 0x{self.suite or 0:04x} is not decrypted"
            return None
        master = self.keylog.get(("CLIENT_RANDOM", self.client_random))
        if master is None:
            self.problem = "no key log entry for this session"
            return None
        kind, klen, digest = spec
        ivlen = 4 if kind == "gcm" else 12
        block = prf(
            master, b"key expansion", self.server_random + self.client_random,
            2 * (klen + ivlen), digest,
        )  # fmt: skip
        mine = key == self.client
        k = block[:klen] if mine else block[klen : 2 * klen]
        iv = block[2 * klen : 2 * klen + ivlen] if mine else block[2 * klen + ivlen :]
        self.keys[key] = _Keys(make_aead(kind, k), iv)
        return self.keys[key]
