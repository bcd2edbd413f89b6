"""A matrix's `ci:` picks the cells pytest (CI) runs; a fragment matching nothing is an error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.config.scenario import load_scenarios
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """name: cell-${a}
topology: open-internet
matrix:
  d:
    - {a: one}
    - {a: two}
  ci: [CI]
steps:
  - wait: {seconds: 1}
"""


def write(tmp_path: Path, fragment: str) -> Path:
    (tmp_path / "topologies").mkdir()
    shutil.copy(ROOT / "topologies" / "open-internet.yaml", tmp_path / "topologies")
    path = tmp_path / "m.yaml"
    path.write_text(SCENARIO.replace("CI", fragment))
    return path


def test_ci_marks_only_matching_cells(tmp_path: Path) -> None:
    cells = {sc.name: sc.spec.ci for sc in load_scenarios(write(tmp_path, "cell-two"))}
    assert cells == {"cell-one": False, "cell-two": True}


def test_a_fragment_matching_no_cell_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_scenarios(write(tmp_path, "cell-three"))
    assert "m.yaml:7: matrix.ci.0: no combination name contains 'cell-three'" in str(err.value)
