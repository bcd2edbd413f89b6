"""DTLS records and handshake messages (RFC 6347, RFC 5764 use_srtp, RFC 7627 EMS).

Only plaintext (epoch 0) handshake messages can be read; the Finished after
ChangeCipherSpec is encrypted and reported as such. Certificates may arrive in
fragments: `CertificateAssembler` joins them before fingerprinting.

The walk calls `scan`, not `parse`: a handshake-heavy capture holds thousands of
datagrams, and the session reads only a few fields of each record (`Step`), so those
are read in one pass (in C when built) and `Record` objects are made only on demand.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from harness.analysis.memo import Bounded

try:  # the compiled scan (pip install -e . builds it); scan_py is the same in Python
    from harness.analysis import _dtlsscan  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:
    _dtlsscan = None

CONTENT_TYPES = {20: "ChangeCipherSpec", 21: "Alert", 22: "Handshake", 23: "ApplicationData"}
HANDSHAKE_TYPES = {
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    3: "HelloVerifyRequest",
    4: "NewSessionTicket",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
}
SRTP_PROFILES = {
    1: "SRTP_AES128_CM_HMAC_SHA1_80",
    2: "SRTP_AES128_CM_HMAC_SHA1_32",
    7: "SRTP_AEAD_AES_128_GCM",
    8: "SRTP_AEAD_AES_256_GCM",
}
ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    80: "internal_error",
}
EXT_USE_SRTP = 14
EXT_EMS = 23


@dataclass(slots=True)
class Handshake:
    """One handshake message (or its first fragment) in a record."""

    type: str
    msg_seq: int
    length: int
    frag_offset: int
    frag_length: int
    body: bytes = b""
    srtp_profiles: list[str] = field(default_factory=list)
    extended_master_secret: bool = False


@dataclass(slots=True)
class Record:
    """One DTLS record; handshake records carry their messages."""

    content_type: str
    version: str
    epoch: int
    seq: int
    length: int
    handshakes: list[Handshake] = field(default_factory=list)
    alert: tuple[str, str] | None = None
    encrypted: bool = False


#: DTLS1_BAD_VER: DTLS 1.0 as OpenSSL wrote it before 0.9.8f, which it still speaks
#: (and Cisco AnyConnect sends); tshark reads it as DTLS 1.0
BAD_VERSION = b"\x01\x00"


def is_dtls(p: bytes) -> bool:
    """RFC 7983: first byte 20..63 and a DTLS version."""
    return len(p) >= 13 and 20 <= p[0] <= 63 and (p[1] == 0xFE or p[1:3] == BAD_VERSION)


def parse(p: bytes) -> list[Record]:
    """Decode every record of a datagram; stops at the first record that overruns."""
    out: list[Record] = []
    off = 0
    while off + 13 <= len(p):
        ct = p[off]
        if not 20 <= ct <= 25:
            break
        ln = p[off + 11] << 8 | p[off + 12]
        if off + 13 + ln > len(p):
            break
        epoch = p[off + 3] << 8 | p[off + 4]
        rec = Record(
            CONTENT_TYPES.get(ct, str(ct)),
            _version(p[off + 1], p[off + 2]),
            epoch,
            int.from_bytes(p[off + 5 : off + 11], "big"),
            ln,
            encrypted=epoch > 0 and ct != 20,
        )
        frag = p[off + 13 : off + 13 + ln]
        if ct == 22 and epoch == 0:
            rec.handshakes = _handshakes(frag)
        elif ct == 22:
            rec.handshakes = [Handshake("Finished", -1, ln, 0, ln)]
        elif ct == 21 and epoch == 0 and ln >= 2:
            level = "fatal" if frag[0] == 2 else "warning"
            rec.alert = (level, ALERTS.get(frag[1], str(frag[1])))
        elif ct == 21:
            rec.alert = ("encrypted", "encrypted")
        out.append(rec)
        off += 13 + ln
    return out


VERSIONS = {0xFEFF: "DTLS1.0", 0xFEFD: "DTLS1.2", 0xFEFC: "DTLS1.3", 0x0100: "DTLS1.0 (pre-RFC)"}


def _version(a: int, b: int) -> str:
    return VERSIONS.get(a << 8 | b) or f"{a:02x}{b:02x}"


def _handshakes(frag: bytes) -> list[Handshake]:
    out: list[Handshake] = []
    off = 0
    while off + 12 <= len(frag):
        ht = frag[off]
        length = int.from_bytes(frag[off + 1 : off + 4], "big")
        fo = int.from_bytes(frag[off + 6 : off + 9], "big")
        fl = int.from_bytes(frag[off + 9 : off + 12], "big")
        if off + 12 + fl > len(frag):  # overruns its record: not a handshake message
            break
        body = frag[off + 12 : off + 12 + fl]
        hs = Handshake(
            HANDSHAKE_TYPES.get(ht, str(ht)),
            frag[off + 4] << 8 | frag[off + 5],
            length,
            fo,
            fl,
            body,
        )
        if ht in (1, 2) and fo == 0 and fl == length:
            hs.extended_master_secret, hs.srtp_profiles = _hello_extensions(body, ht == 1)
        out.append(hs)
        off += 12 + fl
    return out


def _hello_extensions(b: bytes, client: bool) -> tuple[bool, list[str]]:
    """extended_master_secret and use_srtp's profiles in a complete Client/ServerHello."""
    ems, profiles = False, []
    try:
        off = 2 + 32
        off += 1 + b[off]  # session id
        if client:
            off += 1 + b[off]  # cookie
            off += 2 + (b[off] << 8 | b[off + 1])  # cipher suites
            off += 1 + b[off]  # compression methods
        else:
            off += 2 + 1  # cipher suite, compression
        end = off + 2 + (b[off] << 8 | b[off + 1])
        off += 2
        while off + 4 <= min(end, len(b)):
            et = b[off] << 8 | b[off + 1]
            el = b[off + 2] << 8 | b[off + 3]
            v = b[off + 4 : off + 4 + el]
            if et == EXT_EMS:
                ems = True
            elif et == EXT_USE_SRTP and len(v) >= 2:
                n = v[0] << 8 | v[1]
                profiles = [
                    SRTP_PROFILES.get(v[i] << 8 | v[i + 1], str(v[i] << 8 | v[i + 1]))
                    for i in range(2, min(2 + n, len(v)) - 1, 2)
                ]
            off += 4 + el
    except IndexError:
        pass
    return ems, profiles


