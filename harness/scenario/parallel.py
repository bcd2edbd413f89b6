"""Run scenarios in separate labs at the same time, each in a process of its own.

A run is one `python -m harness.scenario.worker` process: its lab, event loop,
signal handlers, environment and working directory belong to it alone, so
concurrent runs share nothing but the kernel, and each run is exactly the run a
sequential `harness run` makes (same seed, same steps, same result.json).
Labs are namespaces of their own (separate bridges, addresses and ports), and
their names are claimed atomically (harness/lab/registry.py), so they never clash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.scenario.result import RunResult

if TYPE_CHECKING:
    from harness.config.scenario import Scenario

#: What one lab costs, by what it runs: mean CPU in cores over a run, and peak memory in
#: MiB (PSS of every process in the lab's namespaces, and its worker). From
#: `benchmarks/bench_scale.py cost` on the restart matrix (docs/scale.md): a Janus lab
#: with an aiortc peer peaked at 660 MiB and 3.3 CPU s, with Chromium at 1090 MiB, 5.1 s.
CPU = {"aiortc": 0.15, "chromium": 0.25, "firefox": 0.3, "component": 0.03, "lab": 0.05}
MEMORY = {"aiortc": 120, "chromium": 550, "firefox": 600, "component": 100, "lab": 150}
#: Memory left to the rest of the machine (and to CI's own processes).
RESERVE_MB = 1024
#: Share of the CPUs labs may use on average: start-up bursts (Chromium, Janus) need room,
#: and timing checks fail when media threads wait for a core.
CPU_TARGET = 0.75


@dataclass(frozen=True)
class Job:
    """One run of one scenario: everything a worker needs to make it again."""

    file: str
    scenario: str
    seed: int | None
    attempt: int
    label: str


@dataclass
class Capacity:
    jobs: int
    why: str


def lab_cost(peers: Iterable[str], components: int) -> tuple[float, float]:
    """(cores, MiB) one lab of these peer kinds and this many components needs."""
    kinds = list(peers)
    cpu = (
        CPU["lab"] + sum(CPU.get(k, CPU["chromium"]) for k in kinds) + CPU["component"] * components
    )
    mem = (
        MEMORY["lab"]
        + sum(MEMORY.get(k, MEMORY["chromium"]) for k in kinds)
        + MEMORY["component"] * components
    )
    return cpu, mem


def machine() -> tuple[int, int]:
    """(usable CPUs, available MiB) of this machine now."""
    cpus = len(os.sched_getaffinity(0))
    avail = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) // 1024
    return cpus, avail


def capacity(costs: Iterable[tuple[float, float]], cpus: int, mem_mb: int) -> Capacity:
    """How many labs of the heaviest kind here fit at once on `cpus` and `mem_mb`."""
    cpu, mem = max(costs, default=(CPU["lab"], MEMORY["lab"]))
    by_cpu = max(1, int(CPU_TARGET * cpus / cpu))
    by_mem = max(1, int(max(0, mem_mb - RESERVE_MB) / mem))
    jobs = min(by_cpu, by_mem)
    why = (
        f"{CPU_TARGET:.0%} of {cpus} CPUs / {cpu:.2f} per lab = {by_cpu}; "
        f"{mem_mb - RESERVE_MB} MiB free / {mem:.0f} per lab = {by_mem}"
    )
    return Capacity(jobs, why)


def holds(scenarios: Iterable[Scenario]) -> Capacity:
    """How many labs of these scenarios this machine holds at once, now."""
    cpus, mem = machine()
    costs = (
        lab_cost([p.kind for p in sc.spec.peers.values()], len(sc.spec.components))
        for sc in scenarios
    )
    return capacity(costs, cpus, mem)


def oversubscribed(option: str, n: int, cap: Capacity) -> str | None:
    """The warning when `option n` (`--jobs 4`, `-n 4`) runs more labs at once than fit."""
    if n <= cap.jobs:
        return None
    return (
        f"warning: {option} {n} oversubscribes this machine (it holds {cap.jobs}: "
        f"{cap.why}); timing-sensitive checks may fail from contention"
    )


Report = Callable[[Job, RunResult], Awaitable[None] | None]


async def run_parallel(
    jobs: list[Job], n: int, report: Report, *, captures: Path | None = None
) -> list[RunResult]:
    """Run the jobs, at most n at once; results come back in the jobs' order."""
    sem = asyncio.Semaphore(n)
    live: set[asyncio.subprocess.Process] = set()
    env = dict(os.environ)
    if captures is not None:
        env["HARNESS_CAPTURES"] = str(captures)

    async def one(job: Job) -> RunResult:
        async with sem:
            argv = [sys.executable, "-m", "harness.scenario.worker", job.file, job.scenario]
            argv += ["--attempt", str(job.attempt)]
            if job.seed is not None:
                argv += ["--seed", str(job.seed)]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches workers through us, once
            )
            live.add(proc)
            try:
                out, _ = await proc.communicate()
            finally:
                live.discard(proc)
            result = _result(job, proc.returncode or 0, out.decode(errors="replace"))
            maybe = report(job, result)
            if maybe is not None:
                await maybe
            return result

    tasks = [asyncio.ensure_future(one(j)) for j in jobs]
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, lambda: [t.cancel() for t in tasks])
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await _stop_all(live)
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


async def _stop_all(live: set[asyncio.subprocess.Process]) -> None:
    """Workers tear their labs down on SIGTERM; those that hang are killed (gc removes the rest)."""
    for p in list(live):
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
    for p in list(live):
        try:
            await asyncio.wait_for(p.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)


def _result(job: Job, rc: int, output: str) -> RunResult:
    """The worker's saved result; a worker that died before saving one is an error result."""
    for line in reversed(output.splitlines()):
        if line.startswith("{") and '"run_dir"' in line:
            with contextlib.suppress(ValueError, OSError):
                return RunResult.load(Path(json.loads(line)["run_dir"]))
    r = RunResult(job.scenario, job.file, job.seed or 0, Path("."), attempt=job.attempt)
    r.error = f"worker exited {rc} without a result:\n" + "\n".join(output.splitlines()[-30:])
    return r


if __name__ == "__main__":  # python -m harness.scenario.parallel PATH...: labs this machine holds
    import sys

    from harness.config.scenario import load_scenarios

    found = [
        sc
        for arg in sys.argv[1:]
        for f in (sorted(Path(arg).rglob("*.yaml")) if Path(arg).is_dir() else [Path(arg)])
        for sc in load_scenarios(f)
    ]
    cap = holds(found)
    print(cap.jobs)
    print(cap.why, file=sys.stderr)
