"""Run a scenario: lab up, captures, components, peers, steps, checks, tear-down.

Tear-down runs whatever happens (failure, timeout, Ctrl-C), through one
AsyncExitStack every started resource registers with; the result keeps the evidence: step errors with the peers' last events, component log tails,
the pcaps, and every check's evidence lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config.scenario import IceServerRef, Scenario
from harness.config.validate import capture_points
from harness.errors import ComponentError, HarnessError, UnsupportedError
from harness.lab import Lab
from harness.logfinding import LogFinding
from harness.scenario.context import ScenarioContext
from harness.scenario.needs import unsupported_reasons
from harness.scenario.result import CheckResult, RunResult, StepResult
from harness.scenario.stallwatch import StallWatch, stalls_inside
from harness.scenario.verdict import decide
from harness.scenario.watchdog import guarded

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


async def run_scenario(
    scenario: Scenario, *, seed: int | None = None, attempt: int = 1, progress: Progress = _noop
) -> RunResult:
    spec = scenario.spec
    seed = (
        seed
        if seed is not None
        else (spec.seed if spec.seed is not None else secrets.randbelow(2**31))
    )
    lab = Lab(scenario.topology, seed=seed)
    result = RunResult(
        spec.name,
        str(scenario.path),
        seed,
        lab.run_dir,
        attempt=attempt,
        known_failure=spec.known_failure.reason if spec.known_failure else None,
    )
    result.environment = {
        "topology": scenario.topology.name,
        "runtime": _runtime_of(scenario),
        "seed": str(seed),
        **{f"peer {n}": f"{p.kind} on {p.node}" for n, p in spec.peers.items()},
        **{f"component {n}": f"{c.kind} on {c.node}" for n, c in spec.components.items()},
    }
    t_start = time.perf_counter()
    teardown = [0.0]
    try:
        missing = unsupported_reasons(scenario)
        if missing:
            fixes = "; ".join(f for _, f in missing if f)
            raise UnsupportedError("; ".join(r for r, _ in missing), fix=fixes)
        # Every resource registers its tear-down with this stack as it starts; leaving it
        # (normally, on a failure, a timeout or Ctrl-C) undoes them in reverse order.
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(lab.down)
            try:
                await _run(scenario, lab, seed, result, stack, progress)
            finally:
                teardown[0] = time.perf_counter()
    except UnsupportedError as exc:
        result.skipped, result.skip_reason = True, str(exc)
    except HarnessError as exc:
        result.error = result.error or str(exc)
    except Exception as exc:  # a bug or an unexpected failure: still torn down, still reported
        result.error = result.error or f"{type(exc).__name__}: {exc}"
    now = time.perf_counter()
    if teardown[0]:
        result.timings["teardown"] = now - teardown[0]
    result.timings["total"] = now - t_start
    failed_steps = any(s.status == "failed" for s in result.steps)
    result.passed = (
        not result.skipped
        and not result.error
        and not failed_steps
        and all(c.passed for c in result.checks)
    )
    v = decide(result, spec.known_failure)
    result.verdict, result.verdict_reason, result.race_verdict = v.state, v.reason, v.race
    if result.passed:
        result.logs = {}
    result.save()
    return result


async def _run(
    scenario: Scenario,
    lab: Lab,
    seed: int,
    result: RunResult,
    stack: contextlib.AsyncExitStack,
    progress: Progress,
) -> None:
    """Lab up to checks; everything started is registered with `stack`."""
    spec = scenario.spec
    progress(f"lab {lab.name} up ({scenario.topology.name})")
    # the container engine's client (SDK import, ping) warms up while the lab comes up
    warm = asyncio.get_running_loop().run_in_executor(None, _warm_engine, scenario)
    lab.up()
    result.timings["lab_up"] = lab.timings["up"]
    ctx = ScenarioContext(scenario, lab, seed, teardown=stack)
    # registered first, so it runs last: the versions the programs reported, even on failure
    stack.callback(
        lambda: result.environment.update({f"version {n}": v for n, v in ctx.versions.items()})
    )
    await _apply_links(ctx, result)
    # bad images fail before anything starts; meanwhile the captures get ready
    t = time.perf_counter()
    await warm
    images = asyncio.create_task(asyncio.to_thread(_check_images, ctx))
    capture = lab.capture(capture_points(spec, scenario.topology))  # what validation checked
    stack.callback(_quietly(capture.stop))
    await images
    result.timings["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    await _start_components(ctx, result, progress)
    result.timings["components_ready"] = time.perf_counter() - t
    t = time.perf_counter()
    await _start_peers(ctx, result, progress)
    result.timings["peers_ready"] = time.perf_counter() - t
    ctx.t0 = result.t0 = time.time()
    await _start_timeline(ctx, result)
    t = time.perf_counter()
    watch = StallWatch()
    watch.start()
    try:
        await _run_steps(ctx, result, progress)
    finally:
        seen = watch.stop()
        result.host = {**seen.to_json(), "summary": seen.summary(ctx.t0)}
    result.timings["steps"] = time.perf_counter() - t
    result.peer_stats = ctx.peer_stats
    result.peer_events = {
        n: [
            {"t": round(e.t - ctx.t0, 4), "kind": e.kind, "data": e.data}
            for e in sorted([*p.events, *p.descriptions], key=lambda e: e.t)
        ]
        for n, p in ctx.peers.items()
    }
    for name in list(ctx.peers):
        await _stop_peer(ctx, result, name)
    result.pcaps = [str(p) for p in capture.stop()]
    result.capture_stats = {p.path.name: p.stats for p in capture.points}
    lost = capture.losses()
    if lost:
        result.error = "incomplete capture, so no verdict on the wire: " + "; ".join(lost)
    t = time.perf_counter()
    if not any(s.status == "failed" for s in result.steps):
        progress("checking expectations")
        result.checks = _run_checks(scenario, ctx, result)
    result.timings["checks"] = time.perf_counter() - t


def _quietly(fn: Callable[[], Any]) -> Callable[[], None]:
    """A tear-down action whose own failure must not hide the run's verdict."""

    def run() -> None:
        with contextlib.suppress(Exception):
            fn()

    return run


