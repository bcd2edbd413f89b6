"""Reports from real runs: JUnit, allure (standalone and under pytest), ladder, timeline,
and the HTML conformance report read back in headless Chromium.

Two short real scenarios run once for the module: an aiortc call that passes, and the
same call with an expectation the wire contradicts (two DTLS handshakes where there
is one), so the failing report shows a real failed check with real evidence.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.pytest_plugin import lab_unavailable
from harness.scenario.result import RunResult

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
SCENARIO = """\
name: report-demo-${variant}
description: an aiortc call; `bad` expects two DTLS handshakes where the wire has one
topology: %s
matrix:
  v:
    - {variant: good, dtls: 1}
    - {variant: bad, dtls: 2}
peers:
  alice: {kind: aiortc, node: peer-a, audio: {tone_hz: 440}}
  bob: {kind: aiortc, node: peer-b, audio: {tone_hz: 660}}
steps:
  - call: {caller: alice, callee: bob, timeout: 20}
  - wait: {seconds: 1.5}
  - hangup: {peer: alice}
expect:
  - peer_received_tone: {peer: bob, hz: 440}
  - dtls_handshakes: {count: ${dtls}, capture: peer-a}
  - rtp_flowing: {both_ways: true, capture: peer-a}
""" % (REPO / "topologies" / "open-internet.yaml")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu"]


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "scenarios" / "report-demo.yaml"
    path.parent.mkdir()
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def results(scenario_file: Path) -> dict[str, RunResult]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    from harness.config.scenario import load_scenarios
    from harness.scenario.runner import run_scenario

    async def run_all() -> list[RunResult]:
        return [await run_scenario(sc) for sc in load_scenarios(scenario_file)]

    runs = asyncio.run(run_all())
    by = {r.scenario.rpartition("-")[2]: r for r in runs}
    assert by["good"].passed, by["good"].failure_text()
    assert not by["bad"].passed and not by["bad"].error, by["bad"].failure_text()
    return by


def test_junit_counts_match(results: dict[str, RunResult], tmp_path: Path) -> None:
    from harness.reports.junit import write_junit

    write_junit(list(results.values()), tmp_path / "j.xml")
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"report-demo-good", "report-demo-bad"}
    failure = cases["report-demo-bad"].find("failure")
    assert failure is not None and "dtls_handshakes" in (failure.text or "")
    assert cases["report-demo-good"].find("failure") is None
    assert "check dtls_handshakes [RFC" in (cases["report-demo-good"].findtext("system-out") or "")
    props = {p.get("name"): p.get("value") for p in cases["report-demo-good"].iter("property")}
    assert props["version bob"] == f"aiortc {importlib.metadata.version('aiortc')}"


def _allure(d: Path) -> dict[str, dict]:
    out = {}
    for f in d.glob("*-result.json"):
        data = json.loads(f.read_text())
        out[data["name"]] = data
    return out


def _check_allure_test(d: Path, test: dict, result: RunResult) -> None:
    names = [s["name"] for s in test["steps"]]
    assert names[: len(result.steps)] == [
        f"step {s.index + 1}: {s.kind} (line {s.line})" for s in result.steps
    ]
    checks = names[len(result.steps) :]
    assert len(checks) == len(result.checks) and all(n.startswith("check ") for n in checks)
    attached = {a["name"]: a for a in test["attachments"]}
    assert {"ladder diagram", "media timeline", "peer-a-eth0.pcap"} <= set(attached)
    ladder = (d / attached["ladder diagram"]["source"]).read_text()
    assert ladder.startswith("<svg") and "DTLS ClientHello" in ladder
    assert (d / attached["peer-a-eth0.pcap"]["source"]).stat().st_size > 1000
    evidence = test["steps"][len(result.steps) + 1]["attachments"][0]["source"]
    assert "ClientHello frame" in (d / evidence).read_text()


def test_allure_from_harness_run(results: dict[str, RunResult], tmp_path: Path) -> None:
    from harness.reports.allure import write_result

    for r in results.values():
        write_result(r, tmp_path)
    tests = _allure(tmp_path)
    assert tests["report-demo-good"]["status"] == "passed"
    bad = tests["report-demo-bad"]
    assert bad["status"] == "failed"
    failed = [s["name"] for s in bad["steps"] if s["status"] == "failed"]
    assert len(failed) == 1 and failed[0].startswith("check dtls_handshakes [RFC 6347")
    assert any(a["name"] == "failure" for a in bad["attachments"])
    for name, r in results.items():
        _check_allure_test(tmp_path, tests[f"report-demo-{name}"], r)
    env = (tmp_path / "environment.properties").read_text()
    assert "topology=open-internet" in env and "seed=" in env
    # what each peer's program said it was, in this run (harness/components/versions.py)
    assert f"version.alice=aiortc {importlib.metadata.version('aiortc')}" in env


def test_allure_under_pytest(scenario_file: Path, tmp_path: Path) -> None:
    """The YAML scenario as a pytest item with allure-pytest: the same steps and attachments."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    alluredir = tmp_path / "allure"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(scenario_file), "-k", "good", "-q",
         "-p", "no:cacheprovider", f"--alluredir={alluredir}", f"--rootdir={scenario_file.parent}"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = _allure(alluredir)
    test = tests["report-demo-good"]
    assert test["status"] == "passed"
    result = RunResult.load(
        Path(next(p["value"] for p in test["parameters"] if p["name"] == "run_dir"))
    )
    _check_allure_test(alluredir, test, result)


