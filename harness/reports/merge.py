"""One report from many machines: merge the `harness run --out DIR` of every shard.

Each shard's manifest names the whole plan (every scenario and its shard), so the
merge knows what should be there: a shard whose directory is absent, or a
scenario a shard planned but has no result for (its job died), becomes a
"missing" row, a broken allure result and a JUnit error; never a silent gap.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.scenario.result import RunResult, read_result

MANIFEST = "manifest.json"


@dataclass
class Merged:
    results: list[RunResult] = field(default_factory=list)
    missing: list[RunResult] = field(default_factory=list)
    shards: int = 0
    missing_shards: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_results(root: Path) -> list[RunResult]:
    """Every result.json under `root`, rebased where it lies now (CI moves artifacts)."""
    out = []
    for d, _, files in sorted(os.walk(root, followlinks=True)):
        if "result.json" not in files:
            continue
        r = read_result(Path(d) / "result.json")
        here = Path(d).absolute()
        if r.run_dir != here:
            old = r.run_dir
            r.pcaps = [
                str(here / os.path.relpath(p, old)) if Path(p).is_relative_to(old) else p
                for p in r.pcaps
            ]
            r.run_dir = here
        out.append(r)
    return out


def merge(dirs: list[Path]) -> Merged:
    """Results of every shard directory, and placeholders for what never reported."""
    m = Merged()
    by_shard: dict[int, tuple[Path, dict[str, Any]]] = {}
    plan: list[dict[str, Any]] | None = None
    for d in dirs:
        if not d.is_dir():
            m.notes.append(f"{d}: not a directory (a shard's artifacts were not downloaded?)")
            continue
        path = d / MANIFEST
        if not path.is_file():  # plain results (no shards): take them as they are
            m.results += load_results(d)
            continue
        man = json.loads(path.read_text())
        k, n = man["shard"]
        if m.shards and n != m.shards or plan is not None and man["plan"] != plan:
            raise HarnessError(f"{path}: shard {k}/{n} ran another plan than the other shards")
        if k in by_shard:
            raise HarnessError(f"shard {k}/{n} given twice: {by_shard[k][0]} and {d}")
        m.shards, plan = n, man["plan"]
        by_shard[k] = (d, man)
    for k, (d, man) in sorted(by_shard.items()):
        got = load_results(d / "runs") if (d / "runs").is_dir() else []
        m.results += got
        if "finished" not in man:
            m.notes.append(f"shard {k}/{m.shards} ({d}) started but did not finish")
        have = {r.scenario for r in got}
        for name in man["runs"]:
            if name not in have:
                entry = next(e for e in man["plan"] if e["scenario"] == name)
                m.missing.append(_missing(entry, f"shard {k}/{m.shards} has no result for it"))
    m.missing_shards = [k for k in range(1, m.shards + 1) if k not in by_shard]
    for entry in plan or []:
        if entry["shard"] in m.missing_shards:
            why = f"shard {entry['shard']}/{m.shards} did not report"
            m.missing.append(_missing(entry, why))
    return m


def _missing(entry: dict[str, Any], why: str) -> RunResult:
    r = RunResult(entry["scenario"], entry["file"], 0, Path(f"missing-{entry['scenario']}"))
    r.error = f"not run: {why}"
    return r


def merge_allure(dirs: list[Path], out: Path) -> int:
    """Copy every shard's allure results into one set (their names are unique uuids)."""
    out.mkdir(parents=True, exist_ok=True)
    props: dict[str, list[str]] = {}
    n = 0
    for d in dirs:
        src = d / "allure"
        if not src.is_dir():
            continue
        for f in sorted(src.iterdir()):
            if f.name == "environment.properties":
                for line in f.read_text().splitlines():
                    k, sep, v = line.partition("=")
                    for part in v.split(", ") if sep else []:
                        vals = props.setdefault(k.strip(), [])
                        if part.strip() not in vals:
                            vals.append(part.strip())
            elif f.is_file():
                shutil.copy2(f, out / f.name)
                n += f.name.endswith("-result.json")
    if props:
        (out / "environment.properties").write_text(
            "".join(f"{k}={', '.join(v)}\n" for k, v in sorted(props.items()))
        )
    return n


def merge_junit(paths: list[Path], out: Path) -> int:
    """One JUnit file from many (pytest shards or phases): every <testsuite> kept whole."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites")
    for p in paths:
        if not p.is_file():
            raise HarnessError(f"{p}: no JUnit file (a shard or phase did not report)")
        top = ET.parse(p).getroot()
        for suite in [top] if top.tag == "testsuite" else list(top.iter("testsuite")):
            suite.set("name", f"{suite.get('name', 'pytest')} ({p.stem})")
            root.append(suite)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, 0)) for s in root)))
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return int(root.get("tests", 0))


if __name__ == "__main__":  # python -m harness.reports.merge OUT.xml IN.xml...
    import sys

    print(f"{merge_junit([Path(a) for a in sys.argv[2:]], Path(sys.argv[1]))} test cases")
