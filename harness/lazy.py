"""Modules imported on first use, so commands that never touch them start fast.

`harness --help` and `harness validate` load the scenario model, which registers
every check and step kind; those modules use numpy only when they analyse, so
they hold `np = lazy("numpy")` instead of importing it (about 0.1 s saved).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attr)


def lazy(name: str) -> Any:
    """A stand-in for `import name` that imports on the first attribute access."""
    return LazyModule(name)
