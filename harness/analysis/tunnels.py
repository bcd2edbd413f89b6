"""Tunnels a capture's packets travel in: what each one carries, and where that starts.

Port mirroring (ERSPAN over GRE), cloud traffic mirroring (VXLAN: AWS, Azure; Geneve:
AWS Gateway Load Balancer, Google Cloud), IP tunnels (IP in IP, GRE, also in UDP), MPLS
and a mobile core's user plane (GTP-U: VoLTE's SIP and RTP) all deliver a call's packets
inside another packet. Each function here reads one tunnel's header and answers (what
it carries, as an ethertype: IPV4, IPV6 or ETHERNET; the offset where that starts), or
why it carries nothing we read; `net.decode` reads the payload and bounds the nesting.
"""

from __future__ import annotations

IPV4, IPV6, ETHERNET = 0x0800, 0x86DD, 0x6558  # a tunnel's payload, by ethertype
#: an answer: (what the payload is, where it starts), or why there is none to read
Carried = tuple[int, int] | str

#: VXLAN (RFC 7348), Geneve (RFC 8926), GRE in UDP (RFC 8086), MPLS in UDP (RFC 7510)
VXLAN_PORT, GENEVE_PORT = (4789).to_bytes(2, "big"), (6081).to_bytes(2, "big")
GRE_UDP_PORT, MPLS_UDP_PORT = (4754).to_bytes(2, "big"), (6635).to_bytes(2, "big")
#: the ports of tunnels with no marker of their own in their header: a datagram to one is
#: the tunnel's only if a packet is inside (MPLS reads the first nibble of an RTP header)
UNMARKED = frozenset((GRE_UDP_PORT, MPLS_UDP_PORT))
#: GTP-U (3GPP TS 29.281), either port
GTPU_PORT = (2152).to_bytes(2, "big")
#: a VXLAN-GPE header's next protocol (its P flag set) -> what follows
_GPE = {1: IPV4, 2: IPV6, 3: ETHERNET}
#: a GRE or Geneve payload type -> what follows
_TYPES = {IPV4: IPV4, IPV6: IPV6, ETHERNET: ETHERNET}
#: ERSPAN (port mirroring over GRE): type II's 8-byte header (none in type I, which has no
#: sequence number), type III's 12 bytes and an optional 8-byte subheader
ERSPAN2, ERSPAN3 = 0x88BE, 0x22EB
#: what an MPLS label stack carries, by its first nibble (a pseudowire's is 0: not read)
_MPLS_PAYLOAD = {4: IPV4, 6: IPV6}


def ip_payload(proto: int, p: bytes) -> Carried | None:
    """IP protocol `proto`'s payload `p` if it is a tunnel's: IP in IP (RFC 2003, 4213),
    GRE (RFC 2784, 2890, with ERSPAN I-III); None if it is no tunnel's."""
    if proto == 4:
        return IPV4, 0
    if proto == 41:
        return IPV6, 0
    if proto == 47:
        return gre(p)
    return None


def udp_payload(ports: bytes, p: bytes) -> Carried | None:
    """A UDP payload `p` (source and destination port: `ports`) if it is a tunnel's:
    VXLAN (and VXLAN-GPE), Geneve, GRE, MPLS or GTP-U; None if it is none's. The header
    tests keep datagrams of other protocols that use these ports from being unwrapped, and
    the caller reads one whose header names nothing we read (a reason) as plain UDP: a STUN
    check to port 6081 looks like Geneve's version 0; so is one cut short of its header."""
    try:
        return _udp_payload(ports, p)
    except IndexError:
        return None


def _udp_payload(ports: bytes, p: bytes) -> Carried | None:
    port = ports[2:]
    if port == VXLAN_PORT and len(p) >= 22 and p[0] & 0xC8 == 0x08 and not p[7]:
        carried = _GPE.get(p[3]) if p[0] & 0x04 else ETHERNET  # flags (I, P), VNI
        return (carried, 8) if carried else "other-transport"
    if port == GRE_UDP_PORT and len(p) >= 4:
        return gre(p)
    if port == MPLS_UDP_PORT and len(p) >= 4:
        return mpls(p, 0)
    if port == GENEVE_PORT and len(p) >= 8 and p[0] >> 6 == 0:
        # version 0, options' length in words, flags, the payload's type, VNI
        carried = _TYPES.get(p[2] << 8 | p[3])
        return (carried, 8 + 4 * (p[0] & 0x3F)) if carried else "other-transport"
    if GTPU_PORT in (ports[:2], port) and len(p) >= 8 and p[0] & 0xF8 == 0x30 and p[1] == 0xFF:
        return gtpu(p)  # version 1 GTP (not GTP'), a G-PDU: a user's packet
    return None


def gre(p: bytes) -> Carried:
    """A GRE header: flags (checksum, key, sequence number fields), version 0, type."""
    flags, ptype = p[0], p[2] << 8 | p[3]
    if p[1] & 7 or flags & 0x40:  # GRE version 1 is PPTP's (PPP); source routes (RFC 1701)
        return "other-transport"
    at = 4 + 4 * ((flags >> 7) + (flags >> 5 & 1) + (flags >> 4 & 1))
    if ptype == ERSPAN2:
        return ETHERNET, at + 8 if flags & 0x10 else at
    if ptype == ERSPAN3:
        return ETHERNET, at + (20 if p[at + 11] & 1 else 12)
    carried = _TYPES.get(ptype)
    return (carried, at) if carried else "other-transport"


def gtpu(p: bytes) -> Carried:
    """A GTP-U header: flags, type, length, TEID; with E, S or PN set 4 more bytes and,
    with E, extension headers (a length in words, the next one's type last)."""
    at = 8
    if p[0] & 7:
        at, ext = 12, p[11]
        while ext:
            size = 4 * p[at]
            if not size:
                return "malformed-gtp"
            at, ext = at + size, p[at + size - 1]
    return (IPV4 if p[at] >> 4 == 4 else IPV6), at


def mpls(f: bytes, o: int) -> Carried:
    """An MPLS label stack at `o`: labels to the bottom of the stack, then IP by its
    version (a pseudowire's control word, 0, is not read)."""
    while not f[o + 2] & 1:
        o += 4
    carried = _MPLS_PAYLOAD.get(f[o + 4] >> 4)  # IndexError: no bottom, or nothing after it
    return (carried, o + 4) if carried else "other-transport"
