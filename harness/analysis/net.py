"""Link, IP and transport headers down to a UDP or TCP payload.

One function on the hot path, no objects per packet: the 5-tuple travels as a
`bytes` key (source address, destination address, source port, destination
port) and becomes text only when a flow is first seen.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import TYPE_CHECKING

from harness.analysis.ipfrag import Fragment, Reassembler

try:
    from harness.analysis import _netdecode  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built (no compiler at install time): decode() frame by frame
    _netdecode = None

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from harness.analysis.pcapio import FrameIndex

UDP = 17
TCP = 6

#: decode() result: (protocol, flow key, payload, tcp seq, tcp flags)
Segment = tuple[int, bytes, bytes, int, int]

LINK_ETHERNET = 1
LINK_RAW = (101, 12, 14, 228, 229)
LINK_IPV4 = 228
LINK_IPV6 = 229
LINK_NULL = (0, 108)
LINK_SLL = 113
LINK_SLL2 = 276
LINK_PPP = (9, 50)  # PPP, PPP in HDLC framing
LINK_NFLOG = 239  # `tcpdump -i nflog:N`: what an iptables NFLOG rule logged
LINK_PKTAP = 258  # macOS `tcpdump -i pktap` / `-k`: per-packet metadata, then the frame
#: PPP protocol -> the ethertype of what it carries
PPP_PROTOCOLS = {0x0021: 0x0800, 0x0057: 0x86DD, 0x0281: 0x8847}

_IPV6_EXT = {0, 43, 60, 51}
_u32 = struct.Struct("!I").unpack_from
_u32le, _u16le = struct.Struct("<I").unpack_from, struct.Struct("<H").unpack_from
_ports = struct.Struct("!HH").pack


#: tunnels inside tunnels read at most (each level is one more decode())
TUNNELS = 4
#: VXLAN's UDP port (RFC 7348), what cloud traffic mirroring sends (AWS, Azure), and
#: Geneve's (RFC 8926: AWS Gateway Load Balancer's)
VXLAN_PORT, GENEVE_PORT = (4789).to_bytes(2, "big"), (6081).to_bytes(2, "big")
#: what an MPLS label stack carries, by its first nibble (a pseudowire's is 0: not read)
MPLS_PAYLOAD = {4: 0x0800, 6: 0x86DD}
#: GTP-U's UDP port (3GPP TS 29.281): user plane in mobile cores (VoLTE's SIP and RTP)
GTPU_PORT = (2152).to_bytes(2, "big")
#: GRE in UDP (RFC 8086), MPLS in UDP (RFC 7510)
GRE_UDP_PORT, MPLS_UDP_PORT = (4754).to_bytes(2, "big"), (6635).to_bytes(2, "big")
#: a VXLAN-GPE header's next protocol (its P flag set) -> the link it is read as
_GPE = {1: LINK_IPV4, 2: LINK_IPV6, 3: LINK_ETHERNET}
#: a GRE payload type -> the link its payload is read as
_GRE = {0x0800: LINK_IPV4, 0x86DD: LINK_IPV6, 0x6558: LINK_ETHERNET}
#: ERSPAN (port mirroring over GRE): type II's 8-byte header (none in type I, which has no
#: sequence number), type III's 12 bytes and an optional 8-byte subheader
ERSPAN2, ERSPAN3 = 0x88BE, 0x22EB


def decode(link: int, f: bytes, depth: int = 0) -> Segment | Fragment | str:
    """Decode one frame: a UDP/TCP segment, an IP fragment to reassemble, or why neither.

    A tunnel's packet is read as what it carries: IP in IP (RFC 2003, RFC 4213), GRE
    (RFC 2784, RFC 2890: IP, Ethernet, ERSPAN port mirroring; in UDP, RFC 8086), VXLAN
    (RFC 7348, and VXLAN-GPE), Geneve (RFC 8926) and GTP-U (a mobile core's user plane);
    MPLS labels (also in UDP, RFC 7510) are skipped, so a capture of mirrored or tunnelled
    traffic shows the calls inside it, as tshark does. Besides Ethernet, cooked, raw and
    loopback links: PPP (and PPPoE on Ethernet), macOS's PKTAP, Linux's NFLOG.
    """
    try:
        if link == LINK_ETHERNET:
            et = f[12] << 8 | f[13]
            o = 14
            while et == 0x8100 or et == 0x88A8:
                et = f[o + 2] << 8 | f[o + 3]
                o += 4
        elif link == LINK_SLL:
            et = f[14] << 8 | f[15]
            o = 16
        elif link == LINK_SLL2:
            et = f[0] << 8 | f[1]
            o = 20
        elif link in LINK_RAW:
            o = 0
            et = 0x0800 if f[0] >> 4 == 4 else 0x86DD
        elif link in LINK_NULL:
            fam = f[0] if f[0] else f[3]
            et = 0x0800 if fam == 2 else 0x86DD
            o = 4
        elif link in LINK_PPP:  # RFC 1662: address and control (may be left out), protocol
            o = 2 if f[0] == 0xFF and f[1] == 0x03 else 0
            et, o = _ppp(f, o)
        elif link == LINK_PKTAP:  # Apple's: the header's length and the link after it
            if depth >= TUNNELS:
                return "tunnel-depth"
            return decode(_u32le(f, 4)[0], f[_u32le(f, 0)[0] :], depth + 1)
        elif link == LINK_NFLOG:  # netfilter's log: TLVs, the packet in NFULA_PAYLOAD (9)
            o = 4
            while _u16le(f, o + 2)[0] != 9:
                size = _u16le(f, o)[0]
                if size < 4:
                    return "malformed-nflog"
                o += (size + 3) & ~3
            end = o + _u16le(f, o)[0]
            return decode(LINK_IPV4, f[o + 4 : end], depth) if end <= len(f) else "truncated"
        else:
            return "unknown-link"
        if et == 0x8864:  # PPPoE session (RFC 2516): its 6-byte header, then PPP's protocol
            et, o = _ppp(f, o + 6)
        if et == 0x8847 or et == 0x8848:
            et, o = _mpls(f, o)
        if et == 0x0800:
            ihl = (f[o] & 15) * 4
            if f[o] >> 4 != 4 or ihl < 20:
                return "malformed-ip"
            size = f[o + 2] << 8 | f[o + 3]
            end = o + size if size else len(f)  # 0: a segmentation offload's (BIG TCP)
            if end > len(f):
                return "truncated"
            proto = f[o + 9]
            addrs = f[o + 12 : o + 20]
            l4 = o + ihl
            frag = f[o + 6] << 8 | f[o + 7]
            if frag & 0x3FFF:
                ident = f[o + 4] << 8 | f[o + 5]
                return Fragment(
                    (addrs, proto, ident), (frag & 0x1FFF) * 8, bool(frag & 0x2000), f[l4:end]
                )
        elif et == 0x86DD:
            size = f[o + 4] << 8 | f[o + 5]
            end = o + 40 + size if size else len(f)  # 0: a jumbogram's (RFC 2675), BIG TCP
            if end > len(f):
                return "truncated"
            proto = f[o + 6]
            addrs = f[o + 8 : o + 40]
            l4 = o + 40
            while proto in _IPV6_EXT:
                proto = f[l4]
                l4 += (f[l4 + 1] + 1) * 8
            if proto == 44:
                v = f[l4 + 2] << 8 | f[l4 + 3]
                key = (addrs, f[l4], _u32(f, l4 + 4)[0])
                return Fragment(key, v & 0xFFF8, bool(v & 1), f[l4 + 8 : end])
        else:
            return "not-ip"
        return _transport(proto, addrs, f, l4, end, depth)
    except (IndexError, struct.error):
        return "truncated"


#: _tunnel's names for a Geneve, GTP-U, MPLS payload (VXLAN's is UDP's number)
GENEVE, GTPU, MPLS = -1, -2, -3


def _mpls(f: bytes, o: int) -> tuple[int, int]:
    """MPLS: labels to the bottom of the stack; then IP's ethertype by its version (else
    0: a pseudowire's control word) and where it starts."""
    while not f[o + 2] & 1:
        o += 4
    return MPLS_PAYLOAD.get(f[o + 4] >> 4, 0), o + 4


def _ppp(f: bytes, o: int) -> tuple[int, int]:
    """The ethertype a PPP protocol field at `o` stands for (IP, IPv6, MPLS: else 0), and
    where its payload starts; a protocol compressed to one byte (RFC 1661 6.5) is odd."""
    proto, o = (f[o], o + 1) if f[o] & 1 else (f[o] << 8 | f[o + 1], o + 2)
    return PPP_PROTOCOLS.get(proto, 0), o


def _tunnel(proto: int, p: bytes, depth: int) -> Segment | Fragment | str:
    """What an IP-in-IP (`proto` 4 or 41), GRE (47), VXLAN (17), Geneve or GTP-U payload
    carries."""
    if depth >= TUNNELS:
        return "tunnel-depth"
    if proto == 4 or proto == 41:
        return decode(LINK_IPV4 if proto == 4 else LINK_IPV6, p, depth + 1)
    if proto == UDP:  # VXLAN: flags (I; P: VXLAN-GPE's next protocol in byte 3), VNI
        link = _GPE.get(p[3], 0) if p[0] & 0x04 else LINK_ETHERNET
        return decode(link, p[8:], depth + 1) if link else "other-transport"
    if proto == MPLS:
        et, o = _mpls(p, 0)
        return decode(LINK_IPV4, p[o:], depth + 1) if et else "other-transport"
    flags, ptype = p[0], p[2] << 8 | p[3]
    if proto == GTPU:  # flags, type, length, TEID; with E, S or PN set 4 more bytes and,
        at = 8  # with E, extension headers (a length in words, the next one's type last)
        if flags & 7:
            at, ext = 12, p[11]
            while ext:
                size = 4 * p[at]
                if not size:
                    return "malformed-gtp"
                at, ext = at + size, p[at + size - 1]
        return decode(LINK_IPV4, p[at:], depth + 1)  # raw IP: its version says which
    link = _GRE.get(ptype, 0)
    if proto == GENEVE:  # version 0, options' length in words, flags, its payload's type
        return decode(link, p[8 + 4 * (flags & 0x3F) :], depth + 1) if link else "other-transport"
    if p[1] & 7 or flags & 0x40:  # GRE version 1 is PPTP's (PPP); source routes (RFC 1701)
        return "other-transport"
    at = 4 + 4 * ((flags >> 7) + (flags >> 5 & 1) + (flags >> 4 & 1))  # checksum, key, seq
    if ptype == ERSPAN2:
        return decode(LINK_ETHERNET, p[at + 8 if flags & 0x10 else at :], depth + 1)
    if ptype == ERSPAN3:
        return decode(LINK_ETHERNET, p[at + (20 if p[at + 11] & 1 else 12) :], depth + 1)
    return decode(link, p[at:], depth + 1) if link else "other-transport"


def segments(data: bytes, idx: FrameIndex, todo: np.ndarray) -> Sequence[Segment | None]:
    """decode() of the frames `todo` where it gives an unfragmented UDP/TCP segment.

    Compiled (_netdecode.c) it answers the common case for all frames in one call and
    None for the rest, which the caller decodes frame by frame; without the extension
    every answer is None.
    """
    if _netdecode is None:
        return [None] * len(todo)
    return _netdecode.segments(data, idx.offsets, idx.lengths, idx.links, todo)


def reassembled(seg: Segment | Fragment | str, t: float, held: Reassembler) -> Segment | str | None:
    """`decode`'s answer at capture time `t` with IP fragments put back together: a
    fragment is held in `held` (None) until its datagram is whole, and that is read as its
    transport's segment, as if it had arrived in one piece."""
    while type(seg) is Fragment:  # a tunnel's whole datagram may carry a fragment again
        datagram = held.feed(seg, t)
        if datagram is None:
            return None
        seg = transport(seg.key[1], seg.key[0], datagram)
    return seg  # type: ignore[return-value]


def transport(proto: int, addrs: bytes, datagram: bytes) -> Segment | Fragment | str:
    """The UDP or TCP segment in a reassembled IP payload (or what its tunnel carries)."""
    try:
        return _transport(proto, addrs, datagram, 0, len(datagram))
    except (IndexError, struct.error):
        return "truncated"


def _transport(
    proto: int, addrs: bytes, f: bytes, l4: int, end: int, depth: int = 0
) -> Segment | Fragment | str:
    if proto == UDP:
        if l4 + 8 > end:
            return "truncated"
        port = f[l4 + 2 : l4 + 4]
        if port == VXLAN_PORT and f[l4 + 8] & 0xC8 == 0x08 and not f[l4 + 15] and end - l4 >= 30:
            return _tunnel(UDP, f[l4 + 8 : end], depth)  # a VXLAN header (I set) and a frame
        if port == GRE_UDP_PORT and end - l4 >= 12:
            return _tunnel(47, f[l4 + 8 : end], depth)
        if port == MPLS_UDP_PORT and end - l4 >= 12:
            return _tunnel(MPLS, f[l4 + 8 : end], depth)
        if port == GENEVE_PORT and f[l4 + 8] >> 6 == 0 and end - l4 >= 16:
            return _tunnel(GENEVE, f[l4 + 8 : end], depth)
        if (
            GTPU_PORT in (f[l4 : l4 + 2], f[l4 + 2 : l4 + 4])
            and f[l4 + 8] & 0xF8 == 0x30  # version 1, GTP (not GTP')
            and f[l4 + 9] == 0xFF  # G-PDU: a user's packet
            and end - l4 >= 16
        ):
            return _tunnel(GTPU, f[l4 + 8 : end], depth)
        return UDP, addrs + f[l4 : l4 + 4], f[l4 + 8 : end], 0, 0
    if proto == TCP:
        off = (f[l4 + 12] >> 4) * 4
        if off < 20 or l4 + off > end:
            return "malformed-tcp"
        return TCP, addrs + f[l4 : l4 + 4], f[l4 + off : end], _u32(f, l4 + 4)[0], f[l4 + 13]
    if proto == 4 or proto == 41 or proto == 47:
        return _tunnel(proto, f[l4:end], depth)
    return "other-transport"


_ntoa = socket.inet_ntoa
_ntop = socket.inet_ntop
_ZERO80 = bytes(10)


def ipv6_text(raw: bytes) -> str:
    """A 16-byte IPv6 address as `ipaddress` writes it (RFC 5952), by inet_ntop where the
    two agree (~20x faster: a capture of IPv6 calls holds thousands of flows): every
    address but those whose first 80 bits are zero (IPv4-mapped and -compatible ones,
    which the C library writes with a dotted quad)."""
    if raw[:10] != _ZERO80:
        return _ntop(socket.AF_INET6, raw)
    return str(ipaddress.IPv6Address(raw))


def endpoints(key: bytes) -> tuple[str, int, str, int]:
    """(source address, source port, destination address, destination port) of a key."""
    if len(key) == 12:  # IPv4, the usual case (thousands of flows): inet_ntoa, no objects
        return _ntoa(key[:4]), key[8] << 8 | key[9], _ntoa(key[4:8]), key[10] << 8 | key[11]
    n = (len(key) - 4) // 2
    if n == 16:
        src, dst = ipv6_text(key[:16]), ipv6_text(key[16:32])
    else:
        src, dst = str(ipaddress.ip_address(key[:n])), str(ipaddress.ip_address(key[n : 2 * n]))
    return src, key[-4] << 8 | key[-3], dst, key[-2] << 8 | key[-1]


def reverse(key: bytes) -> bytes:
    """The key of the opposite direction."""
    n = (len(key) - 4) // 2
    return key[n : 2 * n] + key[:n] + key[-2:] + key[-4:-2]


def make_key(src: str, sport: int, dst: str, dport: int) -> bytes:
    """A flow key from text addresses (for flows unwrapped from TURN)."""
    if ":" not in src and ":" not in dst:  # two IPv4 addresses, the usual case: no objects
        try:
            return (
                socket.inet_pton(socket.AF_INET, src)
                + socket.inet_pton(socket.AF_INET, dst)
                + _ports(sport, dport)
            )
        except OSError:
            pass  # not a dotted quad: ipaddress says why
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version != b.version:
        a = ipaddress.IPv6Address(f"::ffff:{a}") if a.version == 4 else a
        b = ipaddress.IPv6Address(f"::ffff:{b}") if b.version == 4 else b
    return a.packed + b.packed + _ports(sport, dport)
