"""`sdp_direction_obeyed`: after each SIP offer/answer, every side sends RTP only if its SDP
lets it (RFC 3264 6.1, 8.4: hold with sendonly/inactive, resume with sendrecv).

For each answered offer on the capture, the window from the answer (+`grace_s`) to the
next offer of the dialog (or the capture's end) is checked per SDP: a host whose SDP
says sendrecv/sendonly must send audio RTP from its SDP address and port (symmetric
RTP), one that says recvonly/inactive must send none.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.model import SdpEvent
from harness.analysis.session import Session
from harness.assertions.params import NUM
from harness.assertions.registry import Outcome, check
from harness.lazy import lazy

np = lazy("numpy")  # imported on first use: `harness validate` registers checks only


def _direction(ev: SdpEvent) -> tuple[str, tuple[str, int] | None]:
    """(direction, (address, port)) of the SDP's first audio section."""
    sdp = ev.sdp
    audio = next((m for m in sdp.media if m.kind == "audio"), None)
    if audio is None:
        return "none", None
    names = ("sendrecv", "sendonly", "recvonly", "inactive")
    found = next((n for n in names if audio.has(n)), None)
    found = found or next((n for n in names if any(v == f"a={n}" for _, v in sdp.session)), None)
    media_c = next((v[2:] for _, v in audio.lines if v.startswith("c=")), None)
    conn = media_c or sdp.connection or ""
    addr = conn.split()[-1] if conn else ""
    return found or "sendrecv", (addr, audio.port) if addr else None


def _sent(s: Session, src: tuple[str, int], t0: float, t1: float) -> int:
    n = 0
    for f in s.analysis.flows:
        if (f.src[0], f.src[1]) != src:
            continue
        for st in f.streams.values():
            t = st.times
            n += int(np.count_nonzero((t >= t0) & (t < t1)))
    return n


@check("sdp_direction_obeyed", grace_s=NUM, min_window_s=NUM, min_negotiations=int)
def sdp_direction_obeyed(s: Session, p: dict[str, Any]) -> Outcome:
    """After every SIP offer/answer, each side sends audio RTP iff its SDP direction allows
    (sendrecv/sendonly: some packets; recvonly/inactive: none), from `grace_s` (0.3 s)
    after the answer to the dialog's next offer; at least `min_negotiations` (1) judged."""
    grace = float(p.get("grace_s", 0.3))
    min_window = float(p.get("min_window_s", 0.5))
    sdps = [e for e in s.analysis.sdp if e.source.startswith("sip/")]
    end = max((f.last_t for f in s.analysis.flows), default=0.0)
    ev: list[str] = []
    problems: list[str] = []
    judged = 0
    for i, ans in enumerate(sdps):
        if ans.type != "answer":
            continue
        offer = next(
            (e for e in reversed(sdps[:i]) if e.dialog == ans.dialog and e.type == "offer"), None
        )
        if offer is None:
            continue
        nxt = next(
            (e.time for e in sdps[i + 1 :] if e.dialog == ans.dialog and e.type == "offer"), end
        )
        t0, t1 = ans.time + grace, nxt
        if t1 - t0 < min_window:
            continue
        judged += 1
        for side in (offer, ans):
            direction, src = _direction(side)
            if src is None:
                continue
            n = _sent(s, src, t0, t1)
            should = direction in ("sendrecv", "sendonly")
            line = (
                f"{side.type} frame {side.frame} a={direction} from {src[0]}:{src[1]}: "
                f"{n} RTP packets t={t0:.2f}-{t1:.2f}s"
            )
            ev.append(line)
            if should and n == 0:
                problems.append(f"{line}: none sent though it may send")
            elif not should and n > 0:
                problems.append(f"{line}: sent though it said {direction}")
    want = int(p.get("min_negotiations", 1))
    if judged < want:
        problems.append(f"{judged} offer/answer windows judged < {want}")
    msg = f"{judged} offer/answer window(s): " + (
        "; ".join(problems) if problems else "directions obeyed"
    )
    return Outcome(not problems, msg, ev, "RFC 3264 6.1, 8.4")
