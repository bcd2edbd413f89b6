"""The registries of kinds name every kind without importing it, and their tables are true.

Validation imports the modules of the kinds a scenario uses only (checked in a fresh
interpreter); the schema and reference load every kind, and every kind a module
registers is in its registry's table, under that module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.actions import ACTIONS
from harness.assertions.registry import REGISTRY
from harness.components import COMPONENTS
from harness.lazy import LazyRegistry

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("registry", [ACTIONS, REGISTRY, COMPONENTS], ids=lambda r: r.what)
def test_every_kind_is_in_the_table_under_its_module(registry: LazyRegistry[object]) -> None:
    loaded = registry.load_all()
    assert set(loaded) == set(registry.modules), "a kind registered outside its table"
    for kind, value in loaded.items():
        fn = getattr(value, "fn", value)  # a check's function, else the class
        assert fn.__module__ == registry.modules[kind], kind


def test_an_unknown_kind_is_not_found() -> None:
    assert "no_such_step" not in ACTIONS
    with pytest.raises(KeyError):
        ACTIONS["no_such_step"]


def test_validation_imports_only_the_kinds_it_uses() -> None:
    probe = (
        "import json, sys\n"
        "from harness.config.loader import load_any\n"
        "load_any('scenarios/gateway/janus-sip-call.yaml')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('harness.'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    mods = set(json.loads(out.stdout))
    assert "harness.components.janus" in mods  # the scenario's kinds are loaded ...
    for unused in (
        "harness.actions.mobility",  # ... and no others
        "harness.components.coturn",
        "harness.components.pki",
        "harness.actions.gateway.janus_takeover",
        "harness.analysis.analyzer",
    ):
        assert unused not in mods, unused
