"""Split work into N shards, the same way on every CI runner, balanced by past durations.

Every runner computes the whole plan from the same inputs (the collected names and,
optionally, a previous run's results), so no coordinator is needed and no name is
run twice or dropped. Without durations the split interleaves (k, k+N, ...); with
them it is longest-first onto the least loaded shard, so the N jobs end together.
"""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError


def parse_shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise ValueError(f"a shard is K/N with 1 <= K <= N, not {text!r}")
    return int(k), int(n)


def plan(names: Sequence[str], n: int, durations: dict[str, float] | None = None) -> list[int]:
    """The shard (1..n) of each name, in the order given."""
    if not durations:
        return [i % n + 1 for i in range(len(names))]
    known = [durations[x] for x in names if x in durations]
    guess = statistics.median(known) if known else 1.0  # a new name costs a typical one
    cost = {x: durations.get(x, guess) for x in names}
    load = [0.0] * n
    where: dict[str, int] = {}
    for name in sorted(set(names), key=lambda x: (-cost[x], x)):
        k = min(range(n), key=lambda i: (load[i], i))
        load[k] += cost[name] * names.count(name)
        where[name] = k + 1
    return [where[x] for x in names]


def select(
    names: Sequence[str], k: int, n: int, durations: dict[str, float] | None = None
) -> list[int]:
    """Indexes of the names that shard k of n runs."""
    return [i for i, s in enumerate(plan(names, n, durations)) if s == k]


def item_key(nodeid: str, name: str, durations: dict[str, float] | None) -> str:
    """A pytest item's name in the durations: JUnit's `classname::name`, or a scenario name."""
    parts = nodeid.split("::")
    path = parts[0][: -len(".py")] if parts[0].endswith(".py") else parts[0]
    key = "::".join([".".join([path.replace("/", "."), *parts[1:-1]]), parts[-1]])
    if durations and key not in durations and name in durations:
        return name  # recorded by `harness run` (result.json) under the scenario's name
    return key


def load_durations(paths: Sequence[Path]) -> dict[str, float]:
    """Seconds per name from previous runs: result.json trees (scenario name, all attempts
    summed) or JUnit XML files (test case name and `classname::name`)."""
    out: dict[str, float] = {}
    for root in paths:
        if not root.exists():
            raise HarnessError(f"{root}: no such file or directory (durations for --shard)")
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.name == "result.json":
                d = json.loads(f.read_text())
                t = float(d.get("timings", {}).get("total", 0.0))
                out[d["scenario"]] = out.get(d["scenario"], 0.0) + t
            elif f.suffix == ".xml" and f.is_file():
                _junit_durations(f, out)
    return out


def _junit_durations(path: Path, out: dict[str, float]) -> None:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise HarnessError(f"{path}: not JUnit XML ({exc})") from None
    for case in root.iter("testcase"):
        name, t = case.get("name", ""), float(case.get("time") or 0.0)
        if not name:
            continue
        base = name.split("[", 1)[0] if name.endswith("]") and "[" in name else name
        for key in {name, f"{case.get('classname', '')}::{name}"}:
            out[key] = out.get(key, 0.0) + t
        if base != name:  # a repeated scenario: attempt k is `name[k]`
            out[base] = out.get(base, 0.0) + t
