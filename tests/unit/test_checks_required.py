"""A wire check asked with parameters it cannot use says so (CheckError, which validation
reports at the check's file and line before any lab starts) or gives a verdict; never
another exception halfway through a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.analysis.report import summarize_file
from harness.analysis.session import Session
from harness.assertions.params import Choice, Regex
from harness.assertions.registry import REGISTRY, CheckError, Outcome, load_checks, run_check

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
load_checks()
#: values of each parameter type: edges (0, empty) and plausible ones
SAMPLES: dict[type, list[Any]] = {
    int: [0, 1, -2, 5060],
    float: [0.0, 0.5],
    str: ["", "relay", "198.18.0.11", "offer"],
    bool: [True, False],
    list: [[], ["host"]],
    dict: [{}],
}


@pytest.fixture(
    scope="module",
    params=[
        "aiortc-relayed.pcap",
        "sipp-udp-fragmented.pcap",
        "sip-ws.pcap",
        "janus-dtmf-sip.pcap",
    ],
)
def session(request: pytest.FixtureRequest) -> Session:
    return summarize_file(PCAPS / request.param)[0]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_parameters_give_an_outcome_or_a_check_error(session: Session, name: str) -> None:
    spec = REGISTRY[name]
    try:
        out = run_check(name, session, {})
    except CheckError as exc:
        if spec.required:
            assert f"needs `{spec.required[0]}`" in str(exc)
        return
    assert not spec.required, f"{name} ran without {spec.required}"
    assert isinstance(out, Outcome)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_sample_parameters_give_an_outcome_or_a_check_error(session: Session, name: str) -> None:
    """Each parameter in turn with each sample value of its type (the required ones set)."""
    spec = REGISTRY[name]

    def samples(key: str) -> list[Any]:
        want = spec.params[key]
        if isinstance(want, Choice):  # its values (and a list of them), then other text
            many = [list(want.values[:2])] if want.many and want.values else []
            return [*want.values, *many, *SAMPLES[str], "0x00d", "[2001:db8::1]:5000"]
        if isinstance(want, Regex):
            return ["", "INVITE", "Contact: .*bob", "(unclosed"]
        return [v for t in (want if isinstance(want, tuple) else (want,)) for v in SAMPLES[t]]

    base = {k: next(v for v in samples(k) if _allowed(spec.params[k], v)) for k in spec.required}
    for key in spec.params:
        for value in samples(key):
            try:
                out = run_check(name, session, {**base, key: value})
            except CheckError:
                continue
            assert isinstance(out, Outcome), (key, value)


def _allowed(want: Any, value: Any) -> bool:
    """A value check_params takes for this parameter (a required one's base value)."""
    if isinstance(want, Choice):
        return want.allows(value)
    if isinstance(want, Regex):
        return want.problem(value) is None
    return isinstance(value, want) and bool(value)
