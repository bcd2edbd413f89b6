"""Dataclass methods compiled once per install, not once per process.

`dataclasses` writes each class's `__init__`, `__repr__` and `__eq__` as source text and
compiles it with `exec` when the class is created: the analyser's hundred-odd dataclasses
cost a short `harness analyze` about 20 ms of compiling, more than its whole JSON output.
The compiled code depends only on that text (and the interpreter), so it is kept the way
`.pyc` files keep modules' code: marshalled under the package's `__pycache__`, keyed by
the text itself, and written only where bytecode is written (not under
PYTHONDONTWRITEBYTECODE, nor where the folder is read-only).

`install` shadows the builtin `exec` in the `dataclasses` module's namespace with one that
compiles a text once and runs the cached code object in its place: the same code, run
with the same globals and namespace. Only the harness's own classes are kept (the
globals `dataclasses` passes are their module's): others are compiled as before. An
interpreter whose dataclasses no longer call `exec` by that name just never reaches it.

`dataclasses` imports `inspect` (with `ast`, `dis` and `tokenize`: about 18 M instructions,
a tenth of a short `harness analyze`) for one use, the docstring of a class written
without one; ours all have one. Unless something imported it already, `install` puts a
stand-in in `sys.modules` that imports the real module on first use and becomes it.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import importlib
import marshal
import os
import sys
from types import CodeType, ModuleType
from typing import Any

_FOLDER = os.path.join(os.path.dirname(__file__), "__pycache__")
_PATH = os.path.join(
    _FOLDER, f"dataclass-methods.{sys.implementation.cache_tag}-{sys.hexversion:x}.marshal"
)
_MAX_ENTRIES = 4096  # a bound on what edits leave behind: past it, only this run's are kept

_codes: dict[str, CodeType] = {}  # source text -> its code, as read and as compiled
_used: set[str] = set()  # texts this process compiled or reused
_changed = False
_path = _PATH


def _load(path: str) -> dict[str, CodeType]:
    """The cache file's entries; none when it is missing, damaged or of another kind."""
    try:
        with open(path, "rb") as f:
            loaded = marshal.loads(f.read())  # (marshal.load reads a file item by item: 20x)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if type(k) is str and type(v) is CodeType}


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """`exec`, with a text's code compiled once (as `exec` compiles it: no inherited
    `__future__` flags) and kept."""
    global _changed
    if type(source) is str and _ours(globals):
        code = _codes.get(source)
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            _codes[source] = code
            _changed = True
        _used.add(source)
        source = code
    elif type(source) is str:
        # as dataclasses' own exec compiles it, not with this module's __future__ flags
        source = compile(source, "<string>", "exec", dont_inherit=True)
    builtins.exec(source, globals, locals)


def _ours(globals: Any) -> bool:
    """Whether the class being made is the harness's (its module's namespace)."""
    name = globals.get("__name__") if type(globals) is dict else None
    return type(name) is str and (name == "harness" or name.startswith("harness."))


def install(path: str | None = None) -> None:
    """Read the cache (this install's, or `path`) and have `dataclasses` compile through
    it; the cache is saved when the process exits (`save` for one that ends by
    os._exit)."""
    global _path
    _path = path or _PATH
    _codes.update(_load(_path))
    if "inspect" not in sys.modules:
        sys.modules["inspect"] = _Deferred("inspect")
    import dataclasses

    if getattr(dataclasses, "exec", None) is not _exec:
        dataclasses.exec = _exec  # type: ignore[attr-defined]  # shadows the builtin there
        atexit.register(save)


class _Deferred(ModuleType):
    """A module imported on first use of any name it lacks."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)  # who holds the stand-in reads it directly now
        return getattr(real, name)


def save() -> bool:
    """Write the cache when this process compiled something new; False when it did not
    (nothing new, bytecode not written here, or the folder is not writable)."""
    global _changed
    if not _changed or sys.dont_write_bytecode:
        return False
    keep = _codes if len(_codes) <= _MAX_ENTRIES else {k: _codes[k] for k in _used}
    tmp = f"{_path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(_path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(keep))
        os.replace(tmp, _path)  # whole or not at all, for a concurrent reader
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    _changed = False
    return True
