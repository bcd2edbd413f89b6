"""RFC 4733 telephone-events (DTMF) in a capture's RTP.

Each event is a run of packets with the same RTP timestamp (RFC 4733 2.5); the last
ones carry the E bit. The payload type comes from the SDPs on the same capture
(`a=rtpmap:N telephone-event/...`). Over SRTP only the header is in clear: the events
are counted by timestamp, their digits cannot be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.analysis import net
from harness.analysis.ipfrag import Reassembler
from harness.analysis.pcapio import ReadStats, read_frames

DIGITS = "0123456789*#ABCD"
RTPMAP = re.compile(r"^a=rtpmap:(\d+) telephone-event/", re.M)


@dataclass
class ToneEvent:
    """One telephone-event as sent on one 5-tuple."""

    src: str
    dst: str
    pt: int
    timestamp: int
    first_frame: int
    t: float
    packets: int = 0
    code: int | None = None
    """The event code (0-15 = DTMF), None when the payload is encrypted."""
    end: bool = False
    duration: int = 0
    """Longest duration field seen, in RTP clock units."""

    @property
    def digit(self) -> str:
        return DIGITS[self.code] if self.code is not None and self.code < 16 else "?"


def telephone_event_pts(sdps: list[str]) -> set[int]:
    return {int(m.group(1)) for text in sdps for m in RTPMAP.finditer(text)}


def read_events(path: Path, pts: set[int], encrypted: bool = False) -> list[ToneEvent]:
    """Every telephone-event of payload types `pts` in `path`, in order of first packet."""
    events: dict[tuple[bytes, int], ToneEvent] = {}
    start = None
    fragments = Reassembler()  # a datagram is read at its last fragment
    for no, t, link, frame in read_frames(path.read_bytes(), ReadStats()):
        start = t if start is None else start
        seg = net.reassembled(net.decode(link, frame), t, fragments)
        if seg is None or isinstance(seg, str) or seg[0] != net.UDP:
            continue
        _, key, p, _, _ = seg
        if len(p) < 16 or p[0] >> 6 != 2 or (p[1] & 0x7F) not in pts:
            continue
        ts = int.from_bytes(p[4:8], "big")
        ev = events.get((key, ts))
        if ev is None:
            s, sp, d, dp = net.endpoints(key)
            ev = events[(key, ts)] = ToneEvent(
                f"{s}:{sp}", f"{d}:{dp}", p[1] & 0x7F, ts, no, t - start
            )
        ev.packets += 1
        if encrypted:
            continue
        off = 12 + 4 * (p[0] & 0x0F)
        if p[0] & 0x10 and len(p) >= off + 4:  # header extension
            off += 4 + 4 * int.from_bytes(p[off + 2 : off + 4], "big")
        if len(p) < off + 4:
            continue
        ev.code = p[off]
        ev.end = ev.end or bool(p[off + 1] & 0x80)
        ev.duration = max(ev.duration, int.from_bytes(p[off + 2 : off + 4], "big"))
    return sorted(events.values(), key=lambda e: e.first_frame)
