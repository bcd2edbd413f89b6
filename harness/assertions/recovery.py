"""`expect:` checks over recovery metrics (harness/analysis/recovery.py).

The check runs on the capture at the fixed end (its `capture:` parameter); the
phone's captures (`mobile:`, its node, e.g. `peer-a`: every captured interface) and the mobility
log are read from the same run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.analyzer import analyze_file
from harness.analysis.recovery import Recovery, RecoveryError, analyse, describe, read_log
from harness.analysis.session import Session, build
from harness.assertions.params import NUM, Choice
from harness.assertions.registry import CheckError, Outcome, check
from harness.capture import files_at

RFC = "RFC 8445 9, RFC 7675"


def recovery_of(s: Session, p: dict[str, Any]) -> Recovery:
    """The recovery metrics the parameters ask for, on the capture `s` and its run's files."""
    run_dir = Path(s.analysis.path).parent
    mobile = None
    if p.get("mobile"):
        files = sorted(files_at(run_dir.glob("*.pcap"), p["mobile"]))
        if not files:
            raise CheckError(f"no capture matches mobile {p['mobile']!r} in {run_dir}")
        mobile = [build(analyze_file(f)) for f in files]
    return analyse(
        s,
        read_log(run_dir),
        mobile=mobile,
        kind=p.get("event"),
        index=p.get("index", 0),
        fixed=p.get("fixed"),
        exclude=set(p.get("exclude", "").split(",")) - {""},
    )


@check(
    "recovery",
    mobile=str,
    event=str,
    index=int,
    fixed=str,
    exclude=str,
    direction=Choice(("up", "down", "both")),
    recovered=bool,
    max_gap_s=NUM,
    min_gap_s=NUM,
    max_recover_s=NUM,
    max_lost=int,
    dtls_handshakes=int,
    reinvites=int,
    restart=bool,
)
def recovery(s: Session, p: dict[str, Any]) -> Outcome:
    """Media after a logged network event: recovered (or not, with recovered: false), largest
    gap, time to first media on the new path, packets lost, per direction (up/down/both);
    DTLS handshakes, re-INVITEs, whether an app restarted ICE."""
    direction = p.get("direction", "both")
    try:
        rec = recovery_of(s, p)
    except RecoveryError as exc:
        return Outcome(False, str(exc), [], RFC)
    d = rec.to_dict()
    problems = []
    for name in ("up", "down") if direction == "both" else (direction,):
        x = d[name]
        if not x["packets"]:
            problems.append(f"{name}: no media in the capture")
            continue
        want = p.get("recovered", True)
        if x["recovered"] != want:
            problems.append(f"{name}: recovered {x['recovered']}, expected {want}")
        if "max_gap_s" in p and x["largest_gap_s"] > p["max_gap_s"]:
            problems.append(f"{name}: largest gap {x['largest_gap_s']} s > {p['max_gap_s']} s")
        if "min_gap_s" in p and x["largest_gap_s"] < p["min_gap_s"]:
            problems.append(f"{name}: largest gap {x['largest_gap_s']} s < {p['min_gap_s']} s")
        ttr = x["time_to_recover_s"]
        if "max_recover_s" in p and (ttr is None or ttr > p["max_recover_s"]):
            problems.append(f"{name}: time to recover {ttr} s > {p['max_recover_s']} s")
        if "max_lost" in p and x["lost"] > p["max_lost"]:
            problems.append(f"{name}: {x['lost']} packets lost > {p['max_lost']}")
    if "dtls_handshakes" in p and d["dtls_handshakes"] != p["dtls_handshakes"]:
        problems.append(f"{d['dtls_handshakes']} DTLS handshakes != {p['dtls_handshakes']}")
    if "reinvites" in p and d["reinvites"] != p["reinvites"]:
        problems.append(f"{d['reinvites']} re-INVITEs != {p['reinvites']}")
    if "restart" in p and bool(d["restart_ok"]) != p["restart"]:
        problems.append(f"ICE restart by an app: {d['restart_ok']}, expected {p['restart']}")
    summary = ", ".join(
        f"{n}: gap {d[n]['largest_gap_s']} s, recovered {d[n]['recovered']}" for n in ("up", "down")
    )
    msg = f"after {d['event']}: {summary}" + (f" -- {'; '.join(problems)}" if problems else "")
    checked = ("up", "down") if direction == "both" else (direction,)
    gaps = [rec.directions[n] for n in checked if n in rec.directions]
    spans = [
        (g.gap_from, g.gap_to) for g in gaps if g.gap_from is not None and g.gap_to is not None
    ]
    return Outcome(not problems, msg, describe(rec), RFC, spans)
