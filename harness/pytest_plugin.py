"""pytest plugin: lab fixtures, and YAML scenarios collected as test items.

Registered through the `pytest11` entry point, so any project that installs
rtc-harness gets `lab` / `make_lab` fixtures and can keep scenarios as YAML.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from harness.errors import ConfigError
from harness.scenario.verdict import FAIL, UNSUPPORTED, XFAIL, XPASS, verdict_of

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr  # what pytest's own repr_failure returns

    from harness.lab import Lab

REPO_TOPOLOGIES = Path(__file__).resolve().parent.parent / "topologies"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rtc-harness")
    group.addoption("--shard", help="K/N: run only the K-th of N shards of the tests (CI jobs)")
    group.addoption(
        "--shard-durations",
        action="append",
        type=Path,
        help="a previous run's JUnit XML or result.json dir: balance --shard by its durations",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--shard K/N: the same deterministic split as `harness run --shard` (scenario/shard.py)."""
    text = config.getoption("shard", None)
    if not text:
        return
    from harness.scenario.shard import item_key, load_durations, parse_shard, select

    try:
        k, n = parse_shard(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--shard: {exc}") from None
    paths = config.getoption("shard_durations") or []
    durations = load_durations(paths) if paths else None
    keys = [item_key(item.nodeid, item.name, durations) for item in items]
    keep = set(select(keys, k, n, durations))
    config.hook.pytest_deselected(items=[it for i, it in enumerate(items) if i not in keep])
    items[:] = [it for i, it in enumerate(items) if i in keep]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "topology(name): topology the `lab` fixture builds")
    config.addinivalue_line("markers", "lab: needs root and network namespaces")


def lab_unavailable() -> str | None:
    """Why labs cannot run here, or None."""
    if os.geteuid() != 0:
        return "labs need root (network namespaces); run as root"
    if not os.path.exists("/usr/sbin/ip") and not os.path.exists("/sbin/ip"):
        return "iproute2 is missing (apt-get install iproute2)"
    return None


def resolve_topology(ref: str | Path) -> Path:
    p = Path(ref)
    if p.is_file():
        return p
    for base in (Path.cwd() / "topologies", REPO_TOPOLOGIES):
        cand = base / f"{ref}.yaml"
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"no topology {ref!r} (a path, or a name in topologies/)")


class MakeLab(Protocol):
    """The `make_lab` fixture: the lab of `topology` (a path, or a name in topologies/), up;
    `kwargs` go to Lab (name, run_dir, seed, ...)."""

    def __call__(self, topology: str | Path, **kwargs: Any) -> Lab: ...


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[MakeLab]:
    """Factory: `lab = make_lab("port-restricted")`; every lab is torn down after the test."""
    from harness.lab import Lab

    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    labs: list[Lab] = []

    def make(topology: str | Path, **kwargs: Any) -> Lab:
        lab = Lab(resolve_topology(topology), **kwargs)
        labs.append(lab)
        return lab.up()

    try:
        yield make
    finally:
        for lab in reversed(labs):
            lab.down()


@pytest.fixture
def lab(request: pytest.FixtureRequest, make_lab: MakeLab) -> Lab:
    """The lab of the test's `@pytest.mark.topology(...)` (default: open-internet)."""
    marker = request.node.get_closest_marker("topology")
    return make_lab(marker.args[0] if marker else "open-internet")


# ---------------------------------------------------------------- YAML scenarios


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and "scenarios" in file_path.parts:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from harness.config.scenario import load_scenarios

        for scenario in load_scenarios(self.path):  # a ConfigError fails collection with file:line
            item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
            if not scenario.spec.ci and not os.environ.get("HARNESS_ALL_SCENARIOS"):
                item.add_marker(
                    pytest.mark.skip(reason="not in the matrix's CI cells: `harness run` runs it")
                )
            yield item


class ScenarioItem(pytest.Item):
    """One YAML scenario: validated, then run by the scenario runner."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        scenario = self.scenario
        from harness.scenario.runner import run_scenario_sync  # unsupported here: a verdict

        result = run_scenario_sync(scenario)
        if self.config.getoption("allure_report_dir", None):
            from harness.reports.allure import fill_pytest_test, write_environment

            if fill_pytest_test(result):
                write_environment(result, Path(self.config.getoption("allure_report_dir")))
        self.user_properties.append(("seed", result.seed))
        self.user_properties.append(("run_dir", str(result.run_dir)))
        self.user_properties.append(("verdict", result.verdict))
        v = verdict_of(result)
        if v.state == UNSUPPORTED:
            pytest.skip(f"unsupported: {v.reason}")
        if v.state == XFAIL:
            pytest.xfail(f"{v.reason}\n{result.failure_text()}")
        if v.state == XPASS:
            raise ScenarioFailed(f"POSSIBLY FIXED: {v.reason}\n{result.failure_text()}")
        if v.state == FAIL:
            raise ScenarioFailed(result.failure_text())

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ConfigError | ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.name}"


# ---------------------------------------------------------------- -n N oversubscribing

_CHECKED = pytest.StashKey[bool]()


def _xdist_workers(config: pytest.Config) -> int:
    """How many xdist workers this run has (or would have, under --collect-only)."""
    if config.getoption("dist", "no") == "no":
        return 0
    return len(config.getoption("tx", None) or [])


def _warn_if_oversubscribed(config: pytest.Config, scenarios: list[Any]) -> None:
    """Say once, in the controller, when -n N runs more labs at once than the machine holds
    (the same judgement and words as `harness run --jobs N`)."""
    if config.stash.get(_CHECKED, False) or hasattr(config, "workerinput"):
        return
    config.stash[_CHECKED] = True
    workers = _xdist_workers(config)
    if not scenarios or workers <= 1:
        return
    from harness.scenario.parallel import holds, oversubscribed

    cap = holds(scenarios)
    warning = (
        oversubscribed("-n", workers, cap) if min(workers, len(scenarios)) > cap.jobs else None
    )
    if warning:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(warning, yellow=True, bold=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Without workers running (--collect-only, -n 0), the items are collected here."""
    runs = [
        it.scenario
        for it in session.items
        if isinstance(it, ScenarioItem) and it.get_closest_marker("skip") is None
    ]
    if runs:
        _warn_if_oversubscribed(session.config, runs)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """The xdist controller collects nothing itself: a worker's collection names the items."""
    config = node.config
    if config.stash.get(_CHECKED, False):
        return
    from harness.config.scenario import load_scenarios

    wanted: dict[str, set[str]] = {}
    for nodeid in ids:
        file, sep, name = nodeid.partition("::")
        if sep and file.endswith((".yaml", ".yml")):
            wanted.setdefault(file, set()).add(name)
    runs = []
    for file, names in wanted.items():
        try:
            found = load_scenarios(config.rootpath / file)
        except ConfigError:
            continue  # the workers report it, with file and line
        every = bool(os.environ.get("HARNESS_ALL_SCENARIOS"))
        runs += [sc for sc in found if sc.name in names and (sc.spec.ci or every)]
    _warn_if_oversubscribed(config, runs)


class ScenarioFailed(Exception):
    """The scenario ran and a step or an expectation failed (evidence in the message)."""
