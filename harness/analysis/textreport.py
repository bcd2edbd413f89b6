"""One file's summary drawn for people: rich tables, each cut to a number of rows.

A field capture can hold thousands of flows, dialogs and SDPs. Printed whole, the
text is tens of thousands of lines nobody reads, and rich's table layout takes
seconds (10x the analysis itself on a 100k-packet file). Each list therefore shows
`rows` entries: those with problems first (SDP findings, incomplete DTLS handshakes,
ICE restarts that never connected), then the largest (flows, pairs, streams by
packets) or the first; and one line counts what it left out, findings and failures
included, so a cut never hides a problem. `--json` and `--rows 0` give everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from harness.analysis.channelsummary import lines

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

#: rows of each list in the text summary unless `--rows` says otherwise
ROWS = 40
PAIR_COLUMNS = ("pair", "type", "checks", "ok", "nominated", "first media")
RTP_COLUMNS = ("ssrc", "flow", "pt", "pkts", "lost", "reord", "jitter ms", "max gap ms", "t")


def clip(
    items: Sequence[T], rows: int, size: Callable[[T], float] | None = None
) -> tuple[list[T], list[T]]:
    """(shown, left out): the first `rows` items, or with `size` the `rows` largest kept
    in their order; `rows` 0 shows all."""
    if not rows or len(items) <= rows:
        return list(items), []
    if size is None:
        return list(items[:rows]), list(items[rows:])
    top = set(sorted(range(len(items)), key=lambda i: -size(items[i]))[:rows])
    shown = [x for i, x in enumerate(items) if i in top]
    return shown, [x for i, x in enumerate(items) if i not in top]


def _weight(sd: dict[str, Any]) -> int:
    """An SDP's findings, errors first: what to show when not all fit."""
    return sum(100 if f["severity"] == "error" else 1 for f in sd["findings"])


