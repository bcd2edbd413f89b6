"""`tls_connections`: TLS handshakes to a port on the wire, established or refused with an alert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.session import Session
from harness.analysis.tls import ALERTS, read_connections
from harness.assertions.params import Choice, bounds, limits, unseen
from harness.assertions.registry import Outcome, check

#: a TLS alert as the analyser names it: by its name, its number when unnamed, or
#: "encrypted" when it was sent after the handshake's keys took over
ALERT_NAMES = Choice((*ALERTS.values(), "encrypted"), pattern=("[0-9]{1,3}", "its number"))


@check(
    "tls_connections",
    required=("port",),
    port=int,
    established=bool,
    alert=ALERT_NAMES,
    min=int,
    max=int,
    count=int,
)
def tls_connections(s: Session, p: dict[str, Any]) -> Outcome:
    """TLS connections to TCP `port`: those `established` (both sides changed cipher, no alert)
    or, with `alert`, those where one side sent that alert (e.g. certificate_unknown);
    their number within min/max/count (default at least one); zero needs a TLS connection to
    the port in the capture to tell."""
    conns = read_connections(Path(s.analysis.path), p["port"])
    if "alert" in p:
        chosen = [c for c in conns if p["alert"] in c.c.alerts + c.s.alerts]
        what = f"with alert {p['alert']}"
    else:
        want = p.get("established", True)
        chosen = [c for c in conns if c.established == want]
        what = "established" if want else "not established"
    ev = [
        f"frame {c.first_frame} t={c.t:.3f}s {c.client} > {c.server}: client "
        f"{'/'.join(c.c.handshakes) or '-'} alerts {c.c.alerts or '-'}; server "
        f"{'/'.join(c.s.handshakes) or '-'} alerts {c.s.alerts or '-'}; app records "
        f"{c.c.app_records}/{c.s.app_records}"
        for c in conns[:20]
    ]
    bound = limits(p)
    why = unseen(bound, bool(conns), f"TLS connection to port {p['port']}") or bounds(
        len(chosen), bound
    )
    msg = f"{len(chosen)} of {len(conns)} TLS connection(s) to port {p['port']} {what}"
    return Outcome(why is None, msg + (f": {why}" if why else ""), ev, "RFC 5246 7")
