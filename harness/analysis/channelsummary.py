"""Data channels as people read them: one entry per channel, its label, who opened it,
messages and bytes per direction, and the first messages' text.

Built from the `DataChannelEvent`s of a walk with a key log (datachannels.py);
`harness analyze` prints it (JSON and text) next to the DTLS handshakes.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.model import DataChannelEvent, fmt_addr

#: messages quoted per channel
EXCERPTS = 20


def channels(events: list[DataChannelEvent]) -> list[dict[str, Any]]:
    """One dict per (association, SCTP stream), in order of first appearance."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for e in events:
        ch = out.get((e.association, e.stream))
        if ch is None:
            ch = out[(e.association, e.stream)] = {
                "association": e.association,
                "relayed": e.relayed,
                "stream": e.stream,
                "label": e.label,
                "protocol": e.protocol,
                "opened_by": None,
                "opened_frame": None,
                "acked": False,
                "directions": {},
                "messages": [],
            }
        src, dst = fmt_addr(e.src), fmt_addr(e.dst)
        if e.kind == "open":
            ch.update(label=e.label, protocol=e.protocol, opened_by=src, opened_frame=e.frame)
            continue
        if e.kind == "ack":
            ch["acked"] = True
            continue
        way = ch["directions"].setdefault(f"{src} > {dst}", {"messages": 0, "bytes": 0})
        way["messages"] += 1
        way["bytes"] += e.size
        if len(ch["messages"]) < EXCERPTS:
            ch["messages"].append(
                {
                    "frame": e.frame,
                    "time": e.time,
                    "from": src,
                    "kind": e.kind,
                    "size": e.size,
                    "text": e.text,
                }
            )
    return list(out.values())


def lines(chans: list[dict[str, Any]]) -> list[str]:
    """Plain text lines for the console report."""
    out: list[str] = []
    for ch in chans:
        opened = (
            f"opened by {ch['opened_by']} (frame {ch['opened_frame']})"
            if ch["opened_by"]
            else "open not captured"
        )
        proto = f" protocol {ch['protocol']!r}" if ch["protocol"] else ""
        acked = ", acked" if ch["acked"] else ""
        out.append(
            f"Data channel {ch['label']!r}{proto} stream {ch['stream']} on {ch['association']}: "
            f"{opened}{acked}"
        )
        for way, n in ch["directions"].items():
            out.append(f"  {way}: {n['messages']} message(s), {n['bytes']} bytes")
        for m in ch["messages"]:
            out.append(
                f"  frame {m['frame']} t={m['time']:.3f} from {m['from']} {m['kind']} "
                f"{m['size']} B: {m['text'][:80]}"
            )
    return out
