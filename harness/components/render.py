"""Templates rendered with the lab's facts, for programs the harness has no adapter for.

A user's config (a PBX's pjsip.conf, an SBC's YAML) names addresses the lab only
decides at run time. Jinja2 templates see `nodes`, `components` (every component of
the scenario: kind, node, address, and `turn` for TURN servers), `me`, `files` and
`seed`; an unknown name is an error that says which template and which name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ComponentError

if TYPE_CHECKING:
    from harness.components.base import Component
    from harness.lab.lab import Lab


def _env() -> Any:
    import jinja2  # on first render: `harness validate` loads component kinds, never renders

    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
        )
    return _ENV


_ENV: Any = None


def lab_facts(lab: Lab, components: Mapping[str, Component], me: Component) -> dict[str, Any]:
    """What a template may use. Addresses are strings; `turn` is an RTCIceServer dict."""
    nodes = {
        name: {
            "address": str(node.iface().address),
            "ifaces": {i: str(ifc.address) for i, ifc in node.interfaces.items()},
        }
        for name, node in lab.topology.nodes.items()
    }
    comps: dict[str, Any] = {}
    for name, comp in components.items():
        fact: dict[str, Any] = {
            "kind": comp.kind,
            "node": comp.node,
            "address": nodes[comp.node]["address"],
        }
        ice_server = getattr(comp, "ice_server", None)
        if ice_server is not None:
            server = ice_server("udp")
            fact["turn"] = {**server, "url": server["urls"][0]}
        comps[name] = fact
    return {
        "nodes": nodes,
        "components": comps,
        "me": {"name": me.name, "node": me.node, "address": nodes[me.node]["address"]},
        "seed": lab.seed,
    }


def render(text: str, facts: Mapping[str, Any], *, component: str, where: str) -> str:
    """Render one template; errors name the component, the template and the bad name."""
    import jinja2

    try:
        return _env().from_string(text).render(**facts)
    except jinja2.UndefinedError as exc:
        raise ComponentError(
            component, f"{where}: {exc.message} (facts: {', '.join(facts)})"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise ComponentError(component, f"{where} line {exc.lineno}: {exc.message}") from None


def read_template(path: Path, *, component: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ComponentError(component, f"cannot read template {path}: {exc.strerror}") from None
