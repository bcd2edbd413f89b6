"""The container runtime: isolation, bad input before anything starts, a missing engine
reported unsupported, and nothing left behind after SIGKILL at random moments + gc."""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.config.scenario import parse_scenario
from harness.errors import UnsupportedError
from harness.lab import Lab
from harness.lab.registry import STATE_DIR, gc
from harness.runtime import engine
from harness.scenario.runner import run_scenario_sync
from harness.scenario.verdict import UNSUPPORTED, verdict_of
from tests.integration.containers import ROOT, image, need_images

pytestmark = pytest.mark.lab
HERE = Path("scenarios/test-inline.yaml")  # resolves topologies/ like a file under scenarios/
PORT = 47123


def _host_addresses() -> list[str]:
    """Addresses outside every lab: the host's own, Docker's bridge, its name server."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    found = [ln.split()[3].split("/")[0] for ln in out.splitlines() if " lo " not in ln]
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        if line.startswith("nameserver") and "." in line:
            found.append(line.split()[1])
    return sorted(set(found) - {"127.0.0.1"})


def test_container_sees_only_the_lab_and_nothing_leaves_it() -> None:
    [img] = need_images("coturn")
    outside = [*_host_addresses(), "203.0.113.7"]
    script = (
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '; echo; "
        "tail -n +2 /proc/net/route | cut -f1,2 | tr '\\n' ' '; echo; "
        f"for a in 198.18.0.12 {' '.join(outside)}; do "
        f"  (echo probe > /dev/udp/$a/{PORT}) 2>/dev/null && echo sent $a || echo unsent $a; "
        "done; echo DONE; sleep 30"
    )
    host_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the host's own namespace
    host_rx.bind(("0.0.0.0", PORT))
    dump = subprocess.Popen(
        ["tcpdump", "-i", "any", "-n", "-l", "-U", f"udp port {PORT}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert dump.stderr is not None
        while "listening on" not in (line := dump.stderr.readline()):
            assert line, "tcpdump did not start"
        with Lab("topologies/open-internet.yaml") as lab:
            lab_rx = lab.socket("server", socket.SOCK_DGRAM)  # positive control, in the lab
            lab_rx.bind(("198.18.0.12", PORT))
            proc = lab.spawn("peer-a", ["bash", "-c", script], name="probe", image=img)
            deadline = time.monotonic() + 20
            while "DONE" not in proc.log_tail() and time.monotonic() < deadline:
                time.sleep(0.05)
            lines = proc.log_tail().splitlines()
            assert lines[0].split() == ["lo", "eth0"], lines
            # routes: the lab's subnet and the default towards its sink, all on eth0
            routes = lines[1].split()
            assert set(routes[0::2]) == {"eth0"} and "00000000" in routes[1::2], lines
            assert select.select([lab_rx], [], [], 2.0)[0], "the in-lab probe never arrived"
            assert lab_rx.recv(100) == b"probe\n"
            time.sleep(1.0)
            cont = proc.container  # type: ignore[attr-defined]  # a container's process (image=)
            assert cont.attrs["NetworkSettings"]["Networks"] == {}
            assert cont.attrs["HostConfig"]["NetworkMode"].startswith("container:")
            lab_rx.close()
    finally:
        dump.send_signal(signal.SIGINT)
        seen = dump.communicate(timeout=10)[0]
        host_rx.setblocking(False)
        leaked = []
        while select.select([host_rx], [], [], 0)[0]:
            leaked.append(host_rx.recvfrom(100))
        host_rx.close()
    assert leaked == [], f"a lab container reached the host: {leaked}"
    assert seen.strip() == "", f"lab packets outside the lab:\n{seen}"


BAD = """\
name: t
topology: open-internet
components:
  turn: {kind: coturn, node: server}
  janus: {kind: janus, node: server, image: IMAGE}
peers:
  alice: {kind: aiortc, node: peer-a}
steps:
  - wait: {seconds: 0.1}
