"""Run a scenario: lab up, captures, components, peers, steps, checks, tear-down.

Tear-down runs whatever happens (failure, timeout, Ctrl-C); the result keeps
the evidence: step errors with the peers' last events, component log tails,
the pcaps, and every check's evidence lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config.scenario import IceServerRef, Scenario
from harness.config.validate import capture_points
from harness.errors import HarnessError
from harness.lab import Lab
from harness.scenario.context import ScenarioContext
from harness.scenario.result import CheckResult, RunResult, StepResult

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
        known_failure=spec.known_failure,
    )
    result.environment = {
        "topology": scenario.topology.name,
        "runtime": lab.runtime.name,
        "seed": str(seed),
        **{f"peer {n}": f"{p.kind} on {p.node}" for n, p in spec.peers.items()},
        **{f"component {n}": f"{c.kind} on {c.node}" for n, c in spec.components.items()},
    }
    ctx: ScenarioContext | None = None
    t_start = time.perf_counter()
    try:
        progress(f"lab {lab.name} up ({scenario.topology.name})")
        lab.up()
        result.timings["lab_up"] = lab.timings["up"]
        ctx = ScenarioContext(scenario, lab, seed)
        await _apply_links(ctx)
        capture = lab.capture(capture_points(spec, scenario.topology))  # what validation checked
        t = time.perf_counter()
        await _start_components(ctx, progress)
        result.timings["components_ready"] = time.perf_counter() - t
        t = time.perf_counter()
        await _start_peers(ctx, progress)
        result.timings["peers_ready"] = time.perf_counter() - t
        ctx.t0 = result.t0 = time.time()
        timeline = await _start_timeline(ctx)
        t = time.perf_counter()
        await _run_steps(ctx, result, progress)
        if timeline is not None:
            timeline.cancel()
        result.timings["steps"] = time.perf_counter() - t
        result.peer_stats = ctx.peer_stats
        result.peer_events = {
            n: [{"t": round(e.t - ctx.t0, 4), "kind": e.kind, "data": e.data} for e in p.events]
            for n, p in ctx.peers.items()
        }
        await _stop_peers(ctx, result)
        result.pcaps = [str(p) for p in capture.stop()]
        t = time.perf_counter()
        if not any(s.status == "failed" for s in result.steps):
            progress("checking expectations")
            result.checks = _run_checks(scenario, ctx, result)
        result.timings["checks"] = time.perf_counter() - t
    except HarnessError as exc:
        result.error = str(exc)
    except Exception as exc:  # a bug or an unexpected failure: still tear down, still report
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        t = time.perf_counter()
        if ctx is not None:
            for name, comp in ctx.components.items():
                result.logs.setdefault(name, comp.log_tail(20))
            with contextlib.suppress(Exception):
                await _stop_peers(ctx, result)
            for key, shaper in ctx.shapers.items():
                with contextlib.suppress(Exception):
                    result.links[key] = shaper.record()
                try:
                    shaper.check_alive()  # a crashed engine fails the run, never passes silently
                except HarnessError as exc:
                    result.error = result.error or f"link {key}: {exc}"
                with contextlib.suppress(Exception):
                    shaper.close()
            for comp in reversed(list(ctx.components.values())):
                with contextlib.suppress(Exception):
                    comp.stop()
        lab.down()
        result.timings["teardown"] = time.perf_counter() - t
        result.timings["total"] = time.perf_counter() - t_start
    failed_steps = any(s.status == "failed" for s in result.steps)
    result.passed = not result.error and not failed_steps and all(c.passed for c in result.checks)
    if result.passed:
        result.logs = {}
    result.save()
    return result


async def _apply_links(ctx: ScenarioContext) -> None:
    links = ctx.scenario.spec.links
    if not links:
        return
    from harness.conditions.apply import shape_link
    from harness.conditions.model import LinkSpec

    for key, raw in links.items():
        node, _, iface = key.partition(".")
        spec = ctx.scenario.source.validate(LinkSpec, raw, base=("links", key))
        ctx.shapers[key] = shape_link(ctx.lab, node, iface, spec, seed=ctx.seed)


async def _start_timeline(ctx: ScenarioContext) -> asyncio.Task[None] | None:
    """Run the scenario's `conditions:` timeline beside the steps (times from the first step)."""
    steps = ctx.scenario.spec.conditions
    if not steps:
        return None
    from harness.conditions.apply import shape_link
    from harness.conditions.model import LinkSpec
    from harness.conditions.timeline import Timeline

    for step in steps:
        if step.link not in ctx.shapers:  # a link without conditions yet starts unimpaired
            node, _, iface = step.link.partition(".")
            ctx.shapers[step.link] = shape_link(ctx.lab, node, iface, LinkSpec(), seed=ctx.seed)
    ctx.timeline = Timeline(ctx.shapers, steps)
    return asyncio.create_task(ctx.timeline.run(ctx.t0))


