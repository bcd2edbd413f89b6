"""Tiny SVG writing helpers shared by the ladder and the timeline (no drawing library)."""

from __future__ import annotations

from xml.sax.saxutils import escape

FONT = "font-family:DejaVu Sans Mono,Menlo,Consolas,monospace"
COLORS = {
    "sip": "#1f5fbf",
    "jsep": "#7a3fbf",
    "janus": "#b0367a",
    "ice": "#2e7d32",
    "ice-fail": "#b26a00",
    "dtls": "#00838f",
    "datachannel": "#00695c",
    "media": "#c2185b",
    "note": "#555555",
    "step": "#37474f",
    "fault": "#c62828",
}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def esc(s: str) -> str:
    """Escape for element text and double-quoted attributes."""
    return escape(s, {'"': "&quot;"})


def text(x: float, y: float, s: str, *, size: int = 11, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(s)}</text>"
    )


def document(width: float, height: float, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" style="{FONT};background:#fff">'
        f"<title>{escape(title)}</title>" + _markers() + "".join(body) + "</svg>"
    )


def clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def _markers() -> str:
    """One arrow head per colour (context-stroke is not reliable in every viewer)."""
    heads = "".join(
        f'<marker id="arr-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{c}"/></marker>'
        for k, c in COLORS.items()
    )
    return f"<defs>{heads}</defs>"
