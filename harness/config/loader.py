"""Load a YAML file as whatever it is: a topology, a scenario or a scenario matrix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.config.scenario import load_scenarios
from harness.config.topology import load_topology


def load_any(path: str | Path) -> tuple[str, Any]:
    text = Path(path).read_text() if Path(path).is_file() else ""
    if re.search(r"^(steps|matrix):", text, re.M):
        scenarios = load_scenarios(path)
        if len(scenarios) == 1:
            return "scenario", scenarios[0]
        return f"scenario matrix of {len(scenarios)}", scenarios
    return "topology", load_topology(path)
