"""Load a YAML file as whatever it is: a topology or a scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config.scenario import scenario_from_source
from harness.config.topology import topology_from_source
from harness.config.yamlsource import load_yaml


def load_any(path: str | Path) -> tuple[str, Any]:
    src = load_yaml(path)
    if isinstance(src.data, dict) and "steps" in src.data:
        return "scenario", scenario_from_source(src, Path(path))
    return "topology", topology_from_source(src)
