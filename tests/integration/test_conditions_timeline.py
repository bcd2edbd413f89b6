"""A timeline changes a link during a flow; captures on both sides of the link show when."""

import asyncio
import os
import threading
import time

import pytest

from harness.conditions.apply import shape_link
from harness.conditions.measure import measure, probe_times
from harness.conditions.timeline import Timeline, TimelineStep
from harness.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]
PORT = 39123
TOLERANCE_MS = 10.0
ATTEMPTS = 3  # this shared 2-core machine stalls even real-time tasks for 10-300 ms at times


def one_run() -> tuple[float, float, float, bool]:
    """Offsets (ms) from schedule of: the delay change, blackout start, blackout end; restored."""
    with Lab("topologies/open-internet.yaml") as lab:
        lab.run("peer-a", ["ping", "-c1", "-W2", "198.18.0.11"], check=False)
        sh = shape_link(lab, "peer-a", "eth0", {})
        link = "peer-a.eth0"
        steps = [
            TimelineStep.model_validate({"at": 1.0, "link": link, "set": {"up": {"delay": 50}}}),
            TimelineStep.model_validate({"at": 2.0, "link": link, "blackout": 0.5}),
            TimelineStep.model_validate({"at": 3.0, "link": link, "restore": True}),
        ]
        timeline = Timeline({link: sh}, steps)
        cap = lab.capture([("peer-a", "eth0"), ("peer-b", "eth0")], bpf=f"udp port {PORT}")
        start = time.time() + 0.5
        runner = threading.Thread(target=lambda: asyncio.run(timeline.run(start)))
        runner.start()
        try:
            measure(lab, "peer-a", "peer-b", rate=500, count=2000, port=PORT)
        finally:
            runner.join()
            files = cap.stop()
            sh.close()
    sent, got = (probe_times(f) for f in files)
    change, blackout = (start + 1.0) * 1e9, (start + 2.0) * 1e9
    delays = sorted((t, got[s] - t) for s, t in sent.items() if s in got)
    fast_before = max(t for t, d in delays if d < 25e6 and t < change)
    first_slow = min(t for t, d in delays if d > 25e6)
    observed = (fast_before + first_slow) / 2  # the change lies between these two packets
    lost = sorted(t for s, t in sent.items() if s not in got)
    restored = delays[-1][0] > (start + 3.0) * 1e9 and delays[-1][1] < 1e6
    return (
        (observed - change) / 1e6,
        (lost[0] - blackout) / 1e6,
        (lost[-1] - blackout - 0.5e9) / 1e6,
        restored,
    )


def test_changes_land_within_10_ms_of_schedule() -> None:
    for attempt in range(1, ATTEMPTS + 1):
        change, b_start, b_end, restored = one_run()
        print(
            f"attempt {attempt}: change {change:+.2f} ms, blackout {b_start:+.2f} / {b_end:+.2f} ms"
        )
        assert restored
        if max(abs(change), abs(b_start), abs(b_end)) <= TOLERANCE_MS:
            return
    pytest.fail(
        f"off schedule in {ATTEMPTS} runs: last {change:+.2f}, {b_start:+.2f}, {b_end:+.2f} ms"
    )
