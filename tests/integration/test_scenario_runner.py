"""The scenario runner with real peers: a failing run is explained and the lab is always torn down.

(Bad input is tests/unit/test_scenario_validation.py: it needs no lab.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from harness.capture import tcpdump
from harness.config.scenario import parse_scenario
from harness.runtime.nsutil import list_netns
from harness.scenario.runner import run_scenario_sync

pytestmark = pytest.mark.lab
HERE = Path("scenarios/test-inline.yaml")  # resolves topologies/ like a file under scenarios/

BASE = """\
name: t
topology: open-internet
components:
  turn: {kind: coturn, node: server}
peers:
  alice: {kind: aiortc, node: peer-a, ice_servers: [turn]}
  bob: {kind: aiortc, node: peer-b, ice_servers: [turn]}
steps:
  - call: {caller: alice, callee: bob, timeout: 15}
"""


def no_lab_left(name: str) -> bool:
    return not [ns for ns in list_netns() if name in ns]


def test_restart_before_connected_fails_the_step_and_tears_down() -> None:
    sc = parse_scenario(
        BASE.replace(
            "  - call: {caller: alice, callee: bob, timeout: 15}\n",
            "  - restart_ice: {peer: alice}\n",
        ),
        HERE,
    )
    result = run_scenario_sync(sc)
    assert not result.passed
    step = result.steps[0]
    assert step.status == "failed" and "not in a call (a `call` step comes first)" in step.error
    assert no_lab_left(result.run_dir.name.split("-", 2)[-1])


def test_turn_refusing_credentials_is_a_clear_error() -> None:
    text = BASE.replace(
        "ice_servers: [turn]}",
        "ice_servers: [{urls: ['turn:198.18.0.12:3478'], username: harness, credential: wrong}], ice_transport_policy: relay}",
    )
    result = run_scenario_sync(parse_scenario(text, HERE))
    assert not result.passed
    failed = [s for s in result.steps if s.status == "failed"] or []
    text_out = result.failure_text()
    assert "401" in text_out and ("refused" in text_out or "Unauthorized" in text_out), text_out
    assert failed or result.error
    assert no_lab_left(result.run_dir.name.split("-", 2)[-1])


def test_a_peer_that_dies_ends_its_step_at_once() -> None:
    """bob's agent is killed during a 30 s wait: the step fails within a second, naming bob."""
    import asyncio
    import os
    import signal
    import time

    from harness.runtime.nsutil import netns_pids
    from harness.scenario.runner import run_scenario

    text = BASE + "  - wait: {seconds: 30}\n"
    sc = parse_scenario(text, HERE)
    lab: list[str] = []
    killed: list[float] = []

    def progress(msg: str) -> None:
        if msg.startswith("lab "):
            lab.append(msg.split()[1])
        if msg.endswith(": wait") and not killed:
            for pid in netns_pids(f"rh-{lab[0]}.peer-b"):  # the agent, a real process
                os.kill(pid, signal.SIGKILL)
            killed.append(time.monotonic())

    result = asyncio.run(run_scenario(sc, progress=progress))
    assert killed and len(result.steps) == 2, result.failure_text()
    wait = result.steps[1]
    assert wait.status == "failed", result.failure_text()
    assert "peer bob: its agent died" in wait.error and wait.duration_s < 5, wait
    assert no_lab_left(lab[0])


def _signal_captures_later(root: Path, sigs: list[tuple[int, float]]) -> None:
    """From a thread: once media flows (a capture under `root` past 30 kB), send each
    (signal, then wait) to every tcpdump writing under `root`: the run's own captures,
    a stand-in for a stalled machine."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(f.stat().st_size > 30_000 for f in root.rglob("*.pcap")):
                break
            time.sleep(0.05)
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"tcpdump") and any(str(root).encode() in a for a in argv):
                pids.append(int(proc.name))
        for sig, wait in sigs:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(wait)

    threading.Thread(target=run, daemon=True).start()


CALL_4S = BASE + "  - wait: {seconds: 4}\nexpect:\n  - rtp_flowing: {capture: peer-a}\n"


def test_a_capture_the_kernel_dropped_packets_from_gets_no_verdict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """tcpdump stopped for 1.5 s mid-call with a ring of a few frames: the kernel drops
    what arrives meanwhile, and the checks would see gaps that never happened."""
    monkeypatch.setenv("HARNESS_CAPTURES", str(tmp_path))
    monkeypatch.setattr(tcpdump, "RING_KIB", 16)  # ~10 frames
    _signal_captures_later(tmp_path, [(signal.SIGSTOP, 1.5), (signal.SIGCONT, 0)])
    result = run_scenario_sync(parse_scenario(CALL_4S, HERE))
    dropped = {f: st["dropped"] for f, st in result.capture_stats.items() if st.get("dropped")}
    assert dropped, result.capture_stats
    assert result.verdict == "fail", result.verdict
    assert result.error.startswith("incomplete capture, so no verdict on the wire"), result.error
    for name, n in dropped.items():
        assert f"{name}: the kernel dropped {n} packet(s)" in result.error, result.error
    assert no_lab_left(result.run_dir.name.split("-", 2)[-1])


def test_a_capture_whose_tcpdump_died_gets_no_verdict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HARNESS_CAPTURES", str(tmp_path))
    _signal_captures_later(tmp_path, [(signal.SIGKILL, 0)])
    result = run_scenario_sync(parse_scenario(CALL_4S, HERE))
    assert result.verdict == "fail", result.verdict
    assert result.error.startswith("incomplete capture, so no verdict on the wire"), result.error
    assert "tcpdump exited with status -9 mid-capture" in result.error, result.error
