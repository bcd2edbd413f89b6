"""A lab interrupted while its namespaces are being built leaves nothing behind.

Bring-up builds the namespaces on threads of the harness's own process, so Ctrl-C can
land between a namespace's creation and its bind mount, or while a node's veth is half
made: the tear-down (or `harness lab gc` after SIGKILL) must still find everything.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_teardown import _default_sigint, leftovers

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
BUILDER = r"""
import sys, time
from harness.lab import Lab
lab = Lab("benchmarks/topologies/six-node-nat.yaml", name=sys.argv[1])
print("GO", flush=True)
lab.up()
print("UP", flush=True)
time.sleep(30)
"""
SEED = 16


def interrupt(name: str, sig: int, delay: float) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILDER, name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=_default_sigint,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().startswith("GO")
        time.sleep(delay)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return "up" if "UP" in out else "building"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_bring_up_leaves_nothing(sig: int) -> None:
    rng = random.Random(SEED)  # delays spread over a bring-up (20-80 ms on 2 busy cores)
    seen = []
    for i in range(8):
        name = f"ti-{int(sig)}-{i}"
        delay = rng.uniform(0.0, 0.03)
        seen.append(interrupt(name, sig, delay))
        if sig == signal.SIGKILL:
            gc = subprocess.run(
                [sys.executable, "-m", "harness", "lab", "gc"],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            assert gc.returncode == 0, gc.stdout + gc.stderr
        assert leftovers(name) == [], f"signal {sig} after {delay * 1000:.0f} ms ({seen[-1]})"
    assert "building" in seen, f"no signal landed during bring-up (seed {SEED}): {seen}"
