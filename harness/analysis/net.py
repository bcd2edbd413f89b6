"""Link, IP and transport headers down to a UDP or TCP payload.

One function on the hot path, no objects per packet: the 5-tuple travels as a
`bytes` key (source address, destination address, source port, destination
port) and becomes text only when a flow is first seen.
"""

from __future__ import annotations

import ipaddress
import struct

# socket's C half: the address functions without socket.py's enums and selectors (3 ms
# of a short run's start)
from _socket import AF_INET, AF_INET6, inet_ntoa, inet_ntop, inet_pton
from typing import TYPE_CHECKING

from harness.analysis import tunnels
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
#: what decode says of bytes that hold no packet (a tunnel port's datagram of its own)
NO_PACKET = ("truncated", "malformed-ip")
#: a tunnel's payload (tunnels.py names it by ethertype) -> the link it is read as
_CARRIED = {tunnels.IPV4: LINK_IPV4, tunnels.IPV6: LINK_IPV6, tunnels.ETHERNET: LINK_ETHERNET}


def decode(link: int, f: bytes, depth: int = 0) -> Segment | Fragment | str:
    """Decode one frame: a UDP/TCP segment, an IP fragment to reassemble, or why neither.

    A tunnel's packet is read as what it carries (tunnels.py reads their headers), at
    most TUNNELS deep, so a capture of mirrored or tunnelled traffic shows the calls inside
    it, as tshark does. Besides Ethernet (VLAN tags, MPLS labels, PPPoE), cooked, raw and
    loopback links: PPP, macOS's PKTAP, Linux's NFLOG.
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
        if et == 0x8847 or et == 0x8848:  # MPLS: a label stack, then IP
            carried = tunnels.mpls(f, o)
            if isinstance(carried, str):
                return "not-ip"
            et, o = carried
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


def _ppp(f: bytes, o: int) -> tuple[int, int]:
    """The ethertype a PPP protocol field at `o` stands for (IP, IPv6, MPLS: else 0), and
    where its payload starts; a protocol compressed to one byte (RFC 1661 6.5) is odd."""
    proto, o = (f[o], o + 1) if f[o] & 1 else (f[o] << 8 | f[o + 1], o + 2)
    return PPP_PROTOCOLS.get(proto, 0), o


def _inner(carried: tunnels.Carried, p: bytes, depth: int) -> Segment | Fragment | str:
    """What a tunnel's payload `p` holds, from `tunnels.py`'s answer for its header."""
    if isinstance(carried, str):
        return carried
    if depth >= TUNNELS:
        return "tunnel-depth"
    kind, at = carried
    return decode(_CARRIED[kind], p[at:], depth + 1)


def segments(data: bytes, idx: FrameIndex, todo: np.ndarray) -> Sequence[Segment | str | None]:
    """decode() of the frames `todo` where it gives an unfragmented UDP/TCP segment, or
    "other-transport" (an IP packet of a protocol decode reads no further: ICMP, IGMP...).

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
        payload = f[l4 + 8 : end]
        carried = tunnels.udp_payload(f[l4 : l4 + 4], payload)
        if carried is not None and not isinstance(carried, str):
            inner = _inner(carried, payload, depth)
            unmarked = f[l4 + 2 : l4 + 4] in tunnels.UNMARKED
            if not (unmarked and inner in NO_PACKET):
                return inner  # else the datagram is itself (an RTP packet to 6635)
        return UDP, addrs + f[l4 : l4 + 4], payload, 0, 0
    if proto == TCP:
        off = (f[l4 + 12] >> 4) * 4
        if off < 20 or l4 + off > end:
            return "malformed-tcp"
        return TCP, addrs + f[l4 : l4 + 4], f[l4 + off : end], _u32(f, l4 + 4)[0], f[l4 + 13]
    carried = tunnels.ip_payload(proto, f[l4:end])
    return "other-transport" if carried is None else _inner(carried, f[l4:end], depth)


_ntoa = inet_ntoa
_ntop = inet_ntop
_ZERO80 = bytes(10)


def ipv6_text(raw: bytes) -> str:
    """A 16-byte IPv6 address as `ipaddress` writes it (RFC 5952), by inet_ntop where the
    two agree (~20x faster: a capture of IPv6 calls holds thousands of flows): every
    address but those whose first 80 bits are zero (IPv4-mapped and -compatible ones,
    which the C library writes with a dotted quad)."""
    if raw[:10] != _ZERO80:
        return _ntop(AF_INET6, raw)
    return str(ipaddress.IPv6Address(raw))


#: IPv4 address -> its text: a capture's thousands of flows share a few hosts, and a
#: lookup costs a tenth of inet_ntoa's call (cleared when full: memory stays bounded)
_ipv4_names: dict[bytes, str] = {}
_IPV4_NAMES = 4096


def endpoints(key: bytes) -> tuple[str, int, str, int]:
    """(source address, source port, destination address, destination port) of a key."""
    if len(key) == 12:  # IPv4, the usual case (thousands of flows): no objects
        names = _ipv4_names
        a, b = key[:4], key[4:8]
        src, dst = names.get(a), names.get(b)
        if src is None or dst is None:
            if len(names) >= _IPV4_NAMES:
                names.clear()
            src = names[a] = _ntoa(a)
            dst = names[b] = _ntoa(b)
        return src, key[8] << 8 | key[9], dst, key[10] << 8 | key[11]
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
            return inet_pton(AF_INET, src) + inet_pton(AF_INET, dst) + _ports(sport, dport)
        except OSError:
            pass  # not a dotted quad: ipaddress says why
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version != b.version:
        a = ipaddress.IPv6Address(f"::ffff:{a}") if a.version == 4 else a
        b = ipaddress.IPv6Address(f"::ffff:{b}") if b.version == 4 else b
    return a.packed + b.packed + _ports(sport, dport)