#: what the session reads of one handshake message: type, fragment offset, the
#: ClientHello's random (a whole first fragment), extended_master_secret, first SRTP profile
HandshakeStep = tuple[str, int, bytes | None, bool, str | None]
#: what the session reads of one record: content type, alert, handshake messages
Step = tuple[int, tuple[str, str] | None, tuple[HandshakeStep, ...]]
#: a Certificate fragment: msg_seq, fragment offset, body
CertificateFragment = tuple[int, int, bytes]
#: a datagram as the analyser reads it: only ApplicationData?, a ServerHello with use_srtp?,
#: the steps (none when only ApplicationData), the Certificate fragments
Scan = tuple[bool, bool, tuple[Step, ...], tuple[CertificateFragment, ...]]


def steps(records: list[Record]) -> tuple[Step, ...]:
    """The records as the session reads them (`Scan`'s steps, from parsed records)."""
    return tuple(
        (
            _CONTENT_NUMBERS.get(r.content_type, 0),
            r.alert,
            tuple(
                (
                    hs.type,
                    hs.frag_offset,
                    hs.body[2:34]
                    if hs.type == "ClientHello" and hs.frag_offset == 0 and len(hs.body) >= 34
                    else None,
                    hs.extended_master_secret,
                    hs.srtp_profiles[0] if hs.srtp_profiles else None,
                )
                for hs in r.handshakes
            ),
        )
        for r in records
    )


def summarize(records: list[Record]) -> Scan | None:
    """`Scan` of parsed records (e.g. after the key log replaced their alerts)."""
    if not records:
        return None
    if all(r.content_type == "ApplicationData" for r in records):
        return (True, False, (), ())
    handshakes = [hs for r in records for hs in r.handshakes]
    return (
        False,
        any(hs.type == "ServerHello" and hs.srtp_profiles for hs in handshakes),
        steps(records),
        tuple(
            (hs.msg_seq, hs.frag_offset, hs.body) for hs in handshakes if hs.type == "Certificate"
        ),
    )


def scan_py(p: bytes) -> Scan | None:
    """What the analyser and the session need of a datagram; None when no record parses.

    summarize(parse(p)) without the objects: the rules are parse's and _handshakes'.
    """
    records, off, only_data = [], 0, True
    while off + 13 <= len(p):
        ct, ln = p[off], p[off + 11] << 8 | p[off + 12]
        if not 20 <= ct <= 25 or off + 13 + ln > len(p):
            break
        records.append((ct, off + 13, ln, p[off + 3] << 8 | p[off + 4]))
        only_data = only_data and ct == 23
        off += 13 + ln
    if not records:
        return None
    if only_data:
        return (True, False, (), ())
    out: list[Step] = []
    certificates: list[CertificateFragment] = []
    srtp = False
    for ct, start, ln, epoch in records:
        alert: tuple[str, str] | None = None
        hss: tuple[HandshakeStep, ...] = ()
        if ct == 22 and epoch == 0:
            hss, offered = _handshake_steps(p[start : start + ln], certificates)
            srtp = srtp or offered
        elif ct == 22:
            hss = _ENCRYPTED_FINISHED
        elif ct == 21 and epoch == 0 and ln >= 2:
            alert = (
                "fatal" if p[start] == 2 else "warning",
                ALERTS.get(p[start + 1], str(p[start + 1])),
            )
        elif ct == 21:
            alert = ("encrypted", "encrypted")
        out.append((ct, alert, hss))
    return (False, srtp, tuple(out), tuple(certificates))


