"""A bounded memo of a pure function: what an SDP line or section says, read once.

A capture of many calls repeats the same codec lines and certificate fingerprints call
after call. The key is everything the result depends on, so a memo shared by every
capture a process reads changes no result; past `limit` entries it starts again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Bounded(dict[K, V], Generic[K, V]):
    """A dict of results that starts again past `limit` entries: memory stays bounded."""

    def __init__(self, limit: int = 4096) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: K, value: V) -> V:
        """`value`, kept by `key` (everything it depends on)."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


class Memo(Bounded[K, V]):
    """memo[key] is fn(key), worked out on the first look-up (a hit is a plain dict's)."""

    def __init__(self, fn: Callable[[K], V], limit: int = 4096) -> None:
        super().__init__(limit)
        self.fn = fn

    def __missing__(self, key: K) -> V:
        return self.keep(key, self.fn(key))
