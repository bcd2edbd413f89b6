"""Objects a `harness analyze` process keeps until it exits instead of freeing them.

When the last reference to a walk's state goes (the analyser, the frames decoded in
bulk, the session model, the SDP reports), CPython frees its hundreds of thousands of
small objects one by one: about a tenth of a handshake-heavy run. The command's own
process prints its output and ends with os._exit, and the OS takes the memory back at
once, so it keeps them instead. Library callers (a scenario run analyses many captures
in one process) never enable this: their objects are freed as usual.
"""

from __future__ import annotations

_kept: list[object] | None = None


def enable() -> None:
    """Keep from now on (cli.process, a process about to exit, calls this)."""
    global _kept
    _kept = []


def keep(obj: object) -> None:
    """Hold `obj` to the end of the process when enabled; otherwise nothing."""
    if _kept is not None:
        _kept.append(obj)


def release() -> None:
    """Free what was kept so far: between files, memory stays bounded by one file's."""
    if _kept:
        _kept.clear()


def disable() -> None:
    """Free what was kept and keep nothing more (work whose objects would pile up)."""
    global _kept
    _kept = None


def kept() -> int:
    """How many objects are held (for tests)."""
    return len(_kept) if _kept is not None else 0
