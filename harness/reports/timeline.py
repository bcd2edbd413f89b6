"""Media timeline of a run (SVG): packet rate per RTP stream and direction over time.

Steps, ICE restarts and link faults are marked on the same axis as the ladder
(seconds since the first step); silences in a stream are shaded, so a blackout,
a one-way audio after a restart, or media that never came back show at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.reports import svg
from harness.reports.ladder import LadderEvent, markers
from harness.reports.runview import RunView, Stream

W, H, LEFT, RIGHT, TOP, BOTTOM = 960, 300, 60, 250, 34, 36
MIN_GAP_S = 0.25


@dataclass
class Gap:
    stream: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def rate(times: np.ndarray, lo: float, hi: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Packets per second in bins of `width` seconds over [lo, hi]."""
    edges = np.arange(lo, hi + width, width)
    counts, _ = np.histogram(times, bins=edges)
    return edges[:-1], counts / width


def gaps(s: Stream) -> list[Gap]:
    """Silences longer than MIN_GAP_S and than 8 usual packet intervals."""
    if len(s.times) < 3:
        return []
    dt = np.diff(s.times)
    limit = max(MIN_GAP_S, 8 * float(np.median(dt)))
    idx = np.flatnonzero(dt > limit)
    return [Gap(s.label, float(s.times[i]), float(s.times[i + 1])) for i in idx]


def restarts(view: RunView) -> list[LadderEvent]:
    """ICE restarts seen on the wire, once each (by their new ufrags)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for c in view.captures:
        for r in c.session.restarts:
            if r.new_ufrags in seen:
                continue
            seen.add(r.new_ufrags)
            label = f"ICE restart {r.index}"
            out.append(LadderEvent(view.rel(c, r.started[1]), "ice", label, c.node, c.node))
    return out


def timeline_svg(view: RunView) -> str:
    streams = view.streams
    events = markers(view) + restarts(view)
    times = [float(s.times[0]) for s in streams] + [float(s.times[-1]) for s in streams]
    times += [e.t for e in events]
    lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
    lo, hi = min(lo, 0.0), max(hi, lo + 1.0)
    width = max(0.2, (hi - lo) / 300)  # >= 10 packets a bin at 50 pps: a readable rate
    series = [rate(s.times, lo, hi, width) for s in streams]
    ymax = max([float(r.max()) for _, r in series if len(r)] + [10.0]) * 1.1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(t: float) -> float:
        return LEFT + (t - lo) / (hi - lo) * pw

    def py(v: float) -> float:
        return TOP + ph - v / ymax * ph

    body = [f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#bbb"/>']
    for k in range(5):
        v = ymax * k / 4
        body.append(svg.text(LEFT - 4, py(v) + 4, f"{v:.0f}", size=10, anchor="end", fill="#666"))
        body.append(
            f'<line x1="{LEFT}" y1="{py(v):.1f}" x2="{LEFT + pw}" y2="{py(v):.1f}" stroke="#eee"/>'
        )
    for t in _ticks(lo, hi):
        body.append(svg.text(px(t), TOP + ph + 14, f"{t:g}", size=10, anchor="middle", fill="#666"))
    body.append(svg.text(LEFT + pw / 2, H - 6, "seconds since step 1", size=10, anchor="middle"))
    body.append(
        svg.text(
            14,
            TOP + ph / 2,
            "packets/s",
            size=10,
            anchor="middle",
            transform=f"rotate(-90 14 {TOP + ph / 2:.0f})",
        )
    )
    for s in streams:
        for g in gaps(s):
            body.append(
                f'<rect class="gap" data-stream="{svg.esc(g.stream)}" x="{px(g.start):.1f}" '
                f'y="{TOP}" width="{max(px(g.end) - px(g.start), 1):.1f}" height="{ph}" '
                f'fill="#e53935" fill-opacity="0.12"><title>{svg.esc(g.stream)}: no packets for '
                f"{g.seconds:.2f} s ({g.start:+.2f} to {g.end:+.2f})</title></rect>"
            )
    for e in events:
        color = svg.COLORS.get(e.kind, "#333")
        body.append(
            f'<g class="marker" data-kind="{e.kind}" data-label="{svg.esc(e.label)}">'
            f'<line x1="{px(e.t):.1f}" y1="{TOP}" x2="{px(e.t):.1f}" y2="{TOP + ph}" '
            f'stroke="{color}" stroke-dasharray="3 3"/><title>{svg.esc(e.label)}</title></g>'
        )
    for i, e in enumerate(e for e in events if e.kind != "step" or "wait" not in e.label):
        body.append(
            svg.text(
                px(e.t) + 2,
                TOP - 4 - 10 * (i % 2),
                svg.clip(e.label, 30),
                size=9,
                fill=svg.COLORS.get(e.kind, "#333"),
            )
        )
    for i, (s, (x, r)) in enumerate(zip(streams, series, strict=True)):
        color = svg.PALETTE[i % len(svg.PALETTE)]
        pts = " ".join(f"{px(t + width / 2):.1f},{py(v):.1f}" for t, v in zip(x, r, strict=True))
        body.append(
            f'<polyline class="stream" data-stream="{svg.esc(s.label)}" points="{pts}" '
            f'fill="none" stroke="{color}" stroke-width="1.5"/>'
        )
        ly = TOP + 14 * i + 8
        body.append(
            f'<rect x="{W - RIGHT + 10}" y="{ly - 7}" width="12" height="4" fill="{color}"/>'
        )
        legend = f"{s.label} {s.stream.packets} pkts"
        body.append(svg.text(W - RIGHT + 26, ly, svg.clip(legend, 36), size=9))
    title = f"{view.result.scenario} seed {view.result.seed}: media timeline"
    return svg.document(W, H, body, title)


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = next(s for s in (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1e9) if span / s <= 12)
    start = np.ceil(lo / step) * step
    return [float(t) for t in np.arange(start, hi + 1e-9, step)]
