"""Symptom checks of an ICE restart through a gateway: what the peer and the wire saw after it.

The forum report describes its failure by symptoms (the browser's ICE went
`disconnected` 2-3 s after the restart; audio stopped one way ~10 s later), so a
reproduction must show them, with limits, not only the cause. Both checks read the
restart log the restart step wrote beside the captures (harness/actions/restartlog.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.actions import restartlog
from harness.analysis.model import fmt_addr
from harness.analysis.session import Session
from harness.assertions.params import NUM, YES_NO_EITHER, for_cell
from harness.assertions.registry import CheckError, Outcome, check


def _restart(s: Session, p: dict[str, Any]) -> restartlog.RestartRecord:
    recs = restartlog.read(Path(s.analysis.path).parent)
    if "peer" in p:
        recs = [r for r in recs if r.peer == p["peer"]]
    if not recs:
        raise CheckError(
            f"the run logged no ICE restart{' of ' + p['peer'] if 'peer' in p else ''}"
        )
    return recs[p.get("index", 0)]


def _want(p: dict[str, Any], key: str) -> bool | None:
    """The expected yes/no of `key`: a bool, or None for `either` (an intermittent cell:
    reported, and bounded by min_s/max_s when it happens, but not judged on whether)."""
    v = p.get(key, False)  # true, false or either: check_params saw to it
    return None if v == "either" else bool(v)


def _limits(value: float, p: dict[str, Any]) -> str | None:
    if "min_s" in p and value < p["min_s"]:
        return f"{value:.2f} s < min_s {p['min_s']}"
    if "max_s" in p and value > p["max_s"]:
        return f"{value:.2f} s > max_s {p['max_s']}"
    return None


@check(
    "restart_peer_ice",
    peer=str,
    index=int,
    disconnected=YES_NO_EITHER,
    min_s=NUM,
    max_s=NUM,
    cell=str,
    cells=dict,
)
def restart_peer_ice(s: Session, p: dict[str, Any]) -> Outcome:
    """The peer's ICE state timeline after an ICE restart: whether (`disconnected`: true,
    false (default) or either) and when (min_s..max_s after the answer was applied) it went
    `disconnected`. `cell`/`cells`: per-matrix-cell overrides."""
    p = for_cell(p)
    rec = _restart(s, p)
    ev = [f"{rec.peer}: offer {rec.offer_t - rec.answer_t:+.2f} s, answer applied +0.00 s"]
    ev += [f"{rec.peer}: {line}" for line in rec.timeline()]
    after = rec.first("disconnected")
    want = _want(p, "disconnected")
    window = rec.observed_until - rec.answer_t
    if after is None:
        msg = f"{rec.peer}: ICE did not go disconnected within {window:.1f} s of the answer"
        return Outcome(
            want is not True, msg + (" (expected it to)" if want else ""), ev, "RFC 8445"
        )
    msg = f"{rec.peer}: ICE disconnected {after:.2f} s after the answer was applied"
    if want is False:
        return Outcome(False, msg + " (expected it to stay connected)", ev, "RFC 8445")
    why = _limits(after, p)
    return Outcome(why is None, msg + (f" -- {why}" if why else ""), ev, "RFC 8445")


def _hosts(run_dir: Path) -> dict[str, str]:
    """Node name -> address, from the lab's own /etc/hosts kept in the run directory."""
    out: dict[str, str] = {}
    path = run_dir / "etc" / "hosts"
    for line in path.read_text().splitlines() if path.is_file() else []:
        words = line.split()
        for name in words[1:]:
            out.setdefault(name, words[0])
    return out


@check(
    "restart_media_stop",
    required=("sender",),
    peer=str,
    index=int,
    sender=str,
    stopped=YES_NO_EITHER,
    min_s=NUM,
    max_s=NUM,
    grace_s=NUM,
    cell=str,
    cells=dict,
)
def restart_media_stop(s: Session, p: dict[str, Any]) -> Outcome:
    """Per direction: when the RTP that `sender` (node or address) sends on this capture stopped,
    in seconds after the restart's answer. `stopped` (default false): it must (not) end more
    than `grace_s` (1 s) before the call does (first BYE after the answer, else the capture's
    end), or `either`; when it stops, min_s..max_s bound the time. `cell`/`cells` as above."""
    p = for_cell(p)
    rec = _restart(s, p)
    a = s.analysis
    addr = _hosts(Path(a.path).parent).get(p["sender"], p["sender"])
    flows = [f for f in a.flows if f.src[0] == addr and f.streams]
    if not flows:
        raise CheckError(f"no RTP from {p['sender']} ({addr}) in {Path(a.path).name}")
    base = a.start_time
    last = max((st for f in flows for st in f.streams.values()), key=lambda st: st.last_t)
    answer = rec.answer_t - base
    byes = [e.time for e in a.sip if e.msg.method == "BYE" and e.time > answer]
    end = min(byes) if byes else max(f.last_t for f in a.flows)
    end_what = "the BYE" if byes else "the capture's end"
    stop_after = last.last_t - answer
    ev = [
        f"answer applied at t={answer:.3f}s of {Path(a.path).name}; {end_what} at t={end:.3f}s",
        f"last RTP from {p['sender']} ({addr}): frame {last.last_frame} t={last.last_t:.3f}s "
        f"({last.flow})",
        *(f"flow {fmt_addr(f.src)} > {fmt_addr(f.dst)}: {f.packets} pkts" for f in flows),
    ]
    grace = float(p.get("grace_s", 1.0))
    stopped = end - last.last_t > grace
    want = _want(p, "stopped")
    who = f"RTP from {p['sender']}"
    if not stopped:
        msg = f"{who} ran until {end_what} ({stop_after:.2f} s after the answer)"
        return Outcome(
            want is not True, msg + (" (expected it to stop)" if want else ""), ev, "RFC 3550"
        )
    msg = (
        f"{who} stopped {stop_after:.2f} s after the answer, "
        f"{end - last.last_t:.2f} s before {end_what}"
    )
    if want is False:
        return Outcome(False, msg + " (expected it to run until then)", ev, "RFC 3550")
    why = _limits(stop_after, p)
    return Outcome(why is None, msg + (f" -- {why}" if why else ""), ev, "RFC 3550")
