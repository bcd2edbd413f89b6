"""Simple TCP reassembly: in-order bytes per direction, enough for SIP and HTTP.

Retransmissions and overlaps are trimmed, out-of-order segments wait (bounded);
a hole that never fills is skipped once too much is pending, and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.analysis.model import Flow

SYN = 0x02
MAX_PENDING = 64


class TcpDirection:
    """One direction of a TCP connection: `buf` holds unread in-order bytes."""

    __slots__ = ("next_seq", "pending", "buf", "holes", "mode", "inner", "head", "flow")

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, bytes] = {}
        self.buf = bytearray()
        self.holes = 0
        self.mode = "detect"
        self.inner: TcpDirection | None = None  # the plaintext inside TLS, when decrypted
        self.head: object = None  # the HTTP parser's state between segments (http.read_http)
        #: the analyser's flow of this direction, set with it (one lookup per segment, not two)
        self.flow: Flow = None  # type: ignore[assignment]

    def feed(self, seq: int, flags: int, payload: bytes) -> bool:
        """Add a segment; True when new in-order bytes were appended to `buf`."""
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
                self.pending[seq] = payload
            if len(self.pending) <= MAX_PENDING:
                return False
            self.holes += 1
            self.next_seq = min(self.pending, key=lambda s: (s - self.next_seq) & 0xFFFFFFFF)
            payload = self.pending.pop(self.next_seq)
        self._append(payload)
        self._drain()
        return True

    def _append(self, payload: bytes) -> None:
        self.buf += payload
        self.next_seq = (self.next_seq + len(payload)) & 0xFFFFFFFF  # type: ignore[operator]

    def _drain(self) -> None:
        """Append the waiting segments that now start at or before `next_seq`, each trimmed
        to its new bytes: a retransmission cut at other places (joined or split segments)
        may end inside a waiting segment, which then only continues the stream."""
        pending = self.pending
        while pending:
            if self.next_seq in pending:  # the usual case: the next one exactly
                self._append(pending.pop(self.next_seq))
                continue
            reached = [s for s in pending if (s - self.next_seq) & 0xFFFFFFFF >= 0x80000000]
            if not reached:
                return
            for s in reached:
                payload = pending.pop(s)
                skip = (self.next_seq - s) & 0xFFFFFFFF
                if skip < len(payload):
                    self._append(payload[skip:])
