"""Configuration templates for components, rendered with jinja2."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(lambda name: files(__name__).joinpath(name).read_text()),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render(name: str, **values: Any) -> str:
    """Render template `name`; a missing value is an error, never an empty string."""
    return _ENV.get_template(name).render(**values)
