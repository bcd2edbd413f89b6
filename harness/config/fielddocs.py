"""Field descriptions from attribute docstrings, filled in only when docs are generated.

A field's meaning is the string under it in the class body. Pydantic's
`use_attribute_docstrings` reads it at class creation by tokenising each module's
source: a third of `harness validate`'s time, for text only the schema and the
reference print. So the models leave it off, and `document` (called by
harness/config/schema.py) fills the descriptions in and rebuilds the models.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from functools import cache
from typing import Any

from pydantic import BaseModel


@cache
def attribute_docstrings(cls: type) -> dict[str, str]:
    """{field: docstring} of the fields `cls` itself annotates (not inherited ones)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0]
    out: dict[str, str] = {}
    if not isinstance(body, ast.ClassDef):
        return out
    for prev, node in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(prev, ast.AnnAssign)
            and isinstance(prev.target, ast.Name)
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            out[prev.target.id] = inspect.cleandoc(node.value.value)
    return out


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                todo.append(sub)
    return [m for m in seen if m.__module__.startswith("harness.")]


def document() -> None:
    """Give every harness model's fields their docstrings as descriptions (idempotent)."""
    models = _models(BaseModel)
    changed = False
    for model in models:
        for name, field in model.model_fields.items():
            if field.description is not None:
                continue
            owner = next(
                (c for c in model.__mro__ if name in c.__dict__.get("__annotations__", {})), None
            )
            doc = attribute_docstrings(owner).get(name) if owner is not None else None
            if doc:
                field.description = doc
                changed = True
    if not changed:
        return
    # a model embeds the schemas of the models its fields hold: rebuild until none changes
    before: list[Any] = []
    for _ in range(10):
        for m in models:
            m.model_rebuild(force=True)
        now = [m.__pydantic_core_schema__ for m in models]
        if now == before:
            return
        before = now
