"""DTLS 1.3 protected records (RFC 9147): unified headers, record number encryption.

Firefox negotiates DTLS 1.3 with peers that offer it, and its key log then names
the traffic secrets (CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET, ..._TRAFFIC_SECRET_0)
instead of a master secret. Differences from TLS 1.3 that matter for reading:
the header is 001CSLEE (connection ID, 8 or 16 sequence bits, optional length,
low epoch bits), the sequence bits are masked with AES-ECB or ChaCha20 of the
first 16 ciphertext bytes under a key of its own ("sn"), key labels start "dtls13"
(RFC 9147 5.9), the AEAD's associated data is the header with the sequence bits in
clear, and the nonce is the IV xor the record's sequence number alone (as NSS does;
measured on Firefox's records: tests/unit/test_analysis_datachannel.py). Epochs 2 (handshake) and 3 (application) are read; key
updates (epoch 4 on) are not followed, nor connection IDs (WebRTC uses none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.analysis.tlsdecrypt import SUITES, hkdf_label, make_aead

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

PREFIX = b"dtls13"
#: epoch -> key log label (after CLIENT_/SERVER_)
SECRETS = {2: "HANDSHAKE_TRAFFIC_SECRET", 3: "TRAFFIC_SECRET_0"}


@dataclass(frozen=True)
class Protected:
    """One DTLSCiphertext: header as sent, where its sequence bits are, the ciphertext."""

    header: bytes
    seq_len: int  # 1 or 2 bytes of sequence number, after the first header byte
    epoch_bits: int
    ciphertext: bytes


def split(p: bytes, off: int) -> tuple[Protected | None, int]:
    """The unified-header record at `off` and the offset after it (None if unreadable)."""
    b = p[off]
    if b & 0x10:  # a connection ID of unknown length: cannot be parsed without the handshake
        return None, len(p)
    seq_len = 2 if b & 0x08 else 1
    head = 1 + seq_len + (2 if b & 0x04 else 0)
    if off + head > len(p):
        return None, len(p)
    if b & 0x04:
        n = int.from_bytes(p[off + 1 + seq_len : off + head], "big")
        end = off + head + n
        if end > len(p):
            return None, len(p)
    else:
        end = len(p)  # no length: the record fills the rest of the datagram
    return Protected(p[off : off + head], seq_len, b & 0x03, p[off + head : end]), end


@dataclass
class _EpochKeys:
    aead: AESGCM | ChaCha20Poly1305
    iv: bytes
    sn_key: bytes
    chacha: bool
    next_seq: int = 0

    def mask(self, sample: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if self.chacha:  # counter = sample[0:4], nonce = sample[4:16] (RFC 9147 4.2.3)
            c = Cipher(algorithms.ChaCha20(self.sn_key, sample), None).encryptor()
            return c.update(bytes(16))
        return Cipher(algorithms.AES(self.sn_key), modes.ECB()).encryptor().update(sample)

    def open(self, r: Protected) -> bytes:
        """The inner plaintext (content, type, padding) of a record of this epoch."""
        if len(r.ciphertext) < 16:
            raise ValueError("ciphertext shorter than the sequence number sample")
        m = self.mask(r.ciphertext[:16])
        low = bytes(a ^ b for a, b in zip(r.header[1 : 1 + r.seq_len], m, strict=False))
        seq = self._full_seq(int.from_bytes(low, "big"), 8 * r.seq_len)
        header = r.header[:1] + low + r.header[1 + r.seq_len :]
        counter = seq.to_bytes(12, "big")  # the nonce: IV xor the 48-bit sequence alone
        nonce = bytes(a ^ b for a, b in zip(self.iv, counter, strict=True))
        plain = self.aead.decrypt(nonce, r.ciphertext, header)
        self.next_seq = max(self.next_seq, seq + 1)
        return plain

    def _full_seq(self, low: int, bits: int) -> int:
        """The sequence number closest to the next expected one with these low bits."""
        span = 1 << bits
        guess = (self.next_seq & ~(span - 1)) | low
        if guess - self.next_seq > span // 2 and guess >= span:
            guess -= span
        elif self.next_seq - guess > span // 2:
            guess += span
        return guess


@dataclass
class Dtls13:
    """The protected epochs of one DTLS 1.3 session, both directions."""

    keylog: dict[tuple[str, bytes], bytes]
    client_random: bytes
    suite: int
    keys: dict[tuple[bool, int], _EpochKeys] = field(default_factory=dict)
    problem: str = ""

    def open(self, from_client: bool, r: Protected) -> tuple[int, bytes] | None:
        """(content type, content) of a record, or None if its epoch has no keys."""
        epoch = {2: 2, 3: 3}.get(r.epoch_bits)
        if epoch is None:
            self.problem = "DTLS 1.3 epoch after a key update is not followed"
            return None
        k = self.keys.get((from_client, epoch)) or self._derive(from_client, epoch)
        if k is None:
            return None
        inner = k.open(r).rstrip(b"\x00")
        return (inner[-1], inner[:-1]) if inner else None

    def _derive(self, from_client: bool, epoch: int) -> _EpochKeys | None:
        spec = SUITES.get(self.suite)
        if spec is None:
            self.problem = f"cipher suite 0x{self.suite:04x} is not decrypted"
            return None
        side = "CLIENT" if from_client else "SERVER"
        secret = self.keylog.get((f"{side}_{SECRETS[epoch]}", self.client_random))
        if secret is None:
            self.problem = "no key log entry for this session"
            return None
        kind, klen, digest = spec
        k = _EpochKeys(
            make_aead(kind, hkdf_label(secret, "key", klen, digest, PREFIX)),
            hkdf_label(secret, "iv", 12, digest, PREFIX),
            hkdf_label(secret, "sn", klen, digest, PREFIX),
            kind == "chacha",
        )
        self.keys[(from_client, epoch)] = k
        return k
