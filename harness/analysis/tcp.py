"""Simple TCP reassembly: in-order bytes per direction, enough for SIP and HTTP.

Retransmissions and overlaps are trimmed, out-of-order segments wait with their frame;
the reader (tcpstreams.TcpStreams._skip_hole) gives a hole up once MAX_PENDING segments
wait behind it or the capture ends, and counts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.analysis.model import Flow

SYN = 0x02
MAX_PENDING = 64


class TcpDirection:
    """One direction of a TCP connection: `buf` holds unread in-order bytes."""

    __slots__ = (
        "next_seq", "pending", "when", "buf", "gap", "opened", "mode", "inner", "head",
        "flow", "scanned",
    )  # fmt: skip

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, bytes] = {}
        #: (capture time, frame) of each waiting segment, by sequence number as `pending`
        self.when: dict[int, tuple[float, int]] = {}
        self.buf = bytearray()
        self.gap = 0  # bytes the last hole given up left out (TLS finds its place by them)
        #: the capture saw its first byte (a SYN, or the start of TLS plaintext): it starts
        #: with a message; False when joined mid-connection or after a hole given up
        self.opened = False
        self.mode = "detect"
        #: bytes of `buf` searched for a first start line already (framing.sync_text)
        self.scanned = 0
        self.inner: TcpDirection | None = None  # the plaintext inside TLS, when decrypted
        self.head: object = None  # the HTTP parser's state between segments (http.read_http)
        #: the analyser's flow of this direction, set with it (one lookup per segment, not two)
        self.flow: Flow = None  # type: ignore[assignment]

    def feed(self, seq: int, flags: int, payload: bytes, at: tuple[float, int] = (0.0, 0)) -> bool:
        """Add a segment seen `at` (time, frame); True when new in-order bytes were appended
        to `buf`. Segments after a hole wait in `pending`; once more than MAX_PENDING do,
        the reader gives the hole up (`skip_hole`, then `take` one by one)."""
        if flags & SYN:
            self.next_seq = (seq + 1) & 0xFFFFFFFF
            return False
        if not payload:
            return False
        if seq == self.next_seq and not self.pending:  # the usual case: the next bytes
            self.buf += payload
            self.next_seq = (seq + len(payload)) & 0xFFFFFFFF
            return True
        if self.next_seq is None:
            self.next_seq = seq
        rel = (seq - self.next_seq) & 0xFFFFFFFF
        if rel >= 0x80000000:  # starts before what we have: keep only the new tail
            skip = 0x100000000 - rel
            if skip >= len(payload):
                return False
            payload, seq, rel = payload[skip:], self.next_seq, 0
        if rel:
            if len(payload) > len(self.pending.get(seq, b"")):  # a longer resend keeps more
                self.pending[seq], self.when[seq] = payload, at
            return False
        self._append(payload)
        while self.take() is not None:  # what waited for this one: complete at this frame
            pass
        return True

    def skip_hole(self) -> tuple[float, int]:
        """Give up the bytes missing before the nearest waiting segment and append it (too
        many wait behind the hole, or the capture ended); its (time, frame)."""
        nearest = min(self.pending, key=lambda s: (s - self.next_seq) & 0xFFFFFFFF)  # type: ignore[operator]
        self.gap = (nearest - self.next_seq) & 0xFFFFFFFF  # type: ignore[operator]
        self.next_seq = nearest
        self._append(self.pending.pop(nearest))
        return self.when.pop(nearest, (0.0, 0))

    def take(self) -> tuple[float, int] | None:
        """Append the waiting segment that continues `buf`, trimmed to its new bytes (a
        resend cut at other places may end inside a waiting segment); its (time, frame),
        or None when none continues it."""
        pending = self.pending
        while pending:
            s = self.next_seq
            assert s is not None  # set before any segment waits
            if s not in pending:  # one that starts before `next_seq` and reaches past it
                s = next((x for x in pending if (x - s) & 0xFFFFFFFF >= 0x80000000), None)
                if s is None:
                    return None
            payload, at = pending.pop(s), self.when.pop(s, (0.0, 0))
            skip = (self.next_seq - s) & 0xFFFFFFFF  # type: ignore[operator]
            if skip < len(payload):
                self._append(payload[skip:] if skip else payload)
                return at
        return None

    def _append(self, payload: bytes) -> None:
        self.buf += payload
        self.next_seq = (self.next_seq + len(payload)) & 0xFFFFFFFF  # type: ignore[operator]