def _ladder_labels(svg_text: str) -> list[tuple[str, str]]:
    root = ET.fromstring(svg_text)
    ns = "{http://www.w3.org/2000/svg}"
    return [(g.get("data-kind", ""), g.get("data-label", "")) for g in root.iter(f"{ns}g")]


def test_ladder_messages_in_order(results: dict[str, RunResult]) -> None:
    from harness.reports.ladder import ladder_svg
    from harness.reports.runview import RunView

    rows = _ladder_labels(ladder_svg(RunView.open(results["good"])))
    labels = [label for _, label in rows]

    def first(prefix: str) -> int:
        return next(i for i, label in enumerate(labels) if label.startswith(prefix))

    # what the protocols order; step boundaries race with packets by a few ms
    order = ["step 1: call", "ICE g1 host", "DTLS ClientHello", "DTLS done SRTP", "first RTP",
             "last RTP"]  # fmt: skip
    idx = [first(p) for p in order]
    assert idx == sorted(idx), list(zip(order, idx, strict=True))
    assert first("step 1: call") < first("step 2: wait") < first("step 3: hangup")
    ice = [label for kind, label in rows if kind == "ice"]
    assert len(ice) == 1 and "nominated" in ice[0]  # one arrow per pair, not per check
    assert sum(label.startswith("first RTP") for label in labels) == 2  # both directions
    assert any(label == "alice: pc connected" for label in labels)


def test_timeline_has_both_streams(results: dict[str, RunResult]) -> None:
    from harness.reports.runview import RunView
    from harness.reports.timeline import timeline_svg

    view = RunView.open(results["good"])
    root = ET.fromstring(timeline_svg(view))
    ns = "{http://www.w3.org/2000/svg}"
    lines = [p.get("data-stream") for p in root.iter(f"{ns}polyline")]
    assert len(lines) == 2 and {s.label for s in view.streams} == set(lines)
    rates = [
        float(pt.split(",")[1])
        for p in root.iter(f"{ns}polyline")
        for pt in p.attrib["points"].split()
    ]
    assert min(rates) < max(rates)  # the rate is drawn, not a flat line at zero
    marks = [g.attrib["data-label"] for g in root.iter(f"{ns}g") if g.get("class") == "marker"]
    assert [m.split(":")[0] for m in marks] == ["step 1", "step 2", "step 3"]


def test_html_report_in_chromium(results: dict[str, RunResult], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from harness.reports.html import build_report

    index = build_report(list(results.values()), tmp_path / "report")
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["counts"]["pass"] == 1 and data["counts"]["fail"] == 1
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(index.as_uri())
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            matrix = page.eval_on_selector_all(
                "#matrix tbody tr",
                """rows => rows.map(r => ({scenario: r.dataset.scenario, verdict: r.dataset.verdict,
                    cells: Object.fromEntries([...r.querySelectorAll('td.cell')]
                        .map(c => [c.dataset.column, c.dataset.state]))}))""",
            )
            bad = page.locator("section.run[data-verdict=fail]")
            failed_rows = bad.locator("tr.check-row[data-passed=false]")
            n_failed = failed_rows.count()
            failed_check = failed_rows.first.get_attribute("data-check")
            evidence = failed_rows.first.locator("pre.evidence").inner_text()
            ladder_width = bad.locator("img.ladder").evaluate("i => i.naturalWidth")
            telling = bad.locator(".telling").inner_text()
            bad.screenshot(path=str(tmp_path / "failed.png"))
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 20_000
    got = {row["scenario"]: row for row in matrix}
    assert set(got) == {r.scenario for r in results.values()}
    for r in results.values():
        row = got[r.scenario]
        assert row["verdict"] == ("pass" if r.passed else "fail")
        assert row["cells"]["steps"] == "pass"
        states = {k: v for k, v in row["cells"].items() if k != "steps" and v != "none"}
        assert sorted(states.values()) == sorted("pass" if c.passed else "fail" for c in r.checks)
        assert states["dtls_handshakes"] == ("pass" if r.passed else "fail")
    assert failed_check == "dtls_handshakes" and n_failed == 1
    assert "ClientHello frame" in evidence and "1 != 2" in telling
    assert ladder_width > 300  # the ladder diagram is shown inline, loaded from disk