_ENCRYPTED_FINISHED: tuple[HandshakeStep, ...] = (("Finished", 0, None, False, None),)


def _handshake_steps(
    frag: bytes, certificates: list[CertificateFragment]
) -> tuple[tuple[HandshakeStep, ...], bool]:
    """scan_py's _handshakes: the steps, and whether a ServerHello offers use_srtp."""
    out: list[HandshakeStep] = []
    off, srtp = 0, False
    while off + 12 <= len(frag):
        ht = frag[off]
        length = int.from_bytes(frag[off + 1 : off + 4], "big")
        fo = int.from_bytes(frag[off + 6 : off + 9], "big")
        fl = int.from_bytes(frag[off + 9 : off + 12], "big")
        if off + 12 + fl > len(frag):
            break
        ems, profile, random = False, None, None
        if ht == 1 or ht == 2 or ht == 11:
            body = frag[off + 12 : off + 12 + fl]
            if ht == 11:
                certificates.append((frag[off + 4] << 8 | frag[off + 5], fo, body))
            elif fo == 0:
                if fl == length:
                    ems, profiles = _hello_extensions(body, ht == 1)
                    profile = profiles[0] if profiles else None
                    srtp = srtp or (ht == 2 and bool(profiles))
                if ht == 1 and fl >= 34:
                    random = body[2:34]
        out.append((HANDSHAKE_TYPES.get(ht, str(ht)), fo, random, ems, profile))
        off += 12 + fl
    return tuple(out), srtp


_CONTENT_NUMBERS = {name: n for n, name in CONTENT_TYPES.items()} | {"24": 24, "25": 25}

#: the compiled scan when built, else scan_py (tests hold both to summarize(parse(p)))
scan = scan_py
if _dtlsscan is not None:
    _dtlsscan.setup(
        tuple(HANDSHAKE_TYPES.get(i, str(i)) for i in range(256)),
        tuple(ALERTS.get(i, str(i)) for i in range(256)),
        SRTP_PROFILES,
    )
    scan = _dtlsscan.scan


class CertificateAssembler:
    """Joins Certificate fragments and yields the SHA-256 fingerprint of the leaf."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[int, bytes]] = {}

    def add(self, hs: Handshake) -> str | None:
        """Add a fragment; return 'AA:BB:...' once the leaf certificate is complete."""
        return self.add_fragment(hs.msg_seq, hs.frag_offset, hs.body)

    def add_fragment(self, msg_seq: int, frag_offset: int, body: bytes) -> str | None:
        """`add` of a `CertificateFragment`."""
        if frag_offset == 0:  # the usual case: the leaf is all in here
            fp = _LEAVES.get(body) or _whole_leaf(body)
            if fp is not None:
                self._parts.pop(msg_seq, None)
                return fp
        parts = self._parts.setdefault(msg_seq, {})
        if len(body) >= len(parts.get(frag_offset, b"")):  # a shorter resend adds nothing
            parts[frag_offset] = body
        # Joined by the bytes they cover: a flight sent again may be cut at other offsets
        # (a smaller MTU after a timeout, RFC 9147 4.4), its fragments overlapping the first.
        joined, pos = bytearray(), 0
        for off in sorted(parts):
            if off > pos:
                break  # a hole
            part = parts[off]
            if off + len(part) > pos:
                joined += part[pos - off :]
                pos = off + len(part)
        if len(joined) < 6:
            return None
        leaf_len = int.from_bytes(joined[3:6], "big")
        if len(joined) < 6 + leaf_len:
            return None
        del self._parts[msg_seq]
        return sha256_fingerprint(bytes(joined[6 : 6 + leaf_len]))


#: the fingerprint of the leaf by the first Certificate fragment that holds all of it: a
#: flight is resent whole until answered (and the scan hands every copy the same bytes),
#: so each leaf is hashed once; forgotten all at once past its limit (many handshakes)
_LEAVES: Bounded[bytes, str] = Bounded(1024)


def _whole_leaf(body: bytes) -> str | None:
    """The leaf's fingerprint when this first fragment holds all of it (kept in _LEAVES)."""
    if len(body) < 6:
        return None
    leaf_len = int.from_bytes(body[3:6], "big")
    if len(body) < 6 + leaf_len:
        return None
    return _LEAVES.keep(body, sha256_fingerprint(body[6 : 6 + leaf_len]))


def sha256_fingerprint(der: bytes) -> str:
    """'sha-256' fingerprint as SDP writes it (RFC 8122), upper-case hex pairs."""
    return hashlib.sha256(der).digest().hex(":").upper()
