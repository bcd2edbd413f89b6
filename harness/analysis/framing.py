"""Messages in a TCP byte stream: STUN/TURN over TCP and RFC 4571 (ICE-TCP) framing.

TURN over TCP (RFC 8656 section 12.5) interleaves STUN messages and ChannelData
padded to four bytes; ICE-TCP (RFC 6544) frames every STUN, DTLS, RTP or RTCP
packet with a two-byte length (RFC 4571). A capture that starts mid-connection
begins anywhere inside such a stream: `sync` finds the first offset from which
frames chain consistently, so the rest of the stream is read as if it had been
seen from the start.
"""

from __future__ import annotations

from harness.analysis.stun import MAGIC_BYTES

TURN = "turn"
RFC4571 = "rfc4571"
#: how far into a stream we look for the first frame before giving up
SCAN = 4096
#: frames that must chain (without a STUN magic cookie to vouch for them)
CHAIN = 3


def _stun_at(b: bytes | bytearray, i: int) -> int:
    """Length of the STUN message (RFC 8489 header with magic cookie) at `i`, or 0."""
    if i + 20 > len(b) or b[i] >= 4 or b[i + 4 : i + 8] != MAGIC_BYTES:
        return 0
    n = b[i + 2] << 8 | b[i + 3]
    return 20 + n if n % 4 == 0 else 0


def turn_frame(b: bytes | bytearray, i: int) -> int:
    """Size of the TURN-TCP frame at `i` (STUN or padded ChannelData); 0 if none, -1 if short."""
    if i + 4 > len(b):
        return -1
    c = b[i]
    if c < 4:
        if i + 20 > len(b):
            return -1
        return _stun_at(b, i)
    if 0x40 <= c <= 0x4F:
        return 4 + (((b[i + 2] << 8 | b[i + 3]) + 3) & ~3)
    return 0


def rfc4571_frame(b: bytes | bytearray, i: int) -> int:
    """Size of the RFC 4571 frame at `i` whose packet looks like STUN, DTLS or RTP/RTCP."""
    if i + 3 > len(b):
        return -1
    n = b[i] << 8 | b[i + 1]
    c = b[i + 2]
    if n < 4 or not (c < 4 or 20 <= c <= 63 or 128 <= c <= 191):
        return 0
    if c < 4 and i + 22 <= len(b) and not _stun_at(b, i + 2):
        return 0
    return 2 + n


def _chains(b: bytes | bytearray, i: int, frame) -> bool:  # type: ignore[no-untyped-def]
    """True when frames parse back to back from `i`, up to CHAIN of them or the end."""
    for _ in range(CHAIN):
        n = frame(b, i)
        if n == -1 or (n > 0 and i + n >= len(b)):
            return True  # consistent up to the end of what has arrived
        if n == 0:
            return False
        i += n
    return True


def sync(b: bytes | bytearray) -> tuple[str, int] | None:
    """(framing, offset of the first frame) of a stream's bytes, or None if neither fits.

    A STUN magic cookie anchors a frame on its own; otherwise CHAIN frames must
    follow each other exactly, which random bytes almost never do.
    """
    if len(b) < 4:
        return None
    limit = min(len(b) - 4, SCAN)
    for i in range(limit + 1):
        if _stun_at(b, i) and _chains(b, i, turn_frame):
            return TURN, i
        if i + 22 <= len(b) and _stun_at(b, i + 2) and (b[i] << 8 | b[i + 1]) == _stun_at(b, i + 2):
            return RFC4571, i
    for i in range(limit + 1):
        if 0x40 <= b[i] <= 0x4F and _chains(b, i, turn_frame) and _full_chain(b, i, turn_frame):
            return TURN, i
        if _full_chain(b, i, rfc4571_frame):
            return RFC4571, i
    return None


def _full_chain(b: bytes | bytearray, i: int, frame) -> bool:  # type: ignore[no-untyped-def]
    """CHAIN complete frames back to back from `i` (no benefit of the doubt)."""
    for _ in range(CHAIN):
        n = frame(b, i)
        if n <= 0 or i + n > len(b):
            return False
        i += n
    return True


def split(b: bytearray, framing: str) -> tuple[list[bytes], int]:
    """Complete frames of `b` (TURN: whole STUN or ChannelData; RFC 4571: the packet).

    Returns the frames and the bytes used. Bytes that fit no frame (a hole in the
    capture) make the caller resynchronise: `used` stops before them and the
    returned list ends with b"" as the marker.
    """
    out: list[bytes] = []
    i = 0
    frame = turn_frame if framing == TURN else rfc4571_frame
    while True:
        n = frame(b, i)
        if n == -1 or (n > 0 and i + n > len(b)):
            return out, i
        if n == 0:
            out.append(b"")
            return out, i
        out.append(bytes(b[i + 2 : i + n]) if framing == RFC4571 else bytes(b[i : i + n]))
        i += n
