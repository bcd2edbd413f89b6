"""What a program's log says about a run: the data components and peers hand the verdict.

A component or peer kind may know its program's documented intermittent bugs by their log
lines (Janus's SIP stack's ACK race, aioice's nomination race). A finding that proves one
(`known_race`) excuses the run's failures that are its consequences (`may_fail`), and the
verdict names it (harness/scenario/verdict.py); any other failure is still a FAIL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class LogFinding:
    """One thing a log shows, with its evidence in `text`."""

    text: str
    known_race: bool = False
    """A documented intermittent bug of the program under test, proven by the log."""
    may_fail: dict[str, str | None] | None = None
    """What the race's consequences are: check (name or `name[peer]` label) or step kind ->
    the regex its message or error must match (None: any); None: any failure (the race
    broke the whole call)."""
    source: str = ""
    """The component or peer whose log it is (the runner fills it in)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
