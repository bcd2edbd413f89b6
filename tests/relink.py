"""A capture as another link layer would have recorded it: the same IP datagrams after a
Linux cooked header (`tcpdump -i any`), VLAN tags, MPLS labels, PPPoE, a BSD loopback
header or none at all; or as a tunnel carried it (`tunneled`).

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
    "mpls": 1,
    "pppoe": 1,
    "raw": 101,
    "loop": 108,
    "null": 0,
}


IP = (b"\x08\x00", b"\x86\xdd")  # the ethertypes of IPv4 and IPv6


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
        if et not in (b"\x08\x00", b"\x86\xdd") and (ip_only or kind in ("raw", "loop", "null")):
            continue
        if kind == "ether":
            new = f
        elif kind == "sll":  # packet type, ARPHRD_ETHER, address length, address, protocol
            new = struct.pack(">HHH", 0, 1, 6) + src + bytes(2) + et + ip
        elif kind == "sll2":  # protocol, reserved, interface index, ARPHRD, type, length
            new = et + bytes(2) + struct.pack(">IHBB", 2, 1, 0, 6) + src + bytes(2) + ip
        elif kind == "mpls":  # two labels, the second the bottom of the stack
            labels = b"\x00\x01\x00\x40\x00\x02\x01\x40"
            new = f[:12] + b"\x88\x47" + labels + ip if et in IP else f
        elif kind == "pppoe":  # a PPPoE session (RFC 2516), PPP's protocol (IPv4 or IPv6)
            ppp = b"\x00\x21" if et == b"\x08\x00" else b"\x00\x57"
            session = struct.pack(">BBHH", 0x11, 0, 0x1234, len(ip) + 2)
            new = f[:12] + b"\x88\x64" + session + ppp + ip if et in IP else f
        elif kind in ("vlan", "qinq"):
            tags = b"\x81\x00\x00\x07" if kind == "vlan" else b"\x88\xa8\x00\x03\x81\x00\x00\x07"
            new = f[:12] + tags + f[12:]
        elif kind == "raw":
            new = ip
        else:  # BSD loopback: AF_INET (or BSD's AF_INET6) in network (loop) or host order
            family = 2 if et == b"\x08\x00" else 24
            new = struct.pack(">I" if kind == "loop" else "<I", family) + ip
        out += struct.pack("<IIII", sec, frac, len(new), len(new) + orig - incl) + new
    return bytes(out)


def ipv6(image: bytes) -> bytes:
    """The same Ethernet capture with every IPv4 datagram carried by IPv6 instead: each
    address mapped into 2001:db8::/96, the payload (UDP, TCP, ...) unchanged, so a call
    over IPv6 with the same flows, ports and media."""
    out, off = bytearray(image[:24]), 24
    while off + 16 <= len(image):
        sec, frac, incl, orig = struct.unpack_from("<IIII", image, off)
        f = image[off + 16 : off + 16 + incl]
        off += 16 + incl
        if f[12:14] == b"\x08\x00" and f[14] >> 4 == 4 and not (f[20] & 0x3F) | f[21]:
            end = 14 + (f[16] << 8 | f[17])
            payload = f[14 + (f[14] & 15) * 4 : end]
            src, dst = (b"\x20\x01\x0d\xb8" + bytes(8) + f[a : a + 4] for a in (26, 30))
            head = struct.pack(">IHBB", 0x6 << 28, len(payload), f[23], f[22]) + src + dst
            f = f[:12] + b"\x86\xdd" + head + payload + f[end:]
        out += struct.pack("<IIII", sec, frac, len(f), len(f) + orig - incl) + f
    return bytes(out)


#: tunnel kind -> what tunneled() wraps each datagram (or frame) in
TUNNELS = ("ipip", "gre", "gre-eth", "erspan2", "erspan3", "vxlan", "geneve")


def tunneled(image: bytes, kind: str) -> bytes:
    """The same Ethernet capture as a tunnel between 198.18.0.1 and 198.18.0.2 carries it,
    as port mirroring (ERSPAN), cloud traffic mirroring (VXLAN) or IP tunnels deliver it:
    each IP datagram (or, for the kinds that carry Ethernet, each whole frame) inside an
    outer IPv4 header, the frames that are not IP unchanged. `gre-eth` carries the
    optional checksum, key and sequence number fields (RFC 2890); `erspan3` the optional
    platform subheader."""
    out, off, seq = bytearray(image[:24]), 24, 0
    while off + 16 <= len(image):
        sec, frac, incl, orig = struct.unpack_from("<IIII", image, off)
        f = image[off + 16 : off + 16 + incl]
        off += 16 + incl
        if f[12:14] in (b"\x08\x00", b"\x86\xdd"):
            v6, ip, seq = f[12:14] == b"\x86\xdd", f[14:], seq + 1
            if kind == "ipip":
                proto, inner = 41 if v6 else 4, ip
            elif kind == "gre":
                proto, inner = 47, b"\x00\x00" + f[12:14] + ip
            elif kind == "gre-eth":  # C, K and S set: checksum + reserved, key, sequence
                proto, inner = 47, b"\xb0\x00\x65\x58" + bytes(4) + struct.pack(">II", 7, seq) + f
            elif kind == "erspan2":  # S set; version 1, VLAN, session id; index
                erspan = struct.pack(">HHI", 0x1000, 0x0001, 0)
                proto, inner = 47, b"\x10\x00\x88\xbe" + struct.pack(">I", seq) + erspan + f
            elif kind == "erspan3":  # version 2, timestamp, SGT/flags with O set, subheader
                erspan = struct.pack(">HHIHH", 0x2000, 0x0001, seq, 0, 0x0001) + bytes(8)
                proto, inner = 47, b"\x10\x00\x22\xeb" + struct.pack(">I", seq) + erspan + f
            else:  # VXLAN to 4789 (VNI 42); Geneve to 6081 with one 8-byte option
                if kind == "vxlan":
                    port, tunnel = 4789, b"\x08\x00\x00\x00" + (42 << 8).to_bytes(4, "big") + f
                else:
                    option = struct.pack(">HBB", 0x0108, 0x01, 1) + bytes(4)
                    port, tunnel = 6081, b"\x02\x00\x65\x58" + (42 << 8).to_bytes(4, "big")
                    tunnel += option + f
                proto, inner = 17, struct.pack(">HHHH", 49152, port, 8 + len(tunnel), 0) + tunnel
            head = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(inner), seq & 0xFFFF, 0, 64, proto, 0)
            f = f[:12] + b"\x08\x00" + head + bytes([198, 18, 0, 1, 198, 18, 0, 2]) + inner
        out += struct.pack("<IIII", sec, frac, len(f), len(f) + orig - incl) + f
    return bytes(out)
