"""Send a probe flow across lab links and report what the links delivered.

So a user can see that a profile is what it claims: delay distribution, loss,
loss bursts, duplicates, reordering and delivered rate, from one direction of
one flow (run it twice for both directions).
"""

from __future__ import annotations

import math
import secrets
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.conditions.control import EngineError
from harness.conditions.probe import END_SEQ, HEADER, MAGIC, read_result

UDP_IP_ETH = 8 + 20 + 14  # header bytes a probe datagram carries on the wire


@dataclass
class ProbeResult:
    sent: int
    received: int
    duplicates: int
    reordered: int
    delay_ms: dict[str, float]
    rate_kbps: float
    size: int
    mean_burst: float
    """Mean length (packets) of runs of consecutive lost packets."""
    arrivals: list[tuple[int, int, int]] = field(default_factory=list, repr=False)
    """(seq, tx ns, rx ns) per arrival, in arrival order (wall clock)."""

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0

    @property
    def received_seqs(self) -> set[int]:
        return {a[0] for a in self.arrivals}

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "received": self.received,
            "loss_pct": round(self.loss_pct, 3),
            "mean_loss_burst": round(self.mean_burst, 2),
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "delay_ms": {k: round(v, 3) for k, v in self.delay_ms.items()},
            "rate_kbps": round(self.rate_kbps, 1),
        }

    def lines(self) -> list[str]:
        d = self.delay_ms
        return [
            f"sent {self.sent}  received {self.received}  loss {self.loss_pct:.2f} % "
            f"(mean burst {self.mean_burst:.2f})  duplicates {self.duplicates}  "
            f"reordered {self.reordered}",
            "delay ms: "
            + "  ".join(
                f"{k} {d[k]:.3f}" for k in ("min", "p50", "p90", "p99", "max", "mean", "std")
            ),
            f"delivered rate {self.rate_kbps:.1f} kbit/s (Ethernet frames of {self.size + UDP_IP_ETH} B)",
        ]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def analyse(
    sent: int, size: int, seqs: Sequence[int], txs: Sequence[int], rxs: Sequence[int]
) -> ProbeResult:
    """Statistics of one probe flow from its raw arrivals."""
    seen: set[int] = set()
    delays: list[float] = []
    reordered = 0
    top = -1
    for seq, tx, rx in zip(seqs, txs, rxs, strict=True):
        if seq in seen:
            continue
        seen.add(seq)
        delays.append((rx - tx) / 1e6)
        if seq < top:
            reordered += 1
        top = max(top, seq)
    dsorted = sorted(delays)
    n = len(dsorted)
    mean = sum(dsorted) / n if n else math.nan
    std = math.sqrt(sum((x - mean) ** 2 for x in dsorted) / n) if n else math.nan
    delay = {"min": dsorted[0] if n else math.nan, "max": dsorted[-1] if n else math.nan}
    delay |= {f"p{q}": percentile(dsorted, q) for q in (50, 90, 99)}
    delay |= {"mean": mean, "std": std}
    span = (max(rxs) - min(rxs)) / 1e9 if len(rxs) > 1 else 0.0
    rate = (len(rxs) - 1) * (size + UDP_IP_ETH) * 8 / span / 1000 if span > 0 else 0.0
    bursts, run = [], 0
    for s in range(sent):
        if s in seen:
            if run:
                bursts.append(run)
            run = 0
        else:
            run += 1
    if run:
        bursts.append(run)
    return ProbeResult(
        sent=sent,
        received=len(seen),
        duplicates=len(seqs) - len(seen),
        reordered=reordered,
        delay_ms=delay,
        rate_kbps=rate,
        size=size,
        mean_burst=sum(bursts) / len(bursts) if bursts else 0.0,
        arrivals=list(zip(seqs, txs, rxs, strict=True)),
    )


def measure(
    lab: Any,
    src: str,
    dst: str,
    *,
    rate: float = 500.0,
    count: int = 2500,
    size: int = 172,
    src_iface: str | None = None,
    dst_address: str | None = None,
    port: int | None = None,
    linger: float = 1.0,
) -> ProbeResult:
    """Send `count` UDP datagrams of `size` bytes at `rate`/s from node `src` to node `dst`.

    `src_iface` picks the source address on a multi-homed node; `dst_address` overrides
    where to send (e.g. a NAT's public address). The receiver runs in `dst`.
    """
    port = port or 20000 + secrets.randbelow(20000)
    to = dst_address or str(lab.topology.node(dst).iface().address)
    bind = str(lab.topology.node(src).iface(src_iface).address) if src_iface else ""
    tag = f"probe-{port}"
    out: Path = lab.workdir(dst, tag) / "arrivals.bin"
    duration = count / rate
    recv = lab.spawn(
        dst,
        [sys.executable, "-m", "harness.conditions.probe", "recv", "--port", port,
         "--out", out, "--deadline", f"{duration + linger + 30:.1f}", "--linger", linger],
        name=tag,
    )  # fmt: skip
    ready = Path(str(out) + ".ready")
    deadline = time.monotonic() + 10
    while not ready.exists():
        if not recv.alive() or time.monotonic() > deadline:
            recv.stop()
            raise EngineError(f"probe receiver in {dst} did not start:\n{recv.log_tail(20)}")
        time.sleep(0.01)
    try:
        lab.run(
            src,
            [sys.executable, "-m", "harness.conditions.probe", "send", "--to", to,
             "--port", port, "--rate", rate, "--count", count, "--size", size, "--bind", bind],
            timeout=duration + 30,
        )  # fmt: skip
        try:
            recv.wait(timeout=linger + 0.5)
        except subprocess.TimeoutExpired:  # every end marker was lost
            recv.send_signal(signal.SIGTERM)
            recv.wait(timeout=10)
    finally:
        recv.stop()
    seqs, txs, rxs = read_result(out)
    return analyse(count, size, seqs, txs, rxs)


def probe_times(pcap: Path) -> dict[int, int]:
    """seq -> capture time (ns) of the probe datagrams in a classic pcap file (first copy).

    Lets a test time a flow at capture points instead of at the endpoints.
    """
    data = pcap.read_bytes()
    if len(data) < 24:
        return {}
    magic = int.from_bytes(data[:4], "little")
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    l2 = {1: 14, 113: 16}.get(linktype)
    if l2 is None:
        raise ValueError(f"{pcap}: link type {linktype} is not Ethernet or Linux cooked")
    out: dict[int, int] = {}
    i = 24
    while i + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(endian + "IIII", data, i)
        pkt = data[i + 16 : i + 16 + caplen]
        i += 16 + caplen
        ip = l2
        if len(pkt) < ip + 28 or pkt[ip + 9] != 17:
            continue
        payload = ip + (pkt[ip] & 0x0F) * 4 + 8
        if len(pkt) < payload + HEADER.size:
            continue
        magic_, seq, _ = HEADER.unpack_from(pkt, payload)
        if magic_ == MAGIC and seq != END_SEQ and seq not in out:
            out[seq] = sec * 1_000_000_000 + (frac if nano else frac * 1000)
    return out
