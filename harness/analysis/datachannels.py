"""Data channels in the walk: DTLS plaintext -> SCTP -> DCEP and messages, with a key log.

A mixin of `Analyzer` (like tcpstreams.py and turnrelay.py): each DTLS datagram
of an association, direct or relayed inside TURN, is decrypted (dtlsdecrypt.py),
its SCTP packet read (sctp.py), DATA chunks joined per direction, and every whole
message becomes a `DataChannelEvent` named by the channel's label from its
DATA_CHANNEL_OPEN (dcep.py). Counters in `Analysis.decrypted` are what the
tests compare with tshark.

DTLS carries more than WebRTC's SCTP (CoAP, VPN tunnels, a test program's text): a
plaintext that is no SCTP packet is malformed SCTP only in an association that carried
SCTP; in one that never did, it is another protocol's application data
(`decrypted["application-data-not-sctp"]`), which no check reads as a fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.analysis import dtls
from harness.analysis.model import Analysis, DataChannelEvent, Flow, fmt_addr
from harness.analysis.net import reverse
from harness.analysis.turnrelay import RELAYED

if TYPE_CHECKING:  # decryption, SCTP and DCEP load with a key log only (never needed without)
    from harness.analysis import sctp
    from harness.analysis.dtlsdecrypt import DtlsAssociation

#: datagrams of an association without a captured handshake tried against the others
ADOPT_TRIES = 8


def back_key(key: bytes) -> bytes:
    """The flow key of the other direction (relayed ones keep their marker)."""
    return reverse(key[:-1]) + RELAYED if key.endswith(RELAYED) else reverse(key)


def association_key(key: bytes) -> bytes:
    """One key for both directions of a 5-tuple."""
    return min(key, back_key(key))


@dataclass
class NotSctp:
    """Plaintexts that were no SCTP packet, held per association until it shows whether it
    carries SCTP: malformed SCTP if it does, another protocol's data if it never does."""

    held: dict[bytes, int] = field(default_factory=dict)  # association -> count; -1: SCTP

    def other(self, akey: bytes) -> int:
        """A plaintext of `akey` that is no SCTP packet: 1 if it is malformed SCTP now."""
        n = self.held.get(akey, 0)
        if n < 0:
            return 1
        self.held[akey] = n + 1
        return 0

    def sctp(self, akey: bytes) -> int:
        """An SCTP packet of `akey`: how many plaintexts held for it were malformed SCTP."""
        n = self.held.get(akey, 0)
        self.held[akey] = -1
        return max(n, 0)

    def others(self) -> int:
        """Once the walk is over: the plaintexts of associations that never carried SCTP."""
        return sum(n for n in self.held.values() if n > 0)


class DataChannels:
    """Mixin of `Analyzer`: the decrypted side of DTLS."""

    a: Analysis
    keylog: dict[tuple[str, bytes], bytes]
    associations: dict[bytes, DtlsAssociation]
    sctp_in: dict[bytes, sctp.Reassembler]  # direction key -> its DATA reassembly
    labels: dict[tuple[bytes, int], tuple[str, str]]  # (association, stream) -> label, protocol
    not_sctp: NotSctp

    def _dtls_payload(
        self, flow: Flow, key: bytes, p: bytes, t: float, no: int
    ) -> list[tuple[str, str]]:
        """Decrypt one DTLS datagram of direction `key` and read what it carries; its
        alerts, decrypted, as (level, description) for the handshake's record."""
        from harness.analysis import sctp

        akey = association_key(key)
        assoc = self.associations.get(akey)
        if assoc is None:
            from harness.analysis.dtlsdecrypt import DtlsAssociation

            assoc = self.associations[akey] = DtlsAssociation(self.keylog)
        if not assoc.server_random and assoc.adopt_tries < ADOPT_TRIES:
            others = [o for o in self.associations.values() if o.server_random]
            if others and not assoc.adopt(others, key, back_key(key), p):
                assoc.adopt_tries += 1
        for plain in assoc.plaintexts(key, p):
            pkt = sctp.parse(plain)
            malformed = self.not_sctp.other(akey) if pkt is None else self.not_sctp.sctp(akey)
            if malformed:
                self.a.malformed["sctp"] += malformed
            if pkt is None:
                continue
            self.a.decrypted["sctp-packets"] += 1
            for chunk in pkt.chunks:
                self.a.decrypted[f"sctp-{chunk.name}"] += 1
                d = sctp.data(chunk)
                if d is None:
                    if chunk.type in (0, 64):
                        self.a.malformed["sctp-data"] += 1
                    continue
                reasm = self.sctp_in.get(key)
                if reasm is None:
                    reasm = self.sctp_in[key] = sctp.Reassembler()
                whole = reasm.add(d)
                if whole is not None:
                    self._channel_message(flow, akey, whole[0], whole[1], t, no)
        return [
            ("fatal" if a[0] == 2 else "warning", dtls.ALERTS.get(a[1], str(a[1])))
            for a in assoc.alerts
            if len(a) >= 2
        ]

    def _channel_message(
        self, flow: Flow, akey: bytes, d: sctp.Data, payload: bytes, t: float, no: int
    ) -> None:
        from harness.analysis import dcep

        label, protocol = self.labels.get((akey, d.stream), ("", ""))
        kind, text = dcep.kind(d.ppid), dcep.excerpt(d.ppid, payload)
        if d.ppid == dcep.PPID_DCEP:
            msg = dcep.parse(payload)
            if isinstance(msg, dcep.Open):
                label, protocol, kind = msg.label, msg.protocol, "open"
                self.labels[(akey, d.stream)] = (label, protocol)
                text = f"{msg.channel_type} priority {msg.priority}"
            elif msg == "ack":
                kind, text = "ack", ""
            else:
                self.a.malformed["dcep"] += 1
                kind = "dcep-unknown"
        self.a.decrypted[f"messages-{kind}"] += 1
        ends = sorted((fmt_addr(flow.src), fmt_addr(flow.dst)))
        assoc = " <-> ".join(ends) + (" (relayed by TURN)" if flow.via else "")
        self.a.datachannel.append(
            DataChannelEvent(
                no, t, flow.src, flow.dst, flow.label, bool(flow.via),
                assoc, d.stream, kind, len(payload), label, protocol, text,
            )
        )  # fmt: skip

    def _datachannels_done(self) -> None:
        """Per-association counters and problems, once the walk is over."""
        for assoc in self.associations.values():
            self.a.decrypted["dtls-records"] += assoc.decrypted
            if assoc.failed:
                self.a.decrypted["dtls-records-failed"] += assoc.failed
            if assoc.problem:
                self.a.skipped[f"dtls: {assoc.problem}"] += 1
        if others := self.not_sctp.others():
            self.a.decrypted["application-data-not-sctp"] += others
        for reasm in self.sctp_in.values():
            if reasm.duplicates:
                self.a.decrypted["sctp-data-repeated"] += reasm.duplicates
            if reasm.dropped:
                self.a.skipped["sctp-fragments-dropped"] += reasm.dropped
