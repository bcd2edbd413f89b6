"""The ICE restarts a run made through a gateway, as its step logged them (ice-restarts.json).

The restart step writes when the peer's offer went out, when it applied the answer,
and the peer's ICE state changes with wall-clock times; checks pair these with
capture times (`Analysis.start_time` + a packet's `t`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOG_NAME = "ice-restarts.json"


@dataclass
class RestartRecord:
    peer: str
    offer_t: float
    answer_t: float
    """Wall clock when the peer applied the answer (the forum report's t=0)."""
    observed_until: float
    states: list[tuple[float, str]] = field(default_factory=list)
    """(wall clock, iceconnectionstate) of the peer from the offer until `observed_until`."""

    def first(self, state: str) -> float | None:
        """Seconds from the answer to the first `state` after it, or None."""
        for t, s in self.states:
            if s == state and t >= self.answer_t:
                return t - self.answer_t
        return None

    def timeline(self) -> list[str]:
        return [f"{t - self.answer_t:+.2f} s {s}" for t, s in self.states] + [
            f"{self.observed_until - self.answer_t:+.2f} s end of observation"
        ]


def append(run_dir: Path, rec: RestartRecord) -> None:
    path = run_dir / LOG_NAME
    old = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*old, asdict(rec)], indent=1))


def read(run_dir: Path) -> list[RestartRecord]:
    path = run_dir / LOG_NAME
    if not path.is_file():
        return []
    out = []
    entries: list[dict[str, Any]] = json.loads(path.read_text())
    for e in entries:
        e["states"] = [tuple(x) for x in e["states"]]
        out.append(RestartRecord(**e))
    return out
