"""A wire check asked with parameters it cannot use says so (CheckError, which validation
reports at the check's file and line before any lab starts) or gives a verdict; never
another exception halfway through a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.analysis.report import summarize_file
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
def session(request: pytest.FixtureRequest) -> object:
    return summarize_file(PCAPS / request.param)[0]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_parameters_give_an_outcome_or_a_check_error(session: object, name: str) -> None:
    spec = REGISTRY[name]
    try:
        out = run_check(name, session, {})  # type: ignore[arg-type]
    except CheckError as exc:
        if spec.required:
            assert f"needs `{spec.required[0]}`" in str(exc)
        return
    assert not spec.required, f"{name} ran without {spec.required}"
    assert isinstance(out, Outcome)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_sample_parameters_give_an_outcome_or_a_check_error(session: object, name: str) -> None:
    """Each parameter in turn with each sample value of its type (the required ones set)."""
    spec = REGISTRY[name]

    def samples(key: str) -> list[Any]:
        types = spec.params[key]
        return [v for t in (types if isinstance(types, tuple) else (types,)) for v in SAMPLES[t]]

    base = {k: samples(k)[1] for k in spec.required}
    for key in spec.params:
        for value in samples(key):
            try:
                out = run_check(name, session, {**base, key: value})  # type: ignore[arg-type]
            except CheckError:
                continue
            assert isinstance(out, Outcome), (key, value)
