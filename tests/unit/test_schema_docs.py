"""The JSON Schemas and the scenario reference in docs/ are the generated ones, and they hold.

Regenerate with: .venv/bin/python -m harness.config.schema
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from harness.config.schema import generated, scenario_schema, topology_schema
from harness.config.yamlsource import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
jsonschema = pytest.importorskip("jsonschema")


@pytest.mark.parametrize("path", list(generated()), ids=lambda p: p.name)
def test_committed_docs_are_the_generated_ones(path: Path) -> None:
    assert path.exists(), f"missing {path}: run python -m harness.config.schema"
    assert path.read_text() == generated()[path], (
        f"{path.relative_to(ROOT)} is stale: run python -m harness.config.schema"
    )


class _AsWritten(dict[str, str]):
    """Matrix variables left as `${name}`: the file as an editor sees it."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return "${" + key + "}"


def _load(path: Path) -> object:
    """The harness's reading (YAML 1.2 booleans), matrix variables as written."""
    text = path.read_text()
    yaml.safe_load(text)  # every shipped file is plain YAML too (variables quoted in flows)
    return parse_yaml(text, str(path), _AsWritten()).data


def test_shipped_files_match_the_schemas() -> None:
    scen = jsonschema.Draft202012Validator(scenario_schema())
    topo = jsonschema.Draft202012Validator(topology_schema())
    for f in sorted((ROOT / "scenarios").glob("*/*.yaml")):
        errors = [e.message for e in scen.iter_errors(_load(f))]
        assert not errors, (f, errors[:3])
    for f in sorted((ROOT / "topologies").glob("*.yaml")):
        errors = [e.message for e in topo.iter_errors(_load(f))]
        assert not errors, (f, errors[:3])


def test_the_schema_catches_what_validate_catches() -> None:
    scen = jsonschema.Draft202012Validator(scenario_schema())
    good = _load(ROOT / "scenarios/conditions/blackout-during-call.yaml")
    assert isinstance(good, dict)
    bad_step = json.loads(json.dumps(good))
    bad_step["steps"][0]["call"]["calller"] = "alice"
    bad_check = json.loads(json.dumps(good))
    bad_check["expect"][1]["ice_restarts"]["cuont"] = 0
    bad_option = json.loads(json.dumps(good)) | {
        "components": {"turn": {"kind": "coturn", "node": "server", "options": {"prot": 1}}}
    }
    # a value outside a check's choices, wire and peer alike (a matrix variable is not)
    bad_choice = json.loads(json.dumps(good))
    bad_choice["expect"].append({"selected_pair_type": {"not_type": "rellay"}})
    bad_peer_choice = json.loads(json.dumps(good))
    bad_peer_choice["expect"].append({"peer_selected_pair": {"peer": "alice", "local": "rellay"}})
    for bad in (bad_step, bad_check, bad_option, bad_choice, bad_peer_choice):
        assert list(scen.iter_errors(bad))
    as_variable = json.loads(json.dumps(good))
    as_variable["expect"].append({"peer_selected_pair": {"peer": "alice", "local": "${local}"}})
    as_variable["expect"].append({"selected_pair_type": {"not_type": ["relay", "srflx"]}})
    assert not list(scen.iter_errors(as_variable))


def test_the_reference_names_every_step_check_and_component() -> None:
    text = (ROOT / "docs" / "scenario-reference.md").read_text()
    from harness.config.schema import registries

    for registry in registries():
        for name in registry:
            assert re.search(rf"^### `{name}`$", text, re.M), name