def _runtime_of(scenario: Scenario) -> str:
    """ "process", "docker", or "mixed" (some components or peers have their own image)."""
    spec = scenario.spec
    if spec.runtime == "docker":
        return "docker"
    own = [c.image for c in spec.components.values()] + [p.image for p in spec.peers.values()]
    return "mixed" if any(own) else "process"


async def _apply_links(ctx: ScenarioContext, result: RunResult) -> None:
    links = ctx.scenario.spec.links
    if not links:
        return
    from harness.conditions.model import LinkSpec

    for key, raw in links.items():
        spec = ctx.scenario.source.validate(LinkSpec, raw, base=("links", key))
        _shape(ctx, result, key, spec)


def _shape(ctx: ScenarioContext, result: RunResult, key: str, spec: Any) -> None:
    """Impair link `node.iface`; at tear-down record it, and fail the run if its engine died."""
    from harness.conditions.apply import shape_link

    node, _, iface = key.partition(".")
    shaper = ctx.shapers[key] = shape_link(ctx.lab, node, iface, spec, seed=ctx.seed)

    def close() -> None:
        with contextlib.suppress(Exception):
            result.links[key] = shaper.record()
        try:
            shaper.check_alive()  # a crashed engine fails the run, never passes silently
        except HarnessError as exc:
            result.error = result.error or f"link {key}: {exc}"
        with contextlib.suppress(Exception):
            shaper.close()

    ctx.teardown.callback(close)


async def _start_timeline(ctx: ScenarioContext, result: RunResult) -> None:
    """Run the scenario's `conditions:` timeline beside the steps (times from the first step)."""
    steps = ctx.scenario.spec.conditions
    if not steps:
        return
    from harness.conditions.model import LinkSpec
    from harness.conditions.timeline import Timeline, Trigger

    for step in steps:
        if step.link not in ctx.shapers:  # a link without conditions yet starts unimpaired
            _shape(ctx, result, step.link, LinkSpec())
    ctx.timeline = Timeline(ctx.shapers, steps)

    async def wait(trigger: Trigger) -> None:
        if trigger.step is not None:
            await ctx.step_done(trigger.step).wait()
            return
        assert trigger.peer is not None and trigger.event is not None
        kind, state = trigger.event
        await ctx.peer(trigger.peer).wait_event(kind, 24 * 3600, since=ctx.t0, state=state)

    task = asyncio.create_task(ctx.timeline.run(ctx.t0, wait))
    ctx.teardown.push_async_callback(_cancel, task)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _start_components(ctx: ScenarioContext, result: RunResult, progress: Progress) -> None:
    from harness.components import COMPONENTS
    from harness.components.ports import check_port_clashes

    comps = [
        COMPONENTS[c.kind](name, c.node, c.options, image=ctx.image_of(c.image, c.kind))
        for name, c in ctx.scenario.spec.components.items()
    ]
    check_port_clashes(comps)
    everyone = {c.name: c for c in comps}
    for comp in comps:
        comp.bind(everyone, ctx.scenario.path.parent)
        progress(f"starting {comp.kind} {comp.name} on {comp.node}")
        ctx.components[comp.name] = comp

        def stop(comp: Any = comp) -> None:
            result.logs.setdefault(comp.name, comp.log_tail(20))
            _note_findings(result, comp.name, comp.log_findings())
            comp.stop()

        ctx.teardown.callback(_quietly(stop))  # registered first: a failed start is stopped too
        try:
            await asyncio.to_thread(comp.start, ctx.lab)
        except ComponentError as exc:  # where in the scenario, beside what went wrong
            src = ctx.scenario.source
            where = f"{src.file}:{src.line_of(('components', comp.name))}: components.{comp.name}"
            raise ComponentError(comp.name, f"{exc.message} ({where})", exc.log_tail) from None
        version = await asyncio.to_thread(comp.program_version)
        ctx.versions[comp.name] = f"{comp.kind} {version}" + (
            f" ({comp.image})" if comp.image else ""
        )


