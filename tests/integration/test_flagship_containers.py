"""The flagship with every component and peer in a container (`runtime: docker`).

The same cells also run as host processes, as YAML items collected from scenarios/;
both must give the same verdict (a pass, or the known failure with its signature).
"""

from __future__ import annotations

import pytest

from harness.config.scenario import load_scenarios
from harness.scenario.runner import run_scenario_sync
from harness.scenario.verdict import FAIL, UNSUPPORTED, XFAIL, XPASS, verdict_of
from tests.integration.containers import ROOT, SUITE, need_images

pytestmark = [pytest.mark.lab, pytest.mark.slow]

FLAGSHIP = [  # the cells ci/flagship.sh runs
    ("scenarios/gateway/janus-sip-call.yaml", "janus-sip-call-chromium"),
    (
        "scenarios/gateway/janus-sip-ice-restart.yaml",
        "janus-sip-ice-restart-notrickle-relay-nat-chromium",
    ),
]


@pytest.mark.parametrize(("path", "name"), FLAGSHIP, ids=[n for _, n in FLAGSHIP])
def test_flagship_in_containers(path: str, name: str) -> None:
    need_images("janus", "kamailio", "baresip", "coturn", "chromium")
    [scenario] = [s for s in load_scenarios(ROOT / path) if s.name == name]
    scenario.spec.runtime, scenario.spec.suite = "docker", SUITE
    result = run_scenario_sync(scenario)
    assert result.environment["runtime"] == "docker"
    ran = {k: v for k, v in result.environment.items() if k.startswith("version ")}
    assert ran and all("(rtc-harness/" in v for v in ran.values()), ran  # all from images
    v = verdict_of(result)
    assert v.state != UNSUPPORTED, v.reason
    if v.state == XFAIL:
        pytest.xfail(f"{v.reason}\n{result.failure_text()}")
    assert v.state not in (FAIL, XPASS), f"{v.state}: {v.reason}\n{result.failure_text()}"
