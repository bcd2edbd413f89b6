"""The WebRTC data channel layer: DCEP (RFC 8832) and the payload protocol identifiers (RFC 8831).

A channel is an SCTP stream pair; its label and sub-protocol travel once, in the
DATA_CHANNEL_OPEN on the opener's stream (PPID 50), which the other side
acknowledges. User messages then carry their type in the PPID: UTF-8 string (51)
or binary (53), and the "empty" variants (56, 57) that stand for zero-length
messages SCTP cannot send.
"""

from __future__ import annotations

from dataclasses import dataclass

PPID_DCEP = 50
PPIDS = {
    50: "dcep",
    51: "string",
    52: "string-partial",  # deprecated (RFC 8831 8)
    53: "binary",
    54: "binary-partial",  # deprecated
    56: "empty-string",
    57: "empty-binary",
}
OPEN, ACK = 0x03, 0x02
CHANNEL_TYPES = {
    0x00: "reliable",
    0x80: "reliable-unordered",
    0x01: "partial-reliable-rexmit",
    0x81: "partial-reliable-rexmit-unordered",
    0x02: "partial-reliable-timed",
    0x82: "partial-reliable-timed-unordered",
}
#: bytes of a message's payload kept as its excerpt
EXCERPT = 200


@dataclass(frozen=True)
class Open:
    """DATA_CHANNEL_OPEN (RFC 8832 5.1)."""

    channel_type: str
    priority: int
    reliability: int
    label: str
    protocol: str


def parse(p: bytes) -> Open | str | None:
    """A DCEP message: an `Open`, "ack", or None if it is neither or is cut short."""
    if p[:1] == bytes([ACK]):
        return "ack"
    if len(p) < 12 or p[0] != OPEN:
        return None
    label_len, proto_len = p[8] << 8 | p[9], p[10] << 8 | p[11]
    if 12 + label_len + proto_len > len(p):
        return None
    return Open(
        CHANNEL_TYPES.get(p[1], f"0x{p[1]:02x}"),
        p[2] << 8 | p[3],
        int.from_bytes(p[4:8], "big"),
        p[12 : 12 + label_len].decode("utf-8", "replace"),
        p[12 + label_len : 12 + label_len + proto_len].decode("utf-8", "replace"),
    )


def kind(ppid: int) -> str:
    return PPIDS.get(ppid, f"ppid-{ppid}")


def excerpt(ppid: int, payload: bytes) -> str:
    """Text messages as text, binary ones as hex, both cut to `EXCERPT` bytes."""
    if ppid in (56, 57):
        return ""
    cut = payload[:EXCERPT]
    if ppid in (51, 52):
        return cut.decode("utf-8", "replace")
    return cut.hex()
