"""A wire check asked without a parameter it cannot run without says so (CheckError,
which validation reports at the check's file and line before any lab starts), never
with another exception halfway through a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis.report import summarize_file
from harness.assertions.registry import REGISTRY, CheckError, Outcome, load_checks, run_check

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
load_checks()


@pytest.fixture(scope="module", params=["aiortc-relayed.pcap", "sipp-udp-fragmented.pcap"])
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
