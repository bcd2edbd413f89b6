"""Packet capture at chosen vantage points of a lab."""

from collections.abc import Iterable
from pathlib import Path


def files_at(files: Iterable[Path], point: str) -> list[Path]:
    """The pcaps of a capture point `node.iface`, or of every captured interface of `node`.

    A capture file is named `<node>-<iface>.pcap`; interface names hold no `-`.
    """
    node, dot, iface = point.partition(".")
    out = []
    for f in files:
        head, _, tail = f.stem.rpartition("-")
        if head == node and (not dot or tail == iface):
            out.append(f)
    return out
