"""JUnit XML from scenario results (one testcase per run, steps and checks in the text)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.scenario.result import RunResult


def write_junit(results: list[RunResult], path: Path) -> None:
    suite = ET.Element(
        "testsuite",
        name="rtc-harness",
        tests=str(len(results)),
        failures=str(sum(1 for r in results if not r.passed and not r.skipped and not r.error)),
        errors=str(sum(1 for r in results if r.error)),
        skipped=str(sum(1 for r in results if r.skipped)),
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
        if r.skipped:
            ET.SubElement(case, "skipped", message=r.skip_reason)
        elif r.error:
            ET.SubElement(
                case, "error", message=r.error.splitlines()[0][:200]
            ).text = r.failure_text()
        elif not r.passed:
            tag = "skipped" if r.known_failure else "failure"
            msg = f"known failure: {r.known_failure}" if r.known_failure else "scenario failed"
            ET.SubElement(case, tag, message=msg).text = r.failure_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _outline(r: RunResult) -> str:
    """Steps and checks, one line each, so CI's test view tells the story without the pcaps."""
    lines = [f"step {s.index + 1} {s.kind}: {s.status} ({s.duration_s:.3f} s)" for s in r.steps]
    for c in r.checks:
        rfc = f" [{c.rfc}]" if c.rfc else ""
        lines.append(f"check {c.name}{rfc}: {'pass' if c.passed else 'FAIL'}: {c.message}")
    return "\n".join(lines)
