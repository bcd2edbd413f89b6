"""JUnit XML from scenario results (one testcase per run, steps and checks in the text)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.scenario.result import RunResult
from harness.scenario.verdict import FAIL, UNSUPPORTED, XFAIL, XPASS, Verdict, counts, verdict_of


def write_junit(
    results: list[RunResult], path: Path, rates: dict[str, Verdict] | None = None
) -> None:
    """One testcase per run. Known failures that reproduced and unsupported runs are
    `skipped` (with the reason); a known failure that passed is a failure. `rates`: the
    failure-rate verdicts of intermittent known failures, one testcase each."""
    rates = rates or {}
    n = counts(results)
    errors = sum(1 for r in results if verdict_of(r).state == FAIL and r.error)
    suite = ET.Element(
        "testsuite",
        name="rtc-harness",
        tests=str(len(results) + len(rates)),
        failures=str(n[FAIL] + n[XPASS] - errors + sum(v.bad for v in rates.values())),
        errors=str(errors),
        skipped=str(n[XFAIL] + n[UNSUPPORTED] + sum(not v.bad for v in rates.values())),
        time=f"{sum(r.timings.get('total', 0.0) for r in results):.3f}",
    )
    for r in results:
        name = r.scenario + (f"[{r.attempt}]" if r.attempt > 1 else "")
        case = ET.SubElement(
            suite,
            "testcase",
            classname=Path(r.file).stem,
            name=name,
            time=f"{r.timings.get('total', 0.0):.3f}",
        )
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="seed", value=str(r.seed))
        ET.SubElement(props, "property", name="run_dir", value=str(r.run_dir))
        ET.SubElement(props, "property", name="topology", value=r.environment.get("topology", ""))
        for key, value in r.environment.items():
            if key.startswith("version "):  # what ran, as each program reported it
                ET.SubElement(props, "property", name=key, value=value)
        ET.SubElement(case, "system-out").text = _outline(r)
        v = verdict_of(r)
        ET.SubElement(props, "property", name="verdict", value=v.state)
        if v.state == UNSUPPORTED:
            ET.SubElement(case, "skipped", message=f"unsupported: {v.reason}")
        elif v.state == XFAIL:
            ET.SubElement(case, "skipped", message=v.reason[:300]).text = r.failure_text()
        elif v.state == XPASS:
            ET.SubElement(case, "failure", message=v.reason[:300]).text = r.failure_text()
        elif v.state == FAIL and r.error:
            ET.SubElement(
                case, "error", message=(v.reason or r.error).splitlines()[0][:300]
            ).text = r.failure_text()
        elif v.state == FAIL:
            msg = v.reason or "scenario failed"
            ET.SubElement(case, "failure", message=msg[:300]).text = r.failure_text()
    for name, v in rates.items():
        file = next((r.file for r in results if r.scenario == name), "")
        case = ET.SubElement(
            suite, "testcase", classname=Path(file).stem, name=f"{name}[failure rate]", time="0"
        )
        ET.SubElement(case, "failure" if v.bad else "skipped", message=v.reason[:300])
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _outline(r: RunResult) -> str:
    """Steps and checks, one line each, so CI's test view tells the story without the pcaps."""
    lines = [f"step {s.index + 1} {s.kind}: {s.status} ({s.duration_s:.3f} s)" for s in r.steps]
    for c in r.checks:
        rfc = f" [{c.rfc}]" if c.rfc else ""
        lines.append(f"check {c.name}{rfc}: {'pass' if c.passed else 'FAIL'}: {c.message}")
    return "\n".join(lines)