def _warm_engine(scenario: Scenario) -> None:
    """Connect to the engine early when the scenario runs containers (errors come later,
    from _check_images, at the right YAML line)."""
    spec = scenario.spec
    if spec.runtime != "docker" and _runtime_of(scenario) == "process":
        return
    from harness.runtime import engine

    with contextlib.suppress(Exception):
        engine.client()
        engine.ensure_adapter_image()


def _check_images(ctx: ScenarioContext) -> None:
    """Every image the scenario runs exists and holds its program, else a ConfigError at
    the component's (or peer's) YAML line; no engine at all raises UnsupportedError."""
    from harness.components import COMPONENTS
    from harness.peers.launch import AGENT_PROGRAM

    spec = ctx.scenario.spec
    wanted: dict[tuple[str, str, str], tuple[str, str, str | None]] = {}
    for section, items in (("components", spec.components), ("peers", spec.peers)):
        for name, item in items.items():
            image = ctx.image_of(item.image, item.kind)
            if image is not None:
                program = COMPONENTS[item.kind].binary if section == "components" else AGENT_PROGRAM
                wanted.setdefault((item.node, image, program), (section, name, item.image))
    if not wanted:
        return
    errors = ctx.lab.prepare_images(list(wanted))
    for (_, image, program), (section, name, explicit) in wanted.items():
        if (image, program) in errors:
            key = (section, name, "image") if explicit else ("runtime",)
            msg = f"{section[:-1]} {name!r}: {errors[image, program]}"
            raise ctx.scenario.source.error(key, msg)


def _ice_servers(ctx: ScenarioContext, refs: list[str | IceServerRef]) -> list[dict[str, Any]]:
    out = []
    for ref in refs:
        r = IceServerRef(component=ref) if isinstance(ref, str) else ref
        if r.component:
            comp = ctx.components[r.component]
            server = (
                comp.stun_server(r.transport or "udp")  # type: ignore[attr-defined]
                if r.use == "stun"
                else comp.ice_server(r.transport or "udp")  # type: ignore[attr-defined]
            )
            out.append(server)
        else:
            out.append({"urls": r.urls, "username": r.username, "credential": r.credential})
    return out


async def _start_peers(ctx: ScenarioContext, result: RunResult, progress: Progress) -> None:
    from harness.actions.reactions import start_reaction
    from harness.peers.launch import peer_version, start_peer

    for name, spec in ctx.scenario.spec.peers.items():
        progress(f"starting {spec.kind} peer {name} on {spec.node}")
        image = ctx.image_of(spec.image, spec.kind)
        peer = await start_peer(ctx.lab, spec.node, spec.kind, name, image=image)
        ctx.peers[name] = peer
        ctx.teardown.push_async_callback(_stop_peer, ctx, result, name)
        version = await asyncio.to_thread(peer_version, spec.kind, image)
        ctx.versions[name] = f"{spec.kind} {version}" + (f" ({image})" if image else "")
        await peer.call(
            "configure",
            ice_servers=_ice_servers(ctx, spec.ice_servers),
            ice_transport_policy=spec.ice_transport_policy,
            trickle=spec.trickle,
            audio=spec.audio.model_dump(exclude_none=True) if spec.audio else None,
            video=spec.video,
            datachannel=spec.datachannel,
        )
        start_reaction(ctx, name)  # the app's restart policy (harness/actions/reactions.py)


