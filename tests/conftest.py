"""Shared test settings: captures of test runs go under the pytest temp dir."""

import os
import tempfile

import pytest

os.environ.setdefault(
    "HARNESS_CAPTURES", os.path.join(tempfile.gettempdir(), "rtc-harness-test-captures")
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the whole suite, no lab of this test run may remain."""
    from harness.lab.registry import all_states

    mine = [s.name for s in all_states() if s.owner_pid == os.getpid()]
    if mine:
        print(f"\nLEFT BEHIND by this test run: labs {mine}")
        session.exitstatus = 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `lab` skip, with the reason, where labs cannot run (not root, no iproute2)."""
    from harness.pytest_plugin import lab_unavailable

    reason = lab_unavailable()
    if reason:
        for item in items:
            if item.get_closest_marker("lab"):
                item.add_marker(pytest.mark.skip(reason=reason))
