"""Allure results for a scenario run: one step per scenario step and per check, with the
pcaps, SDPs, logs, ladder and timeline attached, and environment properties.

The same builder serves `harness run --alluredir` (files written with allure's own
file logger) and pytest with allure-pytest (the steps go into the test allure-pytest
opened for the item, attachments through its hooks), so both give the same report.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import (
    Attachment,
    Label,
    Parameter,
    Status,
    StatusDetails,
    TestResult,
    TestStepResult,
)
from allure_commons.types import AttachmentType

from harness.reports.ladder import ladder_svg
from harness.reports.runview import RunView
from harness.reports.timeline import timeline_svg
from harness.scenario.result import RunResult, check_label
from harness.scenario.verdict import FAIL, PASS, UNSUPPORTED, XFAIL, verdict_of

ReportFile = Callable[..., Any]  # (source=..., file_name=...)
ReportData = Callable[..., Any]  # (body=..., file_name=...)


class Attacher:
    """Writes one attachment file and returns the reference a result or step keeps."""

    def __init__(self, report_file: ReportFile, report_data: ReportData) -> None:
        self.report_file = report_file
        self.report_data = report_data

    def __call__(self, body: Path | str | bytes, name: str, kind: AttachmentType) -> Attachment:
        file_name = f"{uuid.uuid4()}-attachment.{kind.extension}"
        if isinstance(body, Path):
            self.report_file(source=str(body), file_name=file_name)
        else:
            self.report_data(body=body, file_name=file_name)
        return Attachment(name=name, source=file_name, type=kind.mime_type)


def _ms(t: float) -> int:
    return int(t * 1000)


def _status(ok: bool, known: bool) -> str:
    return Status.PASSED if ok else (Status.SKIPPED if known else Status.FAILED)


def steps(result: RunResult, attach: Attacher) -> list[TestStepResult]:
    """Scenario steps, then checks, each with its timing, parameters and evidence."""
    t0, known = result.t0, verdict_of(result).state == XFAIL
    out = []
    for s in result.steps:
        st = TestStepResult(
            name=f"step {s.index + 1}: {s.kind}" + (f" (line {s.line})" if s.line else ""),
            status=Status.SKIPPED
            if s.status == "skipped"
            else _status(s.status == "passed", known),
            start=_ms(t0 + s.started_s),
            stop=_ms(t0 + s.started_s + s.duration_s),
            parameters=[Parameter(name=k, value=str(v)) for k, v in s.detail.items()],
        )
        if s.error:
            st.statusDetails = StatusDetails(message=s.error)
        out.append(st)
    end = max((st.stop or 0 for st in out), default=_ms(t0))
    taken: set[str] = set()
    for c in result.checks:
        label = check_label(c, taken)
        rfc = f" [{c.rfc}]" if c.rfc else ""
        st = TestStepResult(
            name=f"check {label}{rfc}: {c.message}",
            status=_status(c.passed, known),
            start=end,
            stop=end,
            parameters=[Parameter(name=k, value=str(v)) for k, v in c.params.items()],
        )
        if c.evidence:
            st.attachments.append(attach("\n".join(c.evidence), "evidence", AttachmentType.TEXT))
        if not c.passed:
            st.statusDetails = StatusDetails(message=c.message, trace="\n".join(c.evidence))
        out.append(st)
    return out


def attachments(result: RunResult, attach: Attacher) -> list[Attachment]:
    """Ladder, timeline, SDPs seen on the wire, pcaps, and log tails of a failed run."""
    out = []
    view = RunView.open(result)
    try:
        out.append(attach(ladder_svg(view), "ladder diagram", AttachmentType.SVG))
        out.append(attach(timeline_svg(view), "media timeline", AttachmentType.SVG))
    except Exception as exc:  # a report must not hide the run's own verdict
        out.append(attach(f"{type(exc).__name__}: {exc}", "diagrams failed", AttachmentType.TEXT))
    seen: set[str] = set()
    for c in view.captures:
        for ev in c.analysis.sdp:
            digest = hashlib.sha1(ev.sdp.text.encode()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            name = f"SDP {ev.type} ({ev.source}) {view.node_of(ev.src)}->{view.node_of(ev.dst)}"
            out.append(attach(ev.sdp.text, name, AttachmentType.TEXT))
    for p in map(Path, result.pcaps):
        if p.is_file():
            out.append(attach(p, p.name, AttachmentType.PCAP))
    if not result.passed:
        out.append(attach(result.failure_text(), "failure", AttachmentType.TEXT))
        for name, tail in result.logs.items():
            if tail:
                out.append(attach(tail, f"log tail: {name}", AttachmentType.TEXT))
    return out


def labels(result: RunResult) -> list[Label]:
    topo = result.environment.get("topology", "")
    out = [
        Label(name="framework", value="rtc-harness"),
        Label(name="suite", value=Path(result.file).stem),
        Label(name="subSuite", value=topo),
        Label(name="tag", value=topo),
    ]
    kinds = {v.partition(" on ")[0] for k, v in result.environment.items() if " on " in v}
    out += [Label(name="tag", value=k) for k in sorted(kinds)]
    return out


def parameters(result: RunResult) -> list[Parameter]:
    return [
        Parameter(name="seed", value=str(result.seed)),
        Parameter(name="attempt", value=str(result.attempt)),
        Parameter(name="run_dir", value=str(result.run_dir), excluded=True),
    ]


def write_result(result: RunResult, alluredir: Path) -> Path:
    """`harness run --alluredir`: one allure test result per run."""
    logger = AllureFileLogger(alluredir)
    attach = Attacher(logger.report_attached_file, logger.report_attached_data)
    uid = str(uuid.uuid4())
    v = verdict_of(result)
    status = {PASS: Status.PASSED, XFAIL: Status.SKIPPED, UNSUPPORTED: Status.SKIPPED}.get(
        v.state, Status.FAILED
    )
    if v.state == FAIL and result.error:
        status = Status.BROKEN
    test = TestResult(
        uuid=uid,
        name=result.scenario,
        fullName=f"{result.file}::{result.scenario}",
        historyId=hashlib.md5(f"{result.file}::{result.scenario}".encode()).hexdigest(),
        status=status,
        start=_ms(result.t0 - result.timings.get("lab_up", 0.0)) if result.t0 else None,
        labels=labels(result),
        parameters=parameters(result),
    )
    test.stop = _ms(result.t0 + sum(s.duration_s for s in result.steps)) if result.t0 else None
    if v.state != PASS or v.reason:
        message = f"{v.state}: {v.reason}" if v.reason else "scenario failed"
        test.statusDetails = StatusDetails(
            known=v.state == XFAIL, message=message, trace=result.failure_text()
        )
    test.steps = steps(result, attach)
    test.attachments = attachments(result, attach)
    logger.report_result(test)
    write_environment(result, alluredir)
    return alluredir


def fill_pytest_test(result: RunResult) -> bool:
    """Under allure-pytest: add steps, attachments, labels to the item's running test."""
    try:
        from allure_commons import plugin_manager
    except ImportError:
        return False
    listener = next((p for p in plugin_manager.get_plugins() if hasattr(p, "allure_logger")), None)
    test = listener.allure_logger.get_test(None) if listener is not None else None
    if test is None:
        return False
    hook = plugin_manager.hook
    attach = Attacher(hook.report_attached_file, hook.report_attached_data)
    test.steps += steps(result, attach)
    test.attachments += attachments(result, attach)
    test.labels += [lb for lb in labels(result) if lb.name in ("tag", "framework")]
    test.parameters += parameters(result)
    return True


def environment(result: RunResult) -> dict[str, str]:
    """Run properties, with `version.<name>` for every component and peer: the version
    its program reported in this run (the runner records them)."""
    env = {k.replace(" ", "."): v for k, v in result.environment.items()}
    env["engine"] = (
        ",".join(sorted({str(v.get("engine")) for v in result.links.values()})) or "none"
    )
    return env


def write_environment(result: RunResult, alluredir: Path) -> None:
    """Merge this run's properties into environment.properties (the allure Environment tab)."""
    path = alluredir / "environment.properties"
    props: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            k, sep, v = line.partition("=")
            if sep:
                props[k.strip()] = v.strip()
    for k, v in environment(result).items():
        old = props.get(k)
        props[k] = v if not old or v in old.split(", ") else f"{old}, {v}"
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(props.items())))
