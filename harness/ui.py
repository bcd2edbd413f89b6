"""A rich Console made on first use: `harness --help` and `validate` never import rich."""

from __future__ import annotations

from typing import Any


class LazyConsole:
    """Stands in for `rich.console.Console(**options)` until something is printed."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)
