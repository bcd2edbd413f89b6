"""The search of `harness bisect` (harness/scenario/bisect.py): which images it runs and
what it concludes, over verdicts given per image (the real runs are in
tests/integration/test_images.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.config.scenario import Scenario, parse_scenario
from harness.errors import HarnessError
from harness.scenario.bisect import bisect
from harness.scenario.result import RunResult

YAML = """
name: b
topology: open-internet
components:
  sbc: {kind: kamailio, node: server}
  relay: {kind: rtpengine, node: server}
steps: [{wait: {seconds: 0}}]
"""
ROOT = Path(__file__).resolve().parents[2]


def scenario() -> Scenario:
    return parse_scenario(YAML, ROOT / "scenarios" / "b.yaml")


def search(verdicts: dict[str, list[bool]], repeat: int = 1) -> tuple[str | None, list[str]]:
    ran: list[str] = []

    async def run(sc: Scenario, seed: int) -> RunResult:
        image = sc.spec.components["sbc"].image or ""
        assert sc.spec.components["relay"].image is None
        ran.append(image)
        ok = verdicts[image][(seed - 1) % len(verdicts[image])]
        return RunResult("b", "b.yaml", seed, Path("/nonexistent"), passed=ok)

    b = asyncio.run(bisect(scenario(), list(verdicts), run, repeat=repeat))
    return b.first_changed, ran


def test_finds_the_first_change_in_log_steps() -> None:
    images = {f"rtc-harness/kamailio:v{i}": [i >= 5] for i in range(8)}
    first, ran = search(images)
    assert first == "rtc-harness/kamailio:v5"
    assert len(ran) == 5  # both ends, then 3 halvings of 8
    assert len(set(ran)) == len(ran)


def test_equal_ends_are_no_change() -> None:
    first, ran = search({"kamailio:a": [True], "kamailio:b": [False], "kamailio:c": [True]})
    assert first is None and ran == ["kamailio:a", "kamailio:c"]


def test_repeat_makes_an_intermittent_image_fail() -> None:
    first, ran = search(
        {"kamailio:a": [True], "kamailio:b": [True, False, True], "kamailio:c": [False]}, repeat=3
    )
    assert first == "kamailio:b" and len(ran) == 9


def test_component_must_be_named_when_the_images_do_not_say() -> None:
    async def run(sc: Scenario, seed: int) -> RunResult:
        raise AssertionError("nothing may run")

    with pytest.raises(HarnessError, match="say which component"):
        asyncio.run(bisect(scenario(), ["my/sbc:1", "my/sbc:2"], run))
