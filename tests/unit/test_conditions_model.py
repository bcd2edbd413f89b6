"""The YAML model of link conditions: units, precedence, profiles, faults, timeline steps."""

import pytest
from pydantic import ValidationError

from harness.conditions.model import BurstLoss, Fault, LinkConditions, LinkSpec, parse_rate
from harness.conditions.profiles import all_profiles, get_profile
from harness.conditions.timeline import TimelineStep, interpolate

REQUIRED_PROFILES = [
    "wifi", "wifi-lossy", "4g", "4g-poor", "3g", "edge", "dsl", "satellite", "very-bad", "call-drop",
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "kbit"),
    [("2mbit", 2000), ("500kbit", 500), ("1.5Mbps", 1500), (750, 750), ("64000bit", 64)],
)
def test_rates_in_kbit(text: str | int, kbit: float) -> None:
    assert parse_rate(text) == pytest.approx(kbit)
    # model_validate: the string forms are input the validator converts, not the field's type
    assert LinkConditions.model_validate({"rate": text}).rate == pytest.approx(kbit)


def test_bad_rate_and_unknown_key_are_errors() -> None:
    with pytest.raises(ValidationError, match="bad rate"):
        LinkConditions.model_validate({"rate": "fast"})
    with pytest.raises(ValidationError, match="extra"):
        LinkSpec.model_validate({"latency": 50})


def test_precedence_profile_then_both_then_direction() -> None:
    up, down = LinkSpec.model_validate({"profile": "4g", "loss": 3, "up": {"delay": 10}}).resolve()
    assert (up.delay, up.jitter, up.loss, up.rate) == (10, 15, 3, 50000)
    assert (down.delay, down.jitter, down.loss, down.rate) == (45, 5, 3, 100000)


def test_profile_short_form_and_unknown_profile() -> None:
    assert LinkSpec.model_validate("3g").resolve()[0].delay == 250
    with pytest.raises(ValidationError, match="unknown profile '5g'"):
        LinkSpec.model_validate("5g")


def test_required_profiles_exist_with_sources() -> None:
    names = {p.name for p in all_profiles()}
    assert set(REQUIRED_PROFILES) <= names
    for p in all_profiles():
        assert p.source and p.description
    assert get_profile("call-drop").up.blackout and get_profile("call-drop").down.blackout


def test_burst_loss_short_form_means_what_it_says() -> None:
    g = BurstLoss.model_validate({"loss": 5, "burst": 3})
    assert g.r == pytest.approx(100 / 3)
    assert g.mean_loss == pytest.approx(5.0)


def test_fault_fields_must_fit_the_kind() -> None:
    Fault.model_validate({"match": {"kind": "stun-binding", "ufrag": "a1b2"}, "count": 2})
    with pytest.raises(ValidationError, match="ufrag only applies"):
        Fault.model_validate({"match": {"kind": "rtp", "ufrag": "x"}})
    with pytest.raises(ValidationError, match="tcp needs a port"):
        Fault.model_validate({"match": {"kind": "tcp"}})
    with pytest.raises(ValidationError, match="needs delay"):
        Fault.model_validate({"match": {"kind": "rtp"}, "action": "delay"})
    ringing, ok = {"kind": "sip", "status": 180}, {"kind": "sip", "status": 200}
    Fault.model_validate({"match": ringing, "action": "hold", "until": ok, "delay": 500})
    with pytest.raises(ValidationError, match="needs delay"):
        Fault.model_validate({"match": ringing, "action": "hold", "until": ok})
    with pytest.raises(ValidationError, match="hold needs until"):
        Fault.model_validate({"match": ringing, "action": "hold", "delay": 500})
    with pytest.raises(ValidationError, match="hold needs until"):
        Fault.model_validate({"match": ringing, "until": ok})  # a drop releases nothing
    with pytest.raises(ValidationError, match="status only applies"):
        Fault.model_validate({"match": {"kind": "rtp", "status": 180}})
    with pytest.raises(ValidationError, match="status only applies"):
        Fault.model_validate({"match": {"kind": "sip", "message": "request", "status": 180}})


def test_timeline_step_needs_one_when_and_one_what() -> None:
    TimelineStep.model_validate({"at": 5, "link": "peer-a.eth0", "set": "3g"})
    TimelineStep.model_validate(
        {"on": {"peer": "a", "ice": "disconnected"}, "link": "peer-a.eth0", "blackout": 2}
    )
    TimelineStep.model_validate({"on": {"step": 2, "delay": 1}, "link": "x.y", "restore": True})
    with pytest.raises(ValidationError, match="`ice` needs `peer`"):
        TimelineStep.model_validate({"on": {"ice": "failed"}, "link": "x.y", "restore": True})
    with pytest.raises(ValidationError, match="exactly one of `ice`"):
        TimelineStep.model_validate({"on": {"peer": "a"}, "link": "x.y", "restore": True})
    with pytest.raises(ValidationError, match="exactly one of `at`"):
        TimelineStep.model_validate({"link": "peer-a.eth0", "restore": True})
    with pytest.raises(ValidationError, match="exactly one of set"):
        TimelineStep.model_validate({"at": 1, "link": "x.y", "restore": True, "blackout": 1})


def test_ramp_interpolates_numbers() -> None:
    a, b = LinkConditions(delay=0, loss=0), LinkConditions(delay=100, loss=10, rate=500)
    mid = interpolate(a, b, 0.5)
    assert (mid.delay, mid.loss, mid.rate) == (50, 5, None)
    assert interpolate(a, b, 1.0) == b