async def _start_components(ctx: ScenarioContext, progress: Progress) -> None:
    from harness.components import COMPONENTS
    from harness.components.ports import check_port_clashes

    comps = [
        COMPONENTS[c.kind](name, c.node, c.options)
        for name, c in ctx.scenario.spec.components.items()
    ]
    check_port_clashes(comps)
    for comp in comps:
        progress(f"starting {comp.kind} {comp.name} on {comp.node}")
        ctx.components[comp.name] = comp
        await asyncio.to_thread(comp.start, ctx.lab)


def _ice_servers(ctx: ScenarioContext, refs: list[str | IceServerRef]) -> list[dict[str, Any]]:
    out = []
    for ref in refs:
        r = IceServerRef(component=ref) if isinstance(ref, str) else ref
        if r.component:
            comp = ctx.components[r.component]
            server = comp.ice_server(r.transport or "udp")  # type: ignore[attr-defined]
            out.append(server)
        else:
            out.append({"urls": r.urls, "username": r.username, "credential": r.credential})
    return out


async def _start_peers(ctx: ScenarioContext, progress: Progress) -> None:
    from harness.actions.reactions import start_reaction
    from harness.peers.launch import start_peer

    for name, spec in ctx.scenario.spec.peers.items():
        progress(f"starting {spec.kind} peer {name} on {spec.node}")
        peer = await start_peer(ctx.lab, spec.node, spec.kind, name)
        ctx.peers[name] = peer
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
    for step in ctx.scenario.steps:
        ctx.step_started = time.time()
        started = ctx.step_started - ctx.t0
        progress(f"step {step.index + 1}/{len(ctx.scenario.steps)}: {step.kind}")
        t = time.perf_counter()
        sr = StepResult(step.index, step.kind, "passed", round(started, 3), 0.0, line=step.line)
        try:
            ctx.check_components()
            sr.detail = await asyncio.wait_for(step.action.execute(ctx), step.action.timeout + 5)
            ctx.check_components()
        except TimeoutError:
            sr.status, sr.error = "failed", f"timed out after {step.action.timeout + 5:.0f} s"
        except HarnessError as exc:
            sr.status, sr.error = "failed", str(exc)
        sr.duration_s = round(time.perf_counter() - t, 3)
        result.steps.append(sr)
        await _snapshot_stats(ctx, step.index)
        if sr.status == "failed":
            sr.error += _recent_events(ctx)
            for later in ctx.scenario.steps[step.index + 1 :]:
                result.steps.append(
                    StepResult(later.index, later.kind, "skipped", 0.0, 0.0, line=later.line)
                )
            return


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


def _recent_events(ctx: ScenarioContext) -> str:
    lines = []
    for name, peer in ctx.peers.items():
        for ev in peer.events[-5:]:
            lines.append(f"  {name} +{ev.t - ctx.t0:.3f}s {ev.kind} {ev.data}")
    return ("\nlast peer events:\n" + "\n".join(lines)) if lines else ""


async def _stop_peers(ctx: ScenarioContext, result: RunResult) -> None:
    for name, peer in list(ctx.peers.items()):
        result.logs.setdefault(name, peer.process.log_tail(20))  # type: ignore[attr-defined]
        await peer.stop()  # type: ignore[attr-defined]
        ctx.peers.pop(name)


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
                o = run_peer_check(name, ctx.peer_stats, params)
            except CheckError as exc:
                o = Outcome(False, f"bad expectation: {exc}")
        else:
            _, _, _, o, _ = next(wire_out)
        out.append(CheckResult(name, o.passed, o.message, o.evidence, dict(params), line, o.rfc))
    return out


def run_scenario_sync(
    scenario: Scenario, *, seed: int | None = None, alluredir: Any = None
) -> RunResult:
    return asyncio.run(run_scenario(scenario, seed=seed))
