"""Which engine carries a link, and what `harness doctor` says about it.

relay: the userspace link relay (relay.py), everywhere and by default: it does
seeded loss, jitter without reordering, targeted faults and exact timeline
changes, which netem cannot all do. `engine: netem` is accepted in YAML but not
built yet: such a link fails to start with a clear error (see docs/conditions.md).
"""

from __future__ import annotations

import os
import subprocess
from functools import cache

from harness.conditions.control import EngineError
from harness.conditions.model import LinkSpec

SCRATCH_PREFIX = "tcnd-"


@cache
def kernel_has_netem() -> bool:
    """Try `tc qdisc add ... netem` on a dummy link in a scratch namespace of our own."""
    ns = f"{SCRATCH_PREFIX}probe-{os.getpid()}"
    try:
        if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
            return False
        script = "link add d0 type dummy\nlink set d0 up\n"
        subprocess.run(
            ["ip", "-n", ns, "-batch", "-"], input=script, text=True, capture_output=True
        )
        proc = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "tc",
                "qdisc",
                "add",
                "dev",
                "d0",
                "root",
                "netem",
                "delay",
                "1ms",
            ],
            capture_output=True,
        )
        return proc.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def choose_engine(spec: LinkSpec) -> str:
    """The engine a link gets; raises EngineError when it asked for one this machine lacks."""
    if spec.engine == "netem":
        raise EngineError(
            "engine: netem is not implemented yet"
            + ("" if kernel_has_netem() else ", and this kernel has no sch_netem")
            + "; use engine: auto (the userspace relay)"
        )
    return "relay"


def describe() -> str:
    """One line for `harness doctor`: which engine links get here."""
    netem = "kernel netem present" if kernel_has_netem() else "no kernel netem"
    return (
        "links get the userspace TAP relay (seeded loss, jitter without reordering, "
        f"targeted faults, timed changes); {netem}"
    )
