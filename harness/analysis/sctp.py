"""SCTP packets inside DTLS (RFC 4960 common header and chunks, RFC 8261 encapsulation).

WebRTC data channels send user messages as SCTP DATA chunks; a message larger
than the path MTU is split over several chunks with consecutive TSNs, the first
flagged B, the last E (RFC 4960 6.9). `Reassembler` joins them per direction,
drops retransmitted TSNs (SCTP retransmits unacknowledged chunks as they were),
and holds a bounded number of fragments so a damaged or hostile capture cannot
grow memory without limit. The CRC32c checksum is not verified: DTLS already
authenticated the bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

CHUNK_TYPES = {
    0: "DATA",
    1: "INIT",
    2: "INIT_ACK",
    3: "SACK",
    4: "HEARTBEAT",
    5: "HEARTBEAT_ACK",
    6: "ABORT",
    7: "SHUTDOWN",
    8: "SHUTDOWN_ACK",
    9: "ERROR",
    10: "COOKIE_ECHO",
    11: "COOKIE_ACK",
    14: "SHUTDOWN_COMPLETE",
    64: "I_DATA",
    128: "ASCONF_ACK",
    130: "RE_CONFIG",
    192: "FORWARD_TSN",
    193: "ASCONF",
}
#: fragments held per direction before the oldest are dropped
MAX_FRAGMENTS = 1024
#: bytes held per direction before the oldest fragments are dropped
MAX_HELD_BYTES = 4 << 20
#: TSNs remembered per direction to recognise retransmissions
MAX_SEEN = 8192


@dataclass(frozen=True)
class Chunk:
    """One chunk; DATA chunks have their fields decoded."""

    type: int
    flags: int
    value: bytes

    @property
    def name(self) -> str:
        return CHUNK_TYPES.get(self.type, str(self.type))


@dataclass(frozen=True)
class Data:
    """A DATA chunk (RFC 4960 3.3.1), or an I-DATA chunk (RFC 8260 2.1: `mid` set).

    I-DATA numbers a message's fragments (FSN) inside its message ID instead of
    relying on consecutive TSNs, so messages of several streams can interleave
    (Firefox enables it, usrsctp's "ndata"); its PPID is only in the first fragment.
    """

    tsn: int
    stream: int
    ssn: int
    ppid: int
    unordered: bool
    begin: bool
    end: bool
    payload: bytes
    mid: int | None = None
    fsn: int = 0


@dataclass(frozen=True)
class Packet:
    src_port: int
    dst_port: int
    vtag: int
    chunks: list[Chunk]


def parse(p: bytes) -> Packet | None:
    """An SCTP packet, or None when the common header or a chunk length is impossible."""
    if len(p) < 12:
        return None
    chunks: list[Chunk] = []
    off = 12
    while off + 4 <= len(p):
        n = p[off + 2] << 8 | p[off + 3]
        if n < 4 or off + n > len(p):
            return None
        chunks.append(Chunk(p[off], p[off + 1], p[off + 4 : off + n]))
        off += (n + 3) & ~3  # chunks are padded to 4 bytes
    if not chunks:
        return None
    return Packet(p[0] << 8 | p[1], p[2] << 8 | p[3], int.from_bytes(p[4:8], "big"), chunks)


def data(c: Chunk) -> Data | None:
    """The fields of a DATA or I-DATA chunk, or None if it is too short to have them."""
    v = c.value
    if c.type == 64 and len(v) >= 16:
        word = int.from_bytes(v[12:16], "big")  # PPID in the first fragment, else FSN
        first = bool(c.flags & 2)
        return Data(
            int.from_bytes(v[0:4], "big"), v[4] << 8 | v[5], 0, word if first else 0,
            bool(c.flags & 4), first, bool(c.flags & 1), v[16:],
            int.from_bytes(v[8:12], "big"), 0 if first else word,
        )  # fmt: skip
    if c.type != 0 or len(v) < 12:
        return None
    return Data(
        int.from_bytes(v[0:4], "big"),
        v[4] << 8 | v[5],
        v[6] << 8 | v[7],
        int.from_bytes(v[8:12], "big"),
        bool(c.flags & 4),
        bool(c.flags & 2),
        bool(c.flags & 1),
        v[12:],
    )


class Reassembler:
    """Whole user messages of one direction from its DATA chunks."""

    def __init__(self) -> None:
        self.held: OrderedDict[int, Data] = OrderedDict()  # TSN -> fragment
        #: I-DATA: (stream, unordered, message ID) -> FSN -> fragment
        self.messages: OrderedDict[tuple[int, bool, int], dict[int, Data]] = OrderedDict()
        self.held_bytes = 0
        self.seen: OrderedDict[int, None] = OrderedDict()
        self.duplicates = 0  # retransmissions, or one chunk seen on both legs of a relay
        self.dropped = 0

    def add(self, d: Data) -> tuple[Data, bytes] | None:
        """Feed one DATA chunk; (first chunk, whole message) once a message is complete."""
        if d.tsn in self.seen:
            self.duplicates += 1
            return None
        self.seen[d.tsn] = None
        if len(self.seen) > MAX_SEEN:
            self.seen.popitem(last=False)
        if d.begin and d.end:
            return d, d.payload
        if d.mid is not None:
            whole = self._complete_idata(d)
        else:
            self.held[d.tsn] = d
            self.held_bytes += len(d.payload)
            whole = self._complete(d)
        while self._fragments() > MAX_FRAGMENTS or self.held_bytes > MAX_HELD_BYTES:
            self._drop_oldest()
        return whole

    def _fragments(self) -> int:
        return len(self.held) + sum(len(m) for m in self.messages.values())

    def _drop_oldest(self) -> None:
        if self.held:
            _, old = self.held.popitem(last=False)
            self.held_bytes -= len(old.payload)
            self.dropped += 1
            return
        _, parts = self.messages.popitem(last=False)
        self.held_bytes -= sum(len(p.payload) for p in parts.values())
        self.dropped += len(parts)

    def _complete_idata(self, d: Data) -> tuple[Data, bytes] | None:
        """I-DATA: the message is whole when FSN 0 (B) up to the E fragment's FSN are held."""
        key = (d.stream, d.unordered, d.mid or 0)
        parts = self.messages.setdefault(key, {})
        if d.fsn in parts:
            return None
        parts[d.fsn] = d
        self.held_bytes += len(d.payload)
        last = next((p.fsn for p in parts.values() if p.end), None)
        if last is None or len(parts) < last + 1 or 0 not in parts or not parts[0].begin:
            return None
        if not all(i in parts for i in range(last + 1)):  # bounded: last < len(parts)
            return None
        del self.messages[key]
        ordered = [parts[i] for i in range(last + 1)]
        self.held_bytes -= sum(len(p.payload) for p in parts.values())
        return ordered[0], b"".join(p.payload for p in ordered)

    def _complete(self, d: Data) -> tuple[Data, bytes] | None:
        """The message around `d` if every fragment from B to E is held (TSNs wrap at 2^32)."""
        first = d
        while not first.begin:
            prev = self.held.get((first.tsn - 1) & 0xFFFFFFFF)
            if prev is None or prev.stream != d.stream or prev.end:
                return None
            first = prev
        parts = [first]
        while not parts[-1].end:
            nxt = self.held.get((parts[-1].tsn + 1) & 0xFFFFFFFF)
            if nxt is None or nxt.stream != d.stream or nxt.begin:
                return None
            parts.append(nxt)
        for part in parts:
            del self.held[part.tsn]
            self.held_bytes -= len(part.payload)
        return first, b"".join(part.payload for part in parts)
