"""A capture as another link layer would have recorded it: the same IP datagrams after a
Linux cooked header (`tcpdump -i any`), VLAN tags, a BSD loopback header or none at all.

For the readers that must not depend on the link layer (the fast path, the bulk decode):
the same call, captured another way, must read the same.
"""

from __future__ import annotations

import struct

#: link-layer kind -> its pcap LINKTYPE
LINKS = {
    "ether": 1,
    "sll": 113,
    "sll2": 276,
    "vlan": 1,
    "qinq": 1,
    "raw": 101,
    "loop": 108,
    "null": 0,
}


def relinked(image: bytes, kind: str, ip_only: bool = False) -> bytes:
    """A little-endian classic pcap of Ethernet frames with each frame's Ethernet header
    replaced as `kind` (a key of LINKS; "ether" keeps it) writes it; the IP datagram and
    times unchanged. Non-IP frames (ARP) keep their type where the link has one, and are
    left out with `ip_only` and of raw IP and loopback captures, which cannot carry them."""
    head = bytearray(image[:24])
    struct.pack_into("<I", head, 20, LINKS[kind])
    out, off = bytearray(head), 24
    while off + 16 <= len(image):
        sec, frac, incl, orig = struct.unpack_from("<IIII", image, off)
        f = image[off + 16 : off + 16 + incl]
        off += 16 + incl
        src, et, ip = f[6:12], f[12:14], f[14:]
        if et != b"\x08\x00" and (ip_only or kind in ("raw", "loop", "null")):
            continue
        if kind == "ether":
            new = f
        elif kind == "sll":  # packet type, ARPHRD_ETHER, address length, address, protocol
            new = struct.pack(">HHH", 0, 1, 6) + src + bytes(2) + et + ip
        elif kind == "sll2":  # protocol, reserved, interface index, ARPHRD, type, length
            new = et + bytes(2) + struct.pack(">IHBB", 2, 1, 0, 6) + src + bytes(2) + ip
        elif kind in ("vlan", "qinq"):
            tags = b"\x81\x00\x00\x07" if kind == "vlan" else b"\x88\xa8\x00\x03\x81\x00\x00\x07"
            new = f[:12] + tags + f[12:]
        elif kind == "raw":
            new = ip
        else:  # BSD loopback: AF_INET in network (loop) or host (null) byte order
            new = struct.pack(">I" if kind == "loop" else "<I", 2) + ip
        out += struct.pack("<IIII", sec, frac, len(new), len(new) + orig - incl) + new
    return bytes(out)
