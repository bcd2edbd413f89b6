"""A small rtnetlink client: the few link, address, route and rule requests a lab needs.

A netlink socket belongs to the network namespace of the thread that opened it, so
bring-up configures each namespace from its own thread with no process at all
(`ip` costs a fork and an exec, 2-10 ms each on a busy 2-core machine). Requests
mean exactly what the `ip` commands in the comments mean; IPv4 only, like labs.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWRULE = 16, 18, 20, 24, 32
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
IFLA_IFNAME, IFLA_MASTER, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_IFALIAS = 3, 10, 16, 18, 20
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
FRA_SRC, FRA_PRIORITY, FRA_TABLE, FR_ACT_TO_TBL = 2, 6, 15, 1
RTPROT_BOOT, RTN_UNICAST, RTN_BLACKHOLE, RT_TABLE_MAIN = 3, 1, 6, 254
IFF_UP, IF_OPER_UP = 0x1, 6

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")  # also fib_rule_hdr: same layout


def attr(kind: int, data: bytes | str | int) -> bytes:
    """One rtattr, padded to 4 bytes: str is NUL-terminated, int is a u32."""
    if isinstance(data, str):
        data = data.encode() + b"\0"
    elif isinstance(data, int):
        data = struct.pack("=I", data)
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


def _table8(table: int) -> int:
    """The header's 8-bit table field: RT_TABLE_UNSPEC when only RTA_TABLE can hold it."""
    return table if table < 256 else 0


def parse_attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    off = 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        if length < 4:
            return
        yield kind & 0x3FFF, data[off + 4 : off + length]
        off += (length + 3) & ~3


class Rtnl:
    """A NETLINK_ROUTE socket of the calling thread's namespace; each request waits for
    its acknowledgement, so an error names the request that failed."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self.sock.bind((0, 0))
        self.sock.settimeout(10.0)  # the kernel always answers: never hang a bring-up
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self.seq += 1
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, flags, self.seq, 0) + body)
        return self.seq

    def request(self, what: str, kind: int, body: bytes, flags: int = 0) -> None:
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_ACK | flags, body)
        for mtype, mseq, payload in self._replies():
            if mseq == seq and mtype == NLMSG_ERROR:
                err = -struct.unpack_from("=i", payload)[0]
                if err:
                    raise OSError(err, f"{what}: {os.strerror(err)}")
                return

    def dump(self, kind: int, body: bytes) -> Iterator[bytes]:
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_DUMP, body)
        for mtype, mseq, payload in self._replies():
            if mseq != seq:
                continue
            if mtype == NLMSG_DONE:
                return
            if mtype == NLMSG_ERROR:
                err = -struct.unpack_from("=i", payload)[0]
                raise OSError(err, f"dump: {os.strerror(err)}")
            yield payload

    def _replies(self) -> Iterator[tuple[int, int, bytes]]:
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                length, mtype, _flags, seq, _pid = _HDR.unpack_from(data, off)
                yield mtype, seq, data[off + _HDR.size : off + length]
                off += (length + 3) & ~3

    # ------------------------------------------------------------ links

    def add_bridge(self, name: str) -> None:
        """`ip link add NAME type bridge; ip link set NAME up`"""
        info = attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, "bridge"))
        body = _ifinfo(up=True) + attr(IFLA_IFNAME, name) + info
        self.request(f"adding bridge {name}", RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(self, name: str, index: int, peer: str, peer_netns_fd: int) -> None:
        """`ip link add NAME index INDEX type veth peer name PEER netns FD` (both ends
        down: the kernel cannot open an end before its peer exists)."""
        peer_body = _ifinfo() + attr(IFLA_IFNAME, peer) + attr(IFLA_NET_NS_FD, peer_netns_fd)
        data = attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_body))
        info = attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, "veth") + data)
        body = _ifinfo(index) + attr(IFLA_IFNAME, name) + info
        self.request(f"adding veth {name}/{peer}", RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def set_link(
        self, name: str, *, up: bool = False, master: int = 0, alias: str | None = None
    ) -> None:
        """`ip link set NAME [alias ALIAS] [master MASTER] [up]`"""
        body = _ifinfo(up=up) + attr(IFLA_IFNAME, name)
        if alias is not None:
            body += attr(IFLA_IFALIAS, alias)
        if master:
            body += attr(IFLA_MASTER, master)
        self.request(f"setting link {name}", RTM_NEWLINK, body)

    def operstate(self, name: str) -> int:
        """`ip link show NAME`'s operational state (IF_OPER_UP: packets pass)."""
        self._send(RTM_GETLINK, NLM_F_REQUEST, _ifinfo() + attr(IFLA_IFNAME, name))
        for mtype, mseq, payload in self._replies():
            if mseq != self.seq:
                continue
            if mtype == NLMSG_ERROR:
                err = -struct.unpack_from("=i", payload)[0]
                raise OSError(err, f"link {name}: {os.strerror(err)}")
            attrs = dict(parse_attrs(payload[_IFINFO.size :]))
            return attrs.get(IFLA_OPERSTATE, b"\0")[0]
        raise AssertionError("unreachable")

    def links(self) -> dict[str, tuple[int, int]]:
        """{name: (ifindex, operstate)} of every link of the namespace."""
        out = {}
        for payload in self.dump(RTM_GETLINK, _ifinfo()):
            index = _IFINFO.unpack_from(payload)[2]
            attrs = dict(parse_attrs(payload[_IFINFO.size :]))
            name = attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode()
            out[name] = (index, attrs.get(IFLA_OPERSTATE, b"\0")[0])
        return out

    # ------------------------------------------------------------ addresses, routes, rules

    def add_address(self, index: int, address: IPv4Address, prefixlen: int) -> None:
        """`ip addr add ADDRESS/PREFIXLEN dev INDEX`"""
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index)
        body += attr(IFA_LOCAL, address.packed) + attr(IFA_ADDRESS, address.packed)
        self.request(f"adding {address}/{prefixlen}", RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_route(
        self,
        dest: IPv4Network | None = None,
        *,
        via: IPv4Address | None = None,
        dev: int = 0,
        metric: int | None = None,
        table: int = RT_TABLE_MAIN,
        blackhole: bool = False,
    ) -> None:
        """`ip route add {DEST|default} [via VIA] [dev DEV] [metric M] [table T]`, or
        `ip route add blackhole default`."""
        dest = dest or IPv4Network("0.0.0.0/0")
        rtype = RTN_BLACKHOLE if blackhole else RTN_UNICAST
        body = _RTMSG.pack(
            socket.AF_INET, dest.prefixlen, 0, 0, _table8(table), RTPROT_BOOT, 0, rtype, 0
        )
        if dest.prefixlen:
            body += attr(RTA_DST, dest.network_address.packed)
        if via is not None:
            body += attr(RTA_GATEWAY, via.packed)
        if dev:
            body += attr(RTA_OIF, dev)
        if metric is not None:
            body += attr(RTA_PRIORITY, metric)
        body += attr(RTA_TABLE, table)
        self.request(
            f"adding route {dest} via {via}", RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL
        )

    def add_rule(self, source: IPv4Address, table: int, pref: int) -> None:
        """`ip rule add from SOURCE table TABLE pref PREF`"""
        body = _RTMSG.pack(socket.AF_INET, 0, 32, 0, _table8(table), 0, 0, FR_ACT_TO_TBL, 0)
        body += attr(FRA_SRC, source.packed) + attr(FRA_PRIORITY, pref) + attr(FRA_TABLE, table)
        self.request(f"adding rule from {source}", RTM_NEWRULE, body, NLM_F_CREATE | NLM_F_EXCL)
