"""Packet classes for targeted faults: RFC 7983 first-byte demux plus light parsing.

The engine calls `classify` only while a fault is active or a packet is held, so a link
without faults never pays for it. Parsing is by index arithmetic on the raw Ethernet
frame; anything that does not parse cleanly is simply "not that class".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.conditions.model import FaultMatch

STUN_COOKIE = b"\x21\x12\xa4\x42"
STUN_METHODS = {1: "stun-binding", 3: "turn-allocate", 4: "turn-refresh", 9: "turn-channelbind"}
STUN_USERNAME = 0x0006
DTLS_HANDSHAKE = 22
IPPROTO_TCP = 6
IPPROTO_UDP = 17
_SIP_REQUEST = re.compile(rb"^([A-Z]+) [^ \r\n]+ SIP/2\.0\r?\n")
_SIP_CSEQ = re.compile(rb"\r?\nCSeq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)", re.I)


@dataclass(slots=True)
class PacketClass:
    """What a frame carries, as far as faults care."""

    proto: int = 0
    sport: int = 0
    dport: int = 0
    kind: str | None = None  # one of model.PacketKind, or None
    message: str = ""  # "request" / "response" (STUN/TURN/SIP), "" otherwise
    username: bytes = b""  # STUN USERNAME
    method: str = ""  # SIP method (request line or CSeq)
    status: int = 0  # SIP response status code


def classify(frame: bytes, offset: int = 0) -> PacketClass:
    """Classify an Ethernet frame starting at `offset` (e.g. after a virtio-net header)."""
    pc = PacketClass()
    b = frame
    eth_type = b[offset + 12 : offset + 14]
    ip = offset + 14
    if eth_type == b"\x81\x00":
        eth_type = b[offset + 16 : offset + 18]
        ip += 4
    if eth_type != b"\x08\x00" or len(b) < ip + 20:
        return pc
    ihl = (b[ip] & 0x0F) * 4
    pc.proto = b[ip + 9]
    if (b[ip + 6] & 0x1F) or b[ip + 7]:  # not the first fragment: no L4 header
        return pc
    l4 = ip + ihl
    if pc.proto == IPPROTO_UDP and len(b) >= l4 + 8:
        payload = l4 + 8
    elif pc.proto == IPPROTO_TCP and len(b) >= l4 + 20:
        payload = l4 + (b[l4 + 12] >> 4) * 4
    else:
        return pc
    pc.sport = (b[l4] << 8) | b[l4 + 1]
    pc.dport = (b[l4 + 2] << 8) | b[l4 + 3]
    _classify_payload(pc, memoryview(b)[payload:])
    if pc.kind is None and pc.proto == IPPROTO_TCP:
        pc.kind = "tcp"
    return pc


def _classify_payload(pc: PacketClass, p: memoryview) -> None:
    if not p:
        return
    first = p[0]
    if first <= 3:
        _stun(pc, p)
    elif 20 <= first <= 63:
        _dtls(pc, p)
    elif 128 <= first <= 191 and len(p) >= 8:
        pc.kind = "rtcp" if 192 <= p[1] <= 223 else "rtp"
    elif 65 <= first <= 90 and _sip(pc, p):  # text; 'A'..'O' overlap TURN channels
        return
    elif 64 <= first <= 79 and len(p) >= 4:  # TURN ChannelData: look inside
        _classify_payload(pc, p[4 : 4 + ((p[2] << 8) | p[3])])


def _stun(pc: PacketClass, p: memoryview) -> None:
    if len(p) < 20 or p[4:8] != STUN_COOKIE:
        return
    t = (p[0] << 8) | p[1]
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    cls = ((t & 0x0100) >> 7) | ((t & 0x0010) >> 4)
    kind = STUN_METHODS.get(method)
    if kind is None or cls == 1:  # unknown method, or an indication
        return
    pc.kind = kind
    pc.message = "request" if cls == 0 else "response"
    end = min(len(p), 20 + ((p[2] << 8) | p[3]))
    i = 20
    while i + 4 <= end:
        atype = (p[i] << 8) | p[i + 1]
        alen = (p[i + 2] << 8) | p[i + 3]
        if atype == STUN_USERNAME:
            pc.username = bytes(p[i + 4 : i + 4 + alen])
            break
        i += 4 + ((alen + 3) & ~3)


def _dtls(pc: PacketClass, p: memoryview) -> None:
    i = 0
    while i + 13 <= len(p):  # a datagram may hold several records
        if p[i] == DTLS_HANDSHAKE:
            pc.kind = "dtls-handshake"
            return
        i += 13 + ((p[i + 11] << 8) | p[i + 12])


def _sip(pc: PacketClass, p: memoryview) -> bool:
    head = bytes(p[:2048])
    if head.startswith(b"SIP/2.0 "):
        m = _SIP_CSEQ.search(head)
        pc.kind, pc.message = "sip", "response"
        pc.method = m.group(1).decode().upper() if m else ""
        code = head[8:11]
        pc.status = int(code) if code.isdigit() and head[11:12] in (b" ", b"\r", b"\n") else 0
        return True
    m = _SIP_REQUEST.match(head)
    if m:
        pc.kind, pc.message, pc.method = "sip", "request", m.group(1).decode()
        return True
    return False


def matches(fm: FaultMatch, pc: PacketClass) -> bool:
    """Does a packet of class `pc` fall under `fm`?"""
    if fm.port is not None and fm.port not in (pc.sport, pc.dport):
        return False
    if fm.kind == "tcp":
        return pc.proto == IPPROTO_TCP
    if pc.kind != fm.kind:
        return False
    if fm.message != "any" and pc.message != fm.message:
        return False
    if fm.method is not None and pc.method != fm.method.upper():
        return False
    if fm.status is not None and pc.status != fm.status:
        return False
    if fm.ufrag is not None:
        local, _, remote = pc.username.partition(b":")
        if fm.ufrag.encode() not in (local, remote):
            return False
    return True
