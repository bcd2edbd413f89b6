"""Segmentation offloads off on a lab interface: packets on the wire are MTU-sized.

A veth does TSO and GSO by default: a TCP sender hands it 64 KiB segments and nothing
ever cuts them, so a capture shows packets no real link carries. It also sizes the
capture ring: with an offload on, libpcap (TPACKET_V2, which --immediate-mode uses)
gives every packet a 64 KiB frame, so tcpdump's 8 MiB ring held 128 packets and a
1.5 s stall of tcpdump lost some; with them off a frame is MTU-sized and the same ring
holds over 5,000. The legacy ethtool ioctls (SIOCETHTOOL) need no program and act in
the network namespace of the socket they are sent on.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import socket
import struct
from collections.abc import Iterator

SIOCETHTOOL = 0x8946
ETHTOOL_GTSO, ETHTOOL_STSO = 0x1E, 0x1F
ETHTOOL_GGSO, ETHTOOL_SGSO = 0x23, 0x24


def _ethtool(sock: socket.socket, ifname: str, cmd: int, data: int = 0) -> int:
    value = ctypes.create_string_buffer(struct.pack("II", cmd, data))
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(value))
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    except OSError as exc:
        raise OSError(exc.errno, f"ethtool {cmd:#x} on {ifname}: {exc.strerror}") from None
    return int(struct.unpack("II", value.raw[:8])[1])


@contextlib.contextmanager
def _socket(sock: socket.socket | None) -> Iterator[socket.socket]:
    """`sock`, or a socket of the calling thread's namespace for the time of one call."""
    if sock is not None:
        yield sock
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as own:
        yield own


def segmentation_off(ifname: str, sock: socket.socket | None = None) -> None:
    """TSO and GSO off on `ifname`, in `sock`'s namespace (default: the calling thread's)."""
    with _socket(sock) as s:
        for cmd in (ETHTOOL_STSO, ETHTOOL_SGSO):
            _ethtool(s, ifname, cmd, 0)


def segmentation(ifname: str, sock: socket.socket | None = None) -> dict[str, bool]:
    """{"tso": on?, "gso": on?} of `ifname` (for checks and tests)."""
    with _socket(sock) as s:
        return {
            "tso": bool(_ethtool(s, ifname, ETHTOOL_GTSO)),
            "gso": bool(_ethtool(s, ifname, ETHTOOL_GGSO)),
        }
