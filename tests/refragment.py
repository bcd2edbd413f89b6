"""A capture as it looks after a router with a small MTU: its IPv4 datagrams in fragments.

For the readers that must see a fragmented datagram as if it had arrived whole
(net.reassembled): the same capture, fragmented, must read the same.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, fragment
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap, wrpcap


def fragmented(src: Path, dst: Path, size: int) -> int:
    """Write `src` (Ethernet) to `dst` with each IPv4 datagram whose payload is longer than
    `size` bytes (a multiple of 8) split into fragments of that size, in order, each at the
    original frame's time; how many datagrams were split."""
    out, split = [], 0
    for pkt in rdpcap(str(src)):
        if Ether in pkt and IP in pkt and len(pkt[IP].payload) > size:
            parts = fragment(pkt[IP], fragsize=size)
            for part in parts:
                frame = Ether(src=pkt[Ether].src, dst=pkt[Ether].dst) / part
                frame.time = pkt.time
                out.append(frame)
            split += 1
        else:
            out.append(pkt)
    wrpcap(str(dst), out)
    return split