def _counts(counts: Mapping[str, int]) -> str:
    """'kind n, kind n' in name order."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def render(data: dict[str, Any], console: Console, rows: int = ROWS) -> None:
    """Readable tables for one file's summary, each list cut to `rows` (0: all)."""
    from rich.table import Table

    def more(n: int, one: str, many: str, detail: str = "") -> None:
        if n:
            extra = f" ({detail})" if detail else ""
            what = one if n == 1 else many
            console.print(f"  ... {n} more {what}{extra}: --rows 0 or --json", markup=False)

    console.rule(f"[bold]{data['file']}[/] ({data['format']}, {data['packets']} packets)")
    for err in data["errors"]:
        console.print(f"[red]file: {err}[/]")
    if data["skipped"] or data["malformed"]:
        console.print(f"not analysed: {data['skipped']}  malformed: {data['malformed']}")
    flows, hidden = clip(data["flows"], rows, lambda f: f["packets"])
    t = Table("flow", "packets", "first", "last", "kinds", title="Flows")
    for f in flows:
        kinds = ", ".join(f"{k} {v}" for k, v in f["kinds"].items())
        t.add_row(
            f["flow"], str(f["packets"]), f"{f['first_time']:.3f}", f"{f['last_time']:.3f}", kinds
        )
    console.print(t)
    more(len(hidden), "flow", "flows", f"{sum(f['packets'] for f in hidden)} packets, the smallest")
    if data["stun"]:
        console.print("STUN: " + _counts(data["stun"]))
    gens, hidden = clip(data["ice"]["generations"], rows)
    for g in gens:
        pairs, left = clip(g["pairs"], rows, lambda p: p["requests"])
        t = Table(*PAIR_COLUMNS, title=f"ICE generation {'/'.join(g['ufrags'])}")
        for p in pairs:
            media = f"frame {p['first_media'][0]}" if p["first_media"] else "-"
            t.add_row(
                p["pair"],
                p["type"],
                str(p["requests"]),
                str(p["successes"]),
                "yes" if p["nominated"] else "",
                media,
            )
        console.print(t)
        more(len(left), "pair", "pairs", f"{sum(p['requests'] for p in left)} checks")
        console.print(f"  selected: {g['selected']} ({g['selected_type']})")
    more(
        len(hidden),
        "ICE generation",
        "ICE generations",
        f"{sum(g['connected'] is not None for g in hidden)} connected",
    )
    restarts, hidden = clip(data["ice"]["restarts"], rows, lambda r: r["connected"] is None)
    for r in restarts:
        ttc = f"{r['time_to_connect']:.3f}s" if r["time_to_connect"] is not None else "never"
        console.print(
            f"ICE restart {r['index']}: started frame {r['started'][0]}, connected after {ttc}"
        )
    more(
        len(hidden),
        "ICE restart",
        "ICE restarts",
        f"{sum(r['connected'] is None for r in hidden)} never",
    )
    handshakes, hidden = clip(data["dtls"], rows, lambda h: (not h["complete"]) + len(h["alerts"]))
    for h in handshakes:
        console.print(
            f"DTLS {h['client']} -> {h['server']}: complete={h['complete']} srtp={h['srtp_profile']} "
            f"ems={h['extended_master_secret']} messages={h['messages']}",
            markup=False,
        )
        for side, fp in h["certificate_fingerprints"].items():
            console.print(f"  {side} certificate sha-256 {fp}")
        for alert in h["alerts"]:
            console.print(f"  [red]alert frame {alert[0]}: {alert[1]} {alert[2]}[/]")
    more(
        len(hidden),
        "DTLS handshake",
        "DTLS handshakes",
        f"{sum(not h['complete'] for h in hidden)} incomplete, "
        f"{sum(len(h['alerts']) for h in hidden)} alerts",
    )
    if data.get("dtls_decrypted"):
        console.print(f"DTLS decrypted with the key log: {_counts(data['dtls_decrypted'])}")
    for line in lines(data.get("datachannels", [])):
        console.print(line, markup=False)
    if data["rtp"]:
        streams, hidden = clip(data["rtp"], rows, lambda st: st["packets"])
        t = Table(*RTP_COLUMNS, title="RTP streams")
        for st in streams:
            t.add_row(
                st["ssrc"], st["flow"], ",".join(map(str, st["payload_types"])), str(st["packets"]),
                str(st["lost"]), str(st["reordered"]), f"{st['jitter_ms']:.2f}", f"{st['max_gap_s'] * 1000:.1f}",
                f"{st['first_time']:.2f}-{st['last_time']:.2f}",
            )  # fmt: skip
        console.print(t)
        more(
            len(hidden),
            "RTP stream",
            "RTP streams",
            f"{sum(st['packets'] for st in hidden)} packets",
        )
    if data["rtcp"]:
        console.print("RTCP: " + _counts(data["rtcp"]))
    dialogs, hidden = clip(data["sip"], rows)
    for d in dialogs:
        console.print(
            f"SIP dialog {d['call_id']}: {d['state']}, re-INVITEs {d['reinvites']}", markup=False
        )
        messages, left = clip(d["messages"], rows)
        for m in messages:  # the transport in brackets is text, not rich markup
            console.print(
                f"  frame {m['frame']} t={m['time']:.3f} [{m['transport']}] {m['summary']}",
                markup=False,
            )
        more(len(left), "message in this dialog", "messages in this dialog")
        for t in d["transactions"]:
            if t["late_provisional"]:
                frames = ", ".join(map(str, t["late_provisional"]))
                console.print(
                    f"  {t['method']} {t['branch']}: provisional response(s) after the final "
                    f"{t['final']}, frame(s) {frames}: reordered on the way",
                    markup=False,
                )
    more(len(hidden), "SIP dialog", "SIP dialogs", _counts(Counter(d["state"] for d in hidden)))
    sdps, hidden = clip(data["sdp"], rows, _weight)
    for sd in sdps:
        console.print(
            f"SDP {sd['type']} frame {sd['frame']} via {sd['source']} ({sd['profile']} profile): {len(sd['findings'])} finding(s)"
        )
        for f in sd["findings"]:
            where = f"line {f['line_no']}: {f['line']}" if f["line_no"] else "(missing)"
            console.print(f"  {f['severity']}: {where}: {f['message']} [{f['rfc']}]", markup=False)
    findings = Counter(f["severity"] for sd in hidden for f in sd["findings"])
    more(len(hidden), "SDP", "SDPs", f"findings: {_counts(findings) or 'none'}")
