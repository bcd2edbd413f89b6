"""JSON Schema of scenario and topology files, generated from the models and registries.

Editors (YAML language servers) complete and check files with it; `harness validate`
remains the judge (cross-references and the topology need more than a schema).
docs/schema/*.json are these, kept equal by tests/unit/test_schema_docs.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from harness.assertions.params import Choice, ParamSpec, Regex

DOCS = Path(__file__).resolve().parents[2] / "docs"
MATRIX_VAR = {"type": "string", "pattern": r"^\$\{\w+\}$", "description": "a matrix variable"}
_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array"}
_TYPES |= {dict: "object"}


def registries() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(steps, wire checks, peer checks, components), every plugin loaded."""
    from harness.actions import ACTIONS
    from harness.components import COMPONENTS
    from harness.config.fielddocs import document
    from harness.config.scenario import _check_registry, _load_plugins

    _load_plugins()
    _check_registry()
    document()
    from harness.assertions.peer import PEER_CHECKS
    from harness.assertions.registry import REGISTRY

    return dict(ACTIONS), dict(REGISTRY), dict(PEER_CHECKS), dict(COMPONENTS)


def param_schema(want: ParamSpec) -> dict[str, Any]:
    if isinstance(want, Choice):
        one: dict[str, Any] = {"enum": list(want.values)}
        if want.pattern:
            one = {"anyOf": [one, {"type": "string", "pattern": f"^{want.pattern[0]}$"}]}
        return {"anyOf": [one, {"type": "array", "items": one}]} if want.many else one
    if isinstance(want, Regex):
        return {"type": "string", "format": "regex"}
    types = want if isinstance(want, tuple) else (want,)
    names = sorted({_TYPES.get(t, "string") for t in types})
    if names == ["integer", "number"]:
        names = ["number"]
    return {"type": names[0]} if len(names) == 1 else {"type": names}


def _one_key(key: str, value: dict[str, Any], doc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "properties": {key: value},
        "required": [key],
        "additionalProperties": False,
    }
    if doc:
        out["description"] = doc
    return out


def scenario_schema() -> dict[str, Any]:
    from harness.conditions.model import LinkSpec
    from harness.config.scenario import ScenarioSpec

    actions, checks, peer_checks, components = registries()
    models = [ScenarioSpec, LinkSpec, *actions.values()]
    models += [c.Options for c in components.values()]
    keys, top = models_json_schema([(m, "validation") for m in models])
    defs = top["$defs"]

    def ref(model: Any) -> dict[str, Any]:
        return keys[(model, "validation")]

    root = defs.pop(ScenarioSpec.__name__)
    if "MustFail" in defs:  # `must_fail: REGEX` is short for `must_fail: {error: REGEX}`
        defs["MustFail"] = {"anyOf": [{"type": "string"}, defs["MustFail"]]}
    props = root["properties"]
    props["steps"]["items"] = {
        "oneOf": [
            _one_key(kind, ref(cls), (cls.__doc__ or "").strip())
            for kind, cls in sorted(actions.items())
        ]
    }
    expect = [
        _one_key(
            name,
            {
                "type": "object",
                "properties": {
                    "capture": {"type": "string", "description": "`node.iface` or `node`"},
                    **{p: param_schema(t) for p, t in c.params.items()},
                },
                # a matrix cell's overrides may supply what the check needs: then the
                # harness's own validation, with the cell applied, says what is missing
                **(
                    {"required": list(c.required)} if c.required and "cells" not in c.params else {}
                ),
                "additionalProperties": False,
            },
            c.doc,
        )
        for name, c in sorted(checks.items())
    ]
    expect += [
        _one_key(
            name,
            {
                "type": "object",
                "properties": {
                    p: param_schema(c.choices[p]) if p in (c.choices or {}) else {}
                    for p in sorted(c.params)
                },
                "required": ["peer"],
                "additionalProperties": False,
            },
            (c.fn.__doc__ or "").strip(),
        )
        for name, c in sorted(peer_checks.items())
    ]
    props["expect"]["items"] = {"oneOf": expect}
    props["links"]["additionalProperties"] = ref(LinkSpec)
    props["links"]["propertyNames"] = {"pattern": r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9_]*$"}
    base = defs["ComponentSpec"]
    defs["ComponentSpec"] = {
        "oneOf": [
            base
            | {
                "properties": base["properties"]
                | {"kind": {"const": kind}, "options": ref(cls.Options)},
                "description": " ".join((cls.__doc__ or kind).split()),
            }
            for kind, cls in sorted(components.items())
        ]
    }
    props["matrix"] = {
        "type": "object",
        "description": "dimensions, each a list of variable sets; `${name}` elsewhere is replaced",
        "properties": {
            "known_failures": {
                "type": "object",
                "description": "cell name -> its known failure",
                "additionalProperties": {"$ref": "#/$defs/KnownFailure"},
            },
            "ci": {
                "type": "array",
                "items": {"type": "string"},
                "description": "name fragments of the cells pytest (CI) runs",
            },
        },
        "additionalProperties": {"type": "array", "items": {"type": "object"}},
    }
    root["properties"] = {k: _allow_matrix_vars(v) for k, v in props.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rtc-harness scenario",
        **root,
        "$defs": {k: _allow_matrix_vars(v) for k, v in defs.items()},
    }


def topology_schema() -> dict[str, Any]:
    from harness.config.fielddocs import document
    from harness.config.topology import TopologySpec
    from harness.nat.behaviour import PRESETS

    document()
    schema = TopologySpec.model_json_schema()
    router = schema["$defs"]["RouterSpec"]["properties"]
    # both are read before validation: `lan: lan-a` is a list of one, `nat: symmetric` a preset
    router["lan"] = {"anyOf": [{"type": "string"}, router["lan"]], "title": "Lan"}
    presets = {"enum": sorted(PRESETS), "description": "a NAT preset"}
    nat = schema["$defs"]["NatBehaviour"]
    nat["properties"]["preset"] = presets  # a preset plus overrides
    schema["$defs"]["NatBehaviour"] = {"anyOf": [presets, nat]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rtc-harness topology",
        **schema,
    }


def _allow_matrix_vars(node: Any) -> Any:
    """Where a value is not a string, a `${name}` matrix variable is accepted too."""
    if isinstance(node, list):
        return [_allow_matrix_vars(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: {n: _allow_matrix_vars(s) for n, s in v.items()}  # name -> schema, not a schema
        if k in ("properties", "$defs") and isinstance(v, dict)
        else _allow_matrix_vars(v)
        for k, v in node.items()
    }
    typed = out.get("type") not in (None, "string") or {"$ref", "enum", "oneOf"} & set(out)
    if typed and "const" not in out:
        return {"anyOf": [out, MATRIX_VAR]}
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def generated() -> dict[Path, str]:
    """Every generated docs file and its text."""
    from harness.config.reference import scenario_reference

    return {
        DOCS / "schema" / "scenario.schema.json": render(scenario_schema()),
        DOCS / "schema" / "topology.schema.json": render(topology_schema()),
        DOCS / "scenario-reference.md": scenario_reference(),
    }


def write_docs() -> list[Path]:
    out = []
    for path, text in generated().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            out.append(path)
    return out


if __name__ == "__main__":
    for p in write_docs():
        print(f"wrote {p}")
