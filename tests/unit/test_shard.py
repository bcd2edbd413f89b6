"""Shards: deterministic, complete, balanced by recorded durations; merges name what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.reports.merge import MANIFEST, merge
from harness.scenario.parallel import capacity, lab_cost
from harness.scenario.result import RunResult
from harness.scenario.shard import item_key, load_durations, parse_shard, plan, select

NAMES = [f"s{i:02d}" for i in range(13)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 13, 20])
def test_every_name_runs_in_exactly_one_shard(n: int) -> None:
    durations = {x: float(i % 5 + 1) for i, x in enumerate(NAMES)}
    for d in (None, durations):
        picked = sorted(i for k in range(1, n + 1) for i in select(NAMES, k, n, d))
        assert picked == list(range(len(NAMES)))


def test_without_durations_shards_interleave() -> None:
    assert plan(NAMES[:5], 2) == [1, 2, 1, 2, 1]


def test_durations_balance_the_slowest_shard() -> None:
    # one long scenario and many short ones: interleaving piles them up, LPT does not
    d = {"long": 60.0, **{f"short{i}": 10.0 for i in range(6)}}
    names = ["long", *[f"short{i}" for i in range(6)]]

    def slowest(shards: list[int]) -> float:
        return max(sum(d[x] for x, s in zip(names, shards, strict=True) if s == k) for k in (1, 2))

    assert slowest(plan(names, 2)) == 90.0
    assert slowest(plan(names, 2, d)) == 60.0


def test_plan_ignores_order_of_durations_and_guesses_unknown_names() -> None:
    d = {x: float(len(x)) for x in NAMES[:6]}
    again = dict(reversed(list(d.items())))
    assert plan(NAMES, 3, d) == plan(NAMES, 3, again)
    assert set(plan(NAMES, 3, d)) == {1, 2, 3}


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shard_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="K/N"):
        parse_shard(bad)


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "1.5"])
def test_bad_jobs_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`harness run --jobs abc` is refused as argparse refuses any bad option (exit 2, the
    option named) before anything is read or started; it raised TypeError."""
    from harness.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "no-such-scenario.yaml", "--jobs", bad])
    assert exc.value.code == 2
    assert f"--jobs/-j: takes a number >= 1 or nothing, not {bad!r}" in capsys.readouterr().err


def test_durations_from_junit_and_results(tmp_path: Path) -> None:
    (tmp_path / "j.xml").write_text(
        '<testsuite><testcase classname="tests.unit.test_x" name="test_a" time="2.5"/>'
        '<testcase classname="scenarios.p2p.calls.yaml" name="p2p-x" time="7"/></testsuite>'
    )
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"scenario": "sc", "timings": {"total": 4.0}}))
    d = load_durations([tmp_path])
    assert d["tests.unit.test_x::test_a"] == 2.5 and d["sc"] == 4.0
    assert item_key("tests/unit/test_x.py::test_a", "test_a", d) == "tests.unit.test_x::test_a"
    assert (
        item_key("scenarios/p2p/calls.yaml::p2p-x", "p2p-x", d) == "scenarios.p2p.calls.yaml::p2p-x"
    )
    assert item_key("scenarios/q.yaml::sc", "sc", d) == "sc"
    with pytest.raises(HarnessError, match="nowhere"):
        load_durations([tmp_path / "nowhere"])


def _shard_dir(root: Path, k: int, n: int, plan_: list[dict], ran: list[str]) -> Path:
    d = root / f"shard-{k}"
    for name in ran:
        r = RunResult(name, "x.yaml", 1, d / "runs" / f"run-{name}", passed=True)
        r.save()
    runs = [e["scenario"] for e in plan_ if e["shard"] == k]
    man = {"shard": [k, n], "plan": plan_, "runs": runs, "finished": 1.0}
    (d / MANIFEST).write_text(json.dumps(man))
    return d


def test_merge_names_missing_shards_and_runs(tmp_path: Path) -> None:
    p = [{"scenario": f"s{i}", "file": "x.yaml", "shard": i % 3 + 1} for i in range(6)]
    d1 = _shard_dir(tmp_path, 1, 3, p, ["s0", "s3"])
    d2 = _shard_dir(tmp_path, 2, 3, p, ["s1"])  # s4 never reported: its job died
    m = merge([d1, d2, tmp_path / "shard-3"])
    assert sorted(r.scenario for r in m.results) == ["s0", "s1", "s3"]
    assert m.missing_shards == [3]
    assert sorted(r.scenario for r in m.missing) == ["s2", "s4", "s5"]
    assert all(r.error.startswith("not run:") for r in m.missing)
    with pytest.raises(HarnessError, match="given twice"):
        merge([d1, d1])


def test_capacity_follows_the_heaviest_lab() -> None:
    light, heavy = lab_cost(["aiortc", "aiortc"], 1), lab_cost(["chromium", "chromium"], 2)
    assert capacity([light], 8, 64000).jobs > capacity([light, heavy], 8, 64000).jobs
    assert capacity([heavy], 64, 1500).jobs == 1  # memory-bound
