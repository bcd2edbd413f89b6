"""One finished run as reports see it: its result, its captures analysed once, node names.

Every report (ladder, timeline, HTML, allure) reads a run through this view so the
pcaps are dissected once per run and times share one origin: the first step
(`RunResult.t0`), the origin of step times and peer events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from harness.analysis.analyzer import analyze_file
from harness.analysis.model import Address, Analysis
from harness.analysis.rtp import RtpStream
from harness.analysis.session import Session, build
from harness.scenario.result import RunResult


@dataclass
class Capture:
    """One analysed pcap: the node and interface it was taken on, and its session model."""

    node: str
    iface: str
    path: Path
    session: Session

    @property
    def analysis(self) -> Analysis:
        return self.session.analysis

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Stream:
    """An RTP stream (one SSRC, one direction) with its packet times since t0."""

    stream: RtpStream
    src: str
    dst: str
    times: np.ndarray
    capture: str

    @property
    def label(self) -> str:
        return f"0x{self.stream.ssrc:08x} {self.src}\u2192{self.dst}"


@dataclass
class RunView:
    result: RunResult
    hosts: dict[str, str] = field(default_factory=dict)  # address -> node
    routers: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, result: RunResult | Path) -> RunView:
        r = result if isinstance(result, RunResult) else RunResult.load(result)
        view = cls(r)
        view._read_hosts()
        return view

    def _read_hosts(self) -> None:
        """The lab's /etc/hosts names every interface `<node>-<iface>` (iface has no '-')."""
        path = self.result.run_dir / "etc" / "hosts"
        if not path.is_file():
            return
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[0].startswith("127."):
                continue
            node, _, iface = parts[1].rpartition("-")
            self.hosts[parts[0]] = node
            if iface in ("lan", "wan"):
                self.routers.add(node)

    def node_of(self, addr: Address | str) -> str:
        ip = addr if isinstance(addr, str) else addr[0]
        return self.hosts.get(ip, ip)

    @property
    def t0(self) -> float:
        """Wall-clock origin; older results without t0 estimate it from stats snapshots."""
        if self.result.t0:
            return self.result.t0
        for snaps in self.result.peer_stats.values():
            for s in snaps:
                if isinstance(s.get("stats"), dict) and "t" in s["stats"]:
                    return float(s["stats"]["t"]) - float(s["t"])
        return min((c.analysis.start_time for c in self.captures), default=0.0)

    def rel(self, capture: Capture, t: float) -> float:
        """A capture-relative time as seconds since the first step."""
        return capture.analysis.start_time + t - self.t0

    @cached_property
    def captures(self) -> list[Capture]:
        """Analysed pcaps, hosts before routers: a message is attributed where first seen."""
        out = []
        keylog = self.keylog
        for p in map(Path, self.result.pcaps):
            if not p.is_file():
                continue
            node, _, iface = p.stem.rpartition("-")
            out.append(Capture(node, iface, p, build(analyze_file(p, keylog))))
        out.sort(key=lambda c: (c.node in self.routers, c.node, c.iface))
        return out

    @cached_property
    def keylog(self) -> Path | None:
        """The TLS key logs the run's browsers wrote (keylog.txt under the run), as one file."""
        logs = sorted(self.result.run_dir.glob("**/keylog.txt"))
        if len(logs) <= 1:
            return logs[0] if logs else None
        merged = self.result.run_dir / "keylog-all.txt"
        merged.write_text("".join(p.read_text(errors="replace") for p in logs))
        return merged

    @cached_property
    def peer_nodes(self) -> dict[str, tuple[str, str]]:
        """Peer name -> (kind, node), from the environment the runner recorded."""
        out = {}
        for key, value in self.result.environment.items():
            if key.startswith("peer ") and " on " in value:
                kind, _, node = value.partition(" on ")
                out[key[5:]] = (kind, node)
        return out

    @cached_property
    def component_nodes(self) -> dict[str, tuple[str, str]]:
        out = {}
        for key, value in self.result.environment.items():
            if key.startswith("component ") and " on " in value:
                kind, _, node = value.partition(" on ")
                out[key[10:]] = (kind, node)
        return out

    @cached_property
    def streams(self) -> list[Stream]:
        """Every RTP stream once. A stream seen on two wires (before and after a NAT) shares
        its SSRC and one end; a gateway's second leg may share the SSRC but neither end."""
        owner: dict[tuple[str, int, str], str] = {}
        out = []
        for c in self.captures:
            for flow in c.analysis.flows:
                src, dst = self.node_of(flow.src), self.node_of(flow.dst)
                for st in flow.streams.values():
                    keys = [("src", st.ssrc, src), ("dst", st.ssrc, dst)]
                    if any(owner.setdefault(k, c.name) != c.name for k in keys) or not st.packets:
                        continue
                    t = packet_times(st) + (c.analysis.start_time - self.t0)
                    out.append(Stream(st, src, dst, t, c.name))
        return out

    @cached_property
    def candidate_types(self) -> dict[Address, str]:
        """Candidate types the peers announced (p2p signalling never crosses a wire)."""
        out: dict[Address, str] = {}
        for events in self.result.peer_events.values():
            for ev in events:
                cand = (
                    (ev.get("data") or {}).get("candidate")
                    if ev.get("kind") == "icecandidate"
                    else None
                )
                parts = cand.split() if isinstance(cand, str) else []
                if len(parts) >= 8 and parts[6] == "typ" and parts[5].isdigit():
                    out[(parts[4], int(parts[5]))] = parts[7]
        return out

    def candidate_type(self, addr: Address, seen: str) -> str:
        return seen if seen != "unknown" else self.candidate_types.get(addr, "?")


def packet_times(st: RtpStream) -> np.ndarray:
    """Arrival times of a finished stream's packets (capture-relative)."""
    return st.times
