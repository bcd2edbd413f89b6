"""`pytest -n N` over scenario items warns, once, when N labs at once do not fit the machine.

Real pytest processes on a copy of a shipped scenario matrix: --collect-only (xdist
does not start workers, the plugin judges the collected items) with N just above and
at what the machine holds, and one real distributed run (the controller learns the
items from its workers; the items skip at set-up, so no lab is built).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.scenario import load_scenarios
from harness.scenario.parallel import holds

pytest.importorskip("xdist")
ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "scenarios/p2p/calls.yaml"
MARK = "oversubscribes this machine"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proj")
    (root / "scenarios").mkdir()
    shutil.copy(MATRIX, root / "scenarios" / MATRIX.name)
    (root / "conftest.py").write_text(
        "import pytest\n\n\n"
        "def pytest_runtest_setup(item):\n"
        "    pytest.skip('this test looks at collection only')\n"
    )
    return root


def _holds() -> int:
    return holds([sc for sc in load_scenarios(MATRIX) if sc.spec.ci]).jobs


def _pytest(project: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_ALL_SCENARIOS"}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, "scenarios"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_collect_only_warns_above_what_the_machine_holds(project: Path) -> None:
    cap = _holds()
    over = _pytest(project, "--collect-only", "-n", str(cap + 1))
    lines = [ln for ln in over.splitlines() if MARK in ln]
    assert len(lines) == 1, over[-2000:]
    assert f"-n {cap + 1} oversubscribes" in lines[0] and f"it holds {cap}:" in lines[0]
    assert "CPUs" in lines[0] and "MiB free" in lines[0]  # why
    fits = _pytest(project, "--collect-only", "-n", str(cap))
    assert MARK not in fits and "collected" in fits


def test_a_distributed_run_warns_once_from_the_controller(project: Path) -> None:
    cap = _holds()
    if cap + 1 > 6:
        pytest.skip(f"this machine holds {cap} labs: too many workers to start for a unit test")
    out = _pytest(project, "-n", str(cap + 1), "-rN")
    assert sum(MARK in ln for ln in out.splitlines()) == 1, out[-2000:]
