"""The JSEP state machine check on event timelines: a real glare timeline passes,
each broken one fails naming the transition."""

from __future__ import annotations

from typing import Any

from harness.assertions.peer import run_peer_check


def ev(t: float, kind: str, **data: Any) -> dict[str, Any]:
    return {"t": t, "kind": kind, "data": data}


def timeline(*, connect: bool = True) -> list[dict[str, Any]]:
    """bob's events of a call he answers, then glare: his offer rolled back by alice's."""
    out = [
        ev(0.1, "remotedescription", type="offer", sdp=""),
        ev(0.1, "signalingstatechange", state="have-remote-offer"),
        ev(0.2, "signalingstatechange", state="stable"),
        ev(0.2, "icegatheringstatechange", state="gathering"),
        ev(0.3, "icegatheringstatechange", state="complete"),
        ev(0.3, "localdescription", type="answer", sdp=""),
    ]
    if connect:
        out += [
            ev(0.4, "iceconnectionstatechange", state="checking"),
            ev(0.4, "connectionstatechange", state="connecting"),
            ev(0.5, "iceconnectionstatechange", state="connected"),
            ev(0.5, "connectionstatechange", state="connected"),
        ]
    out += [
        ev(1.0, "signalingstatechange", state="have-local-offer"),
        ev(1.0, "localdescription", type="offer", sdp=""),
        ev(1.1, "signalingstatechange", state="stable"),
        ev(1.1, "signalingstatechange", state="have-remote-offer"),
        ev(1.1, "remotedescription", type="offer", sdp=""),
        ev(1.2, "signalingstatechange", state="stable"),
        ev(1.2, "localdescription", type="answer", sdp=""),
    ]
    return out


def check(events: list[dict[str, Any]], **params: Any) -> Any:
    return run_peer_check("jsep_states", {}, {"peer": "bob", **params}, {"bob": events})


def test_glare_with_implicit_rollback_passes() -> None:
    out = check(timeline(), require=["have-local-offer", "have-remote-offer"])
    assert out.passed, out.message


def test_connected_without_checking_fails() -> None:
    events = [e for e in timeline() if e["data"].get("state") != "checking"]
    out = check(events)
    assert not out.passed and "ICE connection new -> connected" in out.message


def test_signalling_not_matching_the_descriptions_fails() -> None:
    events = [e for e in timeline() if not (e["t"] == 1.1 and e["data"].get("state") == "stable")]
    out = check(events)
    assert not out.passed
    assert "signalling have-local-offer -> have-remote-offer" in out.message


def test_a_description_jsep_forbids_and_a_missing_state() -> None:
    events = [*timeline(), ev(2.0, "remotedescription", type="answer", sdp="")]
    out = check(events, require=["have-local-pranswer"])
    assert "description JSEP forbids: +2.000s remote answer in stable" in out.message
    assert "never reached have-local-pranswer" in out.message
