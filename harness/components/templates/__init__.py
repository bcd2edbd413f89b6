"""Configuration templates for components, rendered with jinja2."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any


@cache
def _env() -> Any:
    import jinja2  # on first render: `harness validate` loads component kinds, never renders

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: files(__name__).joinpath(name).read_text()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(name: str, **values: Any) -> str:
    """Render template `name`; a missing value is an error, never an empty string."""
    return _env().get_template(name).render(**values)
