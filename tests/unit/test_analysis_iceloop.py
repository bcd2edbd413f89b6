"""The session model's pass over STUN events in C (`_iceloop.run`) against `_Checks.walk`.

Each capture's events go through both passes; everything the pass makes is compared with
repr (types told apart): generations and their pairs with every slot, the messages by
kind, fingerprint failures, the checks still waiting for an answer. The captures hold ICE
checks signed with known and unknown passwords, error answers, classic RFC 3489 STUN and
TURN; the events are then changed the ways C must follow Python: a MESSAGE-INTEGRITY that
no longer verifies, an error answer without a code, a failed FINGERPRINT, USERNAMEs empty
or without a colon, a check whose flow is known but not its ends, and an event of another class, where C stops and `walk` goes on.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from harness.analysis import session
from harness.analysis.analyzer import analyze_file
from harness.analysis.model import Analysis, StunEvent
from harness.analysis.session import CandidatePair, Session, _Checks, _from_sdp
from harness.analysis.stun import StunMessage

pytestmark = pytest.mark.skipif(
    session._iceloop is None, reason="harness/analysis/_iceloop.c is not built (pip install -e .)"
)
DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURES = [
    "pcaps/aiortc-relayed.pcap",
    "pcaps/aiortc-direct.pcap",
    "pcaps/firefox-aiortc-datachannel.pcap",
    "thirdparty/ndpi-stun_classic.pcap",
    "thirdparty/ndpi-teams-turn.pcap",
    "thirdparty/ndpi-stun_google_meet.pcapng",
    "thirdparty/ndpi-stun_zoom.pcapng",
    # a Janus call relayed by coturn, ICE restart and all: 401 answers, checks signed with
    # the SDPs' passwords (bench_analyze.py's cases (b) and (c) repeat it)
    "../../benchmarks/data/janus-sip-relayed.pcap",
]


def made(analysis: Analysis, compiled: bool) -> tuple[str, int]:
    """What the pass makes of `analysis`, as text, and where C stopped (compiled)."""
    s = Session(analysis)
    checks = _Checks(s, _from_sdp(s))
    events = analysis.stun
    start = session._iceloop.run(events, checks) if compiled else 0
    checks.walk(events, start)
    gens = [
        (
            g.ufrags,
            g.first,
            [[(n, getattr(p, n)) for n in CandidatePair.__slots__] for p in g.pairs],
        )
        for g in checks.gens.values()
    ]
    kinds = (checks.named, checks.kinds, checks.classic, checks.failures)
    pending = {k: (v[0].a, v[0].b, v[1], v[2]) for k, v in checks.pending.items()}
    return repr((gens, kinds, pending, sorted(checks.users), checks.keys)), start


def both(analysis: Analysis) -> tuple[str, str, int]:
    (c, start), (py, _) = made(analysis, True), made(analysis, False)
    return c, py, start


@pytest.fixture(scope="module", params=CAPTURES)
def analysis(request: pytest.FixtureRequest) -> Analysis:
    return analyze_file(DATA / request.param)


def test_the_pass_is_the_one_python_makes(analysis: Analysis) -> None:
    c, py, start = both(analysis)
    assert start == len(analysis.stun) and c == py


def test_a_capture_with_checks_answers_and_integrity(analysis: Analysis) -> None:
    """The captures exercise what C does: checks, answers, verdicts (or kinds only)."""
    checked = [p for g in session.build(analysis).generations for p in g.pairs]
    kinds = {e.msg.kind for e in analysis.stun}
    assert kinds and (checked or "classic Binding request" in kinds or len(kinds) > 3)


def changed(analysis: Analysis, how: str) -> Analysis:
    """A copy of `analysis` whose STUN events are changed `how`."""
    out = copy.copy(analysis)
    events = []
    for i, ev in enumerate(analysis.stun):
        m = ev.msg
        if how == "integrity" and m.integrity and i % 3 == 0:  # the bytes no longer verify
            raw = bytearray(ev.raw)
            raw[-1 if not m.fingerprint_ok else -9] ^= 1
            ev = dataclasses.replace(ev, raw=bytes(raw))
        elif how == "error" and m.cls == "success" and i % 2 == 0:  # an error with no code
            ev = dataclasses.replace(ev, msg=dataclasses.replace(m, cls="error", error_code=None))
        elif how == "fingerprint" and i % 5 == 0:  # a FINGERPRINT that failed
            ev = dataclasses.replace(ev, msg=dataclasses.replace(m, fingerprint_ok=False))
        elif how == "addresses" and m.cls == "request" and i % 3 == 0:  # same flow, new end
            if i % 2:
                ev = dataclasses.replace(ev, src=(ev.src[0], ev.src[1] + 1))
            else:
                ev = dataclasses.replace(ev, dst=(ev.dst[0], ev.dst[1] + 1))
        elif how == "usernames" and m.cls == "request" and m.username and i % 4 < 2:
            username = "" if i % 4 == 0 else m.username.replace(":", "")
            ev = dataclasses.replace(ev, msg=dataclasses.replace(m, username=username))
        events.append(ev)
    out.stun = events
    return out


HOWS = ["integrity", "error", "fingerprint", "usernames", "addresses"]


@pytest.mark.parametrize("how", HOWS)
def test_changed_events_are_passed_as_python_passes_them(analysis: Analysis, how: str) -> None:
    c, py, start = both(changed(analysis, how))
    assert start == len(analysis.stun) and c == py


@dataclasses.dataclass(slots=True)
class OtherEvent(StunEvent):
    """A StunEvent of another class: C leaves it, and what follows, to Python."""


def test_an_event_of_another_class_is_left_to_python(analysis: Analysis) -> None:
    out = copy.copy(analysis)
    half = len(analysis.stun) // 2
    odd = analysis.stun[half]
    out.stun = [
        *analysis.stun[:half],
        OtherEvent(**{f.name: getattr(odd, f.name) for f in dataclasses.fields(odd)}),
    ]
    out.stun += analysis.stun[half + 1 :]
    c, py, start = both(out)
    assert start == half and c == py


def test_setup_refuses_other_classes_and_keeps_its_own() -> None:
    @dataclasses.dataclass
    class NoSlots:
        requests: int = 0

    @dataclasses.dataclass(slots=True)
    class OtherMessage:
        method: str = ""

    loop = session._iceloop
    assert loop.setup(StunEvent, StunMessage, NoSlots) is False
    assert loop.setup(StunEvent, OtherMessage, CandidatePair) is False
    analysis = analyze_file(DATA / CAPTURES[0])
    c, py, start = both(analysis)  # the offsets are still the real classes'
    assert start == len(analysis.stun) and c == py
    assert loop.setup(StunEvent, StunMessage, CandidatePair) is True
