"""IPv4 and IPv6 fragment reassembly (RFC 791, RFC 8200 section 4.5), bounded.

A SIP INVITE with a WebRTC SDP over UDP is larger than the MTU: without
reassembly it vanishes from the dialog. Fragments are held per (addresses,
protocol, identification) until the datagram is whole; memory is bounded by the
number of datagrams in progress and their size, and an unfinished datagram is
dropped (and counted) once it is older than `TIMEOUT` seconds of capture time,
as a receiving host would (RFC 791's reassembly timer, Linux's 30 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TIMEOUT = 30.0
MAX_PENDING = 256
MAX_DATAGRAM = 65535

#: (source and destination addresses, protocol, identification)
FragKey = tuple[bytes, int, int]


@dataclass
class Fragment:
    """One fragment as the IP layer gives it: where its payload goes in the datagram."""

    key: FragKey
    offset: int  # in bytes
    more: bool
    payload: bytes


@dataclass
class _Datagram:
    """The fragments of one datagram so far, by offset, and when its first came."""

    first_t: float
    parts: dict[int, bytes] = field(default_factory=dict)
    end: int | None = None  # total length, once the last fragment arrived
    size: int = 0


class Reassembler:
    """Joins fragments into whole transport payloads; counts what it had to drop."""

    def __init__(self) -> None:
        self.pending: dict[FragKey, _Datagram] = {}
        self.dropped: dict[str, int] = {}

    def feed(self, frag: Fragment, t: float) -> bytes | None:
        """Add a fragment seen at capture time `t`; the whole payload once complete."""
        self._expire(t)
        if frag.offset + len(frag.payload) > MAX_DATAGRAM:
            self._drop("too-large")
            return None
        d = self.pending.get(frag.key)
        if d is None:
            if len(self.pending) >= MAX_PENDING:
                self._drop("too-many-pending")
                oldest = min(self.pending, key=lambda k: self.pending[k].first_t)
                del self.pending[oldest]
            d = self.pending[frag.key] = _Datagram(t)
        if frag.offset not in d.parts:  # a retransmitted fragment keeps the first copy
            d.parts[frag.offset] = frag.payload
            d.size += len(frag.payload)
        if not frag.more:
            d.end = frag.offset + len(frag.payload)
        if d.end is None or d.size < d.end:
            return None
        out, pos = bytearray(), 0
        for off in sorted(d.parts):
            part = d.parts[off]
            if off > pos:
                return None  # a hole: overlapping fragments inflated `size`; wait for more
            out += part[pos - off :]
            pos = max(pos, off + len(part))
        del self.pending[frag.key]
        return bytes(out[: d.end])

    def finish(self) -> None:
        """End of capture: whatever is still pending never completed."""
        for _ in self.pending:
            self._drop("incomplete")
        self.pending.clear()

    def _expire(self, t: float) -> None:
        if not self.pending:
            return
        old = [k for k, d in self.pending.items() if t - d.first_t > TIMEOUT]
        for k in old:
            del self.pending[k]
            self._drop("timeout")

    def _drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1
