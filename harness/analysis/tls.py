"""TLS over TCP in a capture: per connection, the handshake messages and alerts each side
sent, and whether application data flowed (RFC 5246 6.2, RFC 8446 5).

Each direction's TCP payload is joined in sequence order (the lab has no loss to
repair) and walked record by record. Alerts are read when in clear (TLS 1.2, or
before the keys change); later ones count as encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis import net
from harness.analysis.ipfrag import Reassembler
from harness.analysis.pcapio import ReadStats, read_frames

HANDSHAKES = {
    1: "ClientHello",
    4: "NewSessionTicket",
    2: "ServerHello",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    16: "ClientKeyExchange",
    20: "Finished",
}
ALERTS = {
    0: "close_notify",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    48: "unknown_ca",
    70: "protocol_version",
    80: "internal_error",
}


@dataclass
class Side:
    handshakes: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    ccs: bool = False
    app_records: int = 0


@dataclass
class TlsConnection:
    client: str
    server: str
    first_frame: int
    t: float
    c: Side = field(default_factory=Side)
    s: Side = field(default_factory=Side)

    @property
    def established(self) -> bool:
        """Both sides changed cipher and neither refused in clear (an encrypted alert after
        that is the close_notify of a finished connection)."""
        clear = [a for a in self.c.alerts + self.s.alerts if a != "encrypted"]
        return self.c.ccs and self.s.ccs and not clear


def _walk(data: bytes, side: Side) -> None:
    off = 0
    while off + 5 <= len(data):
        ctype, length = data[off], int.from_bytes(data[off + 3 : off + 5], "big")
        body = data[off + 5 : off + 5 + length]
        if ctype not in (20, 21, 22, 23) or data[off + 1] != 3:
            return  # not TLS (or lost sync)
        if ctype == 20:
            side.ccs = True
        elif ctype == 21:
            clear = len(body) == 2 and not side.ccs
            side.alerts.append(ALERTS.get(body[1], str(body[1])) if clear else "encrypted")
        elif ctype == 22 and not side.ccs:
            i = 0
            while i + 4 <= len(body):
                side.handshakes.append(HANDSHAKES.get(body[i], str(body[i])))
                i += 4 + int.from_bytes(body[i + 1 : i + 4], "big")
        elif ctype == 23:
            side.app_records += 1
        off += 5 + length


def read_connections(path: Path, port: int) -> list[TlsConnection]:
    """TLS connections to TCP `port` in `path`, in order of their first packet."""
    streams: dict[bytes, dict[int, bytes]] = {}
    first: dict[bytes, tuple[int, float]] = {}
    start = None
    fragments = Reassembler()  # a datagram is read at its last fragment
    for no, t, link, frame in read_frames(path.read_bytes(), ReadStats()):
        start = t if start is None else start
        seg = net.reassembled(net.decode(link, frame), t, fragments)
        if seg is None or isinstance(seg, str) or seg[0] != net.TCP:
            continue
        _, key, payload, seq, _ = seg
        s, sp, d, dp = net.endpoints(key)
        if port not in (sp, dp):
            continue
        first.setdefault(key if dp == port else net.reverse(key), (no, t - start))
        if payload:
            streams.setdefault(key, {}).setdefault(seq, payload)
    out = []
    for key, (no, t) in sorted(first.items(), key=lambda kv: kv[1][0]):
        s, sp, d, dp = net.endpoints(key)
        conn = TlsConnection(f"{s}:{sp}", f"{d}:{dp}", no, t)
        for k, side in ((key, conn.c), (net.reverse(key), conn.s)):
            segs = streams.get(k, {})
            _walk(b"".join(segs[x] for x in sorted(segs)), side)
        out.append(conn)
    return out