"""


@pytest.mark.parametrize(
    ("bad_image", "message"),
    [
        ("rtc-harness/nosuch:bookworm", "unknown image 'rtc-harness/nosuch:bookworm'"),
        (image("coturn"), f"image '{image('coturn')}' has no 'janus' on its PATH"),
    ],
)
def test_bad_image_is_an_error_at_its_line_before_anything_starts(
    bad_image: str, message: str
) -> None:
    need_images("coturn")
    scenario = parse_scenario(BAD.replace("IMAGE", bad_image), HERE)
    result = run_scenario_sync(scenario, seed=1)
    assert not result.passed
    assert f"test-inline.yaml:5: components.janus.image: component 'janus': {message}" in (
        result.error or ""
    ), result.error
    assert not (result.run_dir / "logs" / "server-turn.log").exists()  # nothing started
    assert engine.lab_containers(result.run_dir.name.split("-", 2)[-1]) == []


def test_program_that_exits_at_once_fails_with_its_log_and_line(tmp_path: Path) -> None:
    need_images("coturn", "janus")
    ctx = tmp_path / "broken"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {image('coturn')}\n"
        "RUN printf '#!/bin/sh\\necho cannot start: broken build >&2\\nexit 3\\n' "
        "> /usr/bin/turnserver && chmod +x /usr/bin/turnserver\n"
    )
    engine.client().images.build(path=str(ctx), tag="rtc-harness-test/broken-coturn:1", rm=True)
    text = BAD.replace("IMAGE", image("janus")).replace(
        "turn: {kind: coturn, node: server}",
        "turn: {kind: coturn, node: server, image: rtc-harness-test/broken-coturn:1}",
    )
    try:
        result = run_scenario_sync(parse_scenario(text, HERE), seed=1)
    finally:
        engine.client().images.remove("rtc-harness-test/broken-coturn:1", force=True)
    assert (
        "turn: exited with status 3 before it was ready (scenarios/test-inline.yaml:4: components.turn)"
        in (result.error or "")
    ), result.error
    assert "cannot start: broken build" in result.error  # the log tail
    assert not (result.run_dir / "logs" / "server-janus.log").exists()  # the next never started


def test_no_engine_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    engine._client.cache_clear()
    try:
        with pytest.raises(UnsupportedError) as info:
            engine.client()
        assert "no Docker engine answers" in info.value.reason
        assert "ci/setup.sh" in info.value.fix
        text = BAD.replace("IMAGE", image("janus"))
        result = run_scenario_sync(parse_scenario(text, HERE), seed=1)
        assert verdict_of(result).state == UNSUPPORTED, result
        assert "no Docker engine answers" in result.skip_reason
        assert not (result.run_dir / "logs" / "server-turn.log").exists()
    finally:
        engine._client.cache_clear()


HOLDER = r"""
import sys, time
from harness.components.coturn import Coturn
from harness.lab import Lab
print("START", flush=True)
with Lab("topologies/open-internet.yaml", name=sys.argv[1]) as lab:
    print("UP", flush=True)
    lab.spawn("peer-b", ["sleep", "300"], name="host-sleeper")
    Coturn("turn", "server", image=sys.argv[2]).start(lab)
    print("COMPONENT", flush=True)
    lab.spawn("peer-a", ["sleep", "300"], name="sleeper", image=sys.argv[2])
    print("READY", flush=True)
    time.sleep(120)
"""


def leftovers(name: str) -> list[str]:
    """Every trace a lab with containers can leave."""
    found = [f"netns {p.name}" for p in Path("/run/netns").glob(f"rh-{name}.*")]
    if (STATE_DIR / f"{name}.json").exists():
        found.append("state file")
    found += [f"container {c.name}" for c in engine.lab_containers(name)]
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    found += [f"process {ln.strip()}" for ln in ps.splitlines() if f"rh-{name}." in ln]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"nft {t}" for t in tables.splitlines() if name in t]
    return found


@pytest.mark.slow
def test_sigkill_at_random_moments_then_gc_leaves_nothing() -> None:
    """20 owners killed at seeded random moments: a random time after a phase the run
    cycles through (interpreter up, lab up, a component container ready, all running)."""
    [img] = need_images("coturn")
    rng = random.Random(20261130)
    phases = ("START", "UP", "COMPONENT", "READY")
    moments = []
    for run in range(20):
        name = f"td-ck{run}"
        phase, delay = phases[run % len(phases)], rng.uniform(0.0, 0.4)
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, name, img], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert proc.stdout is not None
        while (line := proc.stdout.readline()) and line.strip() != phase:
            pass
        assert line, f"run {run}: the owner died before {phase}"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        moments.append(f"{phase}+{delay:.2f}s")
        time.sleep(0.3)  # a create the daemon was serving when its client died
        gc()
        assert leftovers(name) == [], f"run {run} killed at {moments[-1]}"
    r = subprocess.run(
        [sys.executable, "-m", "harness", "lab", "gc"], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert all(leftovers(f"td-ck{run}") == [] for run in range(20))
    print(f"killed at: {', '.join(moments)}")