async def _run_steps(ctx: ScenarioContext, result: RunResult, progress: Progress) -> None:
    from harness.actions.reactions import settle_reactions

    for step in ctx.scenario.steps:
        if step.action.ends_call:  # not under an app's ICE restart still being observed
            await settle_reactions(ctx)
        ctx.step_started = time.time()
        started = ctx.step_started - ctx.t0
        progress(f"step {step.index + 1}/{len(ctx.scenario.steps)}: {step.kind}")
        t = time.perf_counter()
        sr = StepResult(step.index, step.kind, "passed", round(started, 3), 0.0, line=step.line)
        error = None
        try:
            ctx.check_components()
            sr.detail = await guarded(  # a dead peer or component ends the step at once
                ctx, asyncio.wait_for(step.action.execute(ctx), step.action.timeout + 5)
            )
        except TimeoutError:
            error = f"timed out after {step.action.timeout + 5:.0f} s"
        except UnsupportedError:
            raise  # the verdict of the whole run, never a step failure
        except HarnessError as exc:
            error = str(exc)
        _judge_step(step.action, sr, error)
        try:
            ctx.check_components()  # a component that died fails the step, expected or not
        except HarnessError as exc:
            sr.status, sr.error = "failed", str(exc)
        sr.duration_s = round(time.perf_counter() - t, 3)
        result.steps.append(sr)
        ctx.step_done(step.index + 1).set()
        await _snapshot_stats(ctx, step.index)
        if sr.status == "failed":
            sr.error += _recent_events(ctx)
            for later in ctx.scenario.steps[step.index + 1 :]:
                result.steps.append(
                    StepResult(later.index, later.kind, "skipped", 0.0, 0.0, line=later.line)
                )
            return
    await settle_reactions(ctx)  # a restart's outcome is logged before the run is judged


def _judge_step(action: Any, sr: StepResult, error: str | None) -> None:
    """A step passes when it did what it says, or, with `must_fail`, when it failed as told."""
    must = action.must_fail
    if must is None:
        if error is not None:
            sr.status, sr.error = "failed", error
        return
    if error is None:
        sr.status = "failed"
        sr.error = f"must fail with /{must.error}/, but it succeeded: {sr.detail}"
    elif not re.search(must.error, error):
        sr.status = "failed"
        sr.error = f"failed, but not as it must (/{must.error}/): {error}"
    else:
        sr.detail = {**sr.detail, "failed_as_expected": error}


async def _snapshot_stats(ctx: ScenarioContext, step: int) -> None:
    """Each peer's stats after each step: what peer checks and reports read."""
    for name, peer in ctx.peers.items():
        try:
            stats = await peer.call("stats", timeout=5)
        except HarnessError:
            continue
        ctx.peer_stats.setdefault(name, []).append(
            {"step": step, "t": time.time() - ctx.t0, "stats": stats}
        )


def _note_findings(result: RunResult, source: str, found: list[LogFinding]) -> None:
    """A component's or peer's log findings into the result: proven races for the verdict,
    the rest as evidence."""
    for f in found:
        f.source = source
        if f.known_race:
            result.races.append(f.to_dict())
        else:
            result.log_findings.append(f"{source}: {f.text}")


def _recent_events(ctx: ScenarioContext) -> str:
    lines = []
    for name, peer in ctx.peers.items():
        for ev in peer.events[-5:]:
            lines.append(f"  {name} +{ev.t - ctx.t0:.3f}s {ev.kind} {ev.data}")
    return ("\nlast peer events:\n" + "\n".join(lines)) if lines else ""


async def _stop_peer(ctx: ScenarioContext, result: RunResult, name: str) -> None:
    """Stop one peer (once: the normal path and the tear-down stack both call this)."""
    peer = ctx.peers.pop(name, None)
    if peer is None:
        return
    result.logs.setdefault(name, peer.process.log_tail(20))  # type: ignore[attr-defined]
    _note_findings(result, name, peer.log_findings())  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        await peer.stop()  # type: ignore[attr-defined]


def _run_checks(scenario: Scenario, ctx: ScenarioContext, result: RunResult) -> list[CheckResult]:
    """Wire checks run on the pcaps; peer checks on the stats snapshots."""
    from harness.assertions.evaluate import run_expects
    from harness.assertions.peer import PEER_CHECKS, run_peer_check
    from harness.assertions.registry import CheckError, Outcome

    wire = [e for e in scenario.expects if e[0] not in PEER_CHECKS]
    wire_out = iter(run_expects(wire, [Path(p) for p in result.pcaps]))
    out = []
    for name, params, line in scenario.expects:
        if name in PEER_CHECKS:
            try:
                o = run_peer_check(name, ctx.peer_stats, params, result.peer_events)
            except CheckError as exc:
                o = Outcome(False, f"bad expectation: {exc}")
        else:
            _, _, _, o, _ = next(wire_out)
        evidence = list(o.evidence)
        if not o.passed:  # did the host stall inside what the check found wrong?
            for start, end in o.windows:
                evidence += stalls_inside(result.host, start, end)
        out.append(CheckResult(name, o.passed, o.message, evidence, dict(params), line, o.rfc))
    return out


def run_scenario_sync(
    scenario: Scenario, *, seed: int | None = None, alluredir: Any = None
) -> RunResult:
    return asyncio.run(run_scenario(scenario, seed=seed))
