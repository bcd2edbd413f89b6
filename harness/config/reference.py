"""docs/scenario-reference.md, generated from the same models and registries as the schema.

Every top-level key, peer, link and timeline field, every step, check and component
option, with its type, default and meaning (the field's docstring).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from harness.assertions.params import Choice, ParamSpec, Regex
from harness.config.schema import param_schema

HEADER = """# Scenario reference

Generated from the models and registries (`python -m harness.config.schema` rewrites
it, with `docs/schema/*.json`; a test keeps them equal). A scenario is checked as a
whole before any lab exists: `harness validate FILE`. Interfaces are spelled
`node.iface` everywhere (`capture`, `links`, `conditions`, a check's `capture`).
Editors can check files with `docs/schema/scenario.schema.json` and
`docs/schema/topology.schema.json`.
"""


def _type(ann: Any) -> str:
    text = getattr(ann, "__name__", None) if isinstance(ann, type) else None
    text = text or str(ann).replace("typing.", "")
    for mod in ("harness.conditions.model.", "harness.config.scenario.", "ipaddress."):
        text = text.replace(mod, "")
    return text.replace("NoneType", "None").replace("|", "\\|")


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "(defaults)"
    return f"`{value!r}`"


def _doc(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def fields_table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        rows.append(f"| `{name}` | {_type(f.annotation)} | {_default(f)} | {_doc(f.description)} |")
    return rows if len(rows) > 2 else ["(no options)"]


def scenario_reference() -> str:
    from harness.conditions.model import LinkSpec
    from harness.conditions.timeline import TimelineStep
    from harness.config.scenario import ComponentSpec, IceServerRef, PeerSpec, ScenarioSpec
    from harness.config.schema import registries

    actions, checks, peer_checks, components = registries()
    out = [HEADER, "## Top-level keys", "", *fields_table(ScenarioSpec), ""]
    out += ["## Peers (`peers.NAME`)", "", *fields_table(PeerSpec), ""]
    out += ["ICE servers (`ice_servers[]`): a component name, or", "", *fields_table(IceServerRef)]
    out += ["", "## Components (`components.NAME`)", "", *fields_table(ComponentSpec), ""]
    for kind, cls in sorted(components.items()):
        out += [f"### `{kind}`", "", _doc(cls.__doc__), "", "`options`:", ""]
        out += [*fields_table(cls.Options), ""]
    out += ["## Links (`links.NODE.IFACE`)", "", *fields_table(LinkSpec), ""]
    out += ["## Timeline (`conditions[]`)", "", *fields_table(TimelineStep), ""]
    out += ["## Steps (`steps[]`: `- KIND: {arguments}`)", ""]
    for kind, cls in sorted(actions.items()):
        out += [f"### `{kind}`", "", _doc(cls.__doc__), "", *fields_table(cls), ""]
    out += ["## Checks on the wire (`expect[]`: `- CHECK: {parameters}`)", ""]
    out += ["Every wire check also takes `capture`: `node.iface`, or a node captured on one"]
    out += ["interface (default: the run's first capture).", ""]
    for name, c in sorted(checks.items()):
        out += [f"### `{name}`", "", _doc(c.doc), ""]
        if c.params:
            must = (
                ", required: here or in its cell's overrides"
                if "cells" in c.params
                else ", required"
            )
            params = ", ".join(
                f"`{p}` ({_kind(t)}{must if p in c.required else ''})" for p, t in c.params.items()
            )
            out += [f"Parameters: {params}.", ""]
    out += ["## Checks on the peers' own stats (`expect[]`)", ""]
    for name, c in sorted(peer_checks.items()):
        out += [f"### `{name}`", "", _doc(c.fn.__doc__), ""]
        out += [
            "Parameters: "
            + ", ".join(
                f"`{p}` ({c.choices[p]})" if p in (c.choices or {}) else f"`{p}`"
                for p in sorted(c.params)
            )
            + " (`peer` required).",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def _kind(want: ParamSpec) -> str:
    """A check parameter's type as the reference prints it."""
    if isinstance(want, Choice | Regex):
        return str(want)
    return str(param_schema(want)["type"])
