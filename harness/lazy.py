"""Modules imported on first use, so commands that never touch them start fast.

`harness --help` and `harness validate` load the scenario model, which registers
every check and step kind; those modules use numpy only when they analyse, so
they hold `np = lazy("numpy")` instead of importing it (about 0.1 s saved).
The registries of kinds are `LazyRegistry`s: a kind's module loads when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


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


class LazyRegistry(MutableMapping[str, T]):
    """Kinds by name (steps, checks, components), each imported on its first lookup.

    `modules` maps every built-in kind to the module that registers it on import, so
    the scenario model knows every name without importing any implementation, and
    validating a scenario imports the kinds it uses only. `load_all` imports every
    module (the schema and reference list every kind); a test keeps the table true.
    """

    def __init__(self, what: str, modules: dict[str, str]) -> None:
        self.what = what
        self.modules = modules
        self._loaded: dict[str, T] = {}

    def __setitem__(self, kind: str, value: T) -> None:
        self._loaded[kind] = value

    def __delitem__(self, kind: str) -> None:
        del self._loaded[kind]

    def __getitem__(self, kind: str) -> T:
        if kind not in self._loaded and kind in self.modules:
            importlib.import_module(self.modules[kind])
            if kind not in self._loaded:
                raise LookupError(f"{self.modules[kind]} did not register {self.what} {kind!r}")
        return self._loaded[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self.modules or kind in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self.modules, *self._loaded]))

    def __len__(self) -> int:
        return len(set(self.modules) | set(self._loaded))

    def load_all(self) -> dict[str, T]:
        """Import every kind's module; {kind: what it registered}."""
        for module in dict.fromkeys(self.modules.values()):
            importlib.import_module(module)
        return {kind: self[kind] for kind in self}
