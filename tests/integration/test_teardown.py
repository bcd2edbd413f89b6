"""Nothing is left behind: after success, failure, SIGINT, and SIGKILL + `harness lab gc`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.lab import Lab
from harness.lab.registry import STATE_DIR

pytestmark = pytest.mark.lab

HOLDER = r"""
import sys, time
from harness.lab import Lab
with Lab("topologies/port-restricted.yaml", name=sys.argv[1]) as lab:
    p = lab.spawn("server", ["sleep", "300"], name="sleeper")
    lab.capture(["nat-a.wan"])
    print("READY", p.pid, flush=True)
    time.sleep(120)
"""


def leftovers(name: str, pids: Sequence[int] = ()) -> list[str]:
    """Every trace a lab can leave: namespaces, state file, processes, host veths."""
    found = [f"netns {p.name}" for p in Path("/run/netns").glob(f"rh-{name}.*")]
    if (STATE_DIR / f"{name}.json").exists():
        found.append("state file")
    for pid in pids:
        if (
            Path(f"/proc/{pid}").exists()
            and "zombie" not in Path(f"/proc/{pid}/status").read_text()
        ):
            found.append(f"process {pid}")
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    found += [
        f"host link {ln.split()[0]}" for ln in links.splitlines() if ln.startswith(("n0", "b0"))
    ]
    return found


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and an ignored SIGINT is inherited:
    # Python then never raises KeyboardInterrupt. Give the holder what a terminal's Ctrl-C meets.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_holder(name: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, name],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        preexec_fn=_default_sigint,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc, int(line.split()[1])


def test_down_after_success_and_after_failure() -> None:
    lab = Lab("topologies/port-restricted.yaml", name="td-ok")
    with lab:
        pid = lab.spawn("peer-a", ["sleep", "300"], name="s").pid
    assert leftovers("td-ok", [pid]) == []
    with pytest.raises(RuntimeError), Lab("topologies/port-restricted.yaml", name="td-fail") as lab:
        pid = lab.spawn("peer-a", ["sleep", "300"], name="s").pid
        raise RuntimeError("a failing test")
    assert leftovers("td-fail", [pid]) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_tears_the_lab_down(sig: int) -> None:
    name = f"td-sig{int(sig)}"
    proc, sleeper = start_holder(name)
    assert leftovers(name, [sleeper]) != []
    try:
        proc.send_signal(sig)
        proc.wait(15)
    finally:
        if proc.poll() is None:  # never leave the holder's lab behind, even on failure
            proc.terminate()
            proc.wait(15)
    assert leftovers(name, [sleeper]) == []


def test_sigkill_then_gc_removes_everything() -> None:
    name = "td-kill"
    proc, sleeper = start_holder(name)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    time.sleep(0.1)
    left = leftovers(name, [sleeper])
    assert f"netns rh-{name}.nat-a" in left and f"process {sleeper}" in left  # really left behind
    # the nft tables of the dead lab's routers are still loaded until gc
    nft = subprocess.run(
        ["ip", "netns", "exec", f"rh-{name}.nat-a", "nft", "list", "tables"],
        capture_output=True,
        text=True,
    ).stdout
    assert "rh_" in nft
    gc = subprocess.run(
        [sys.executable, "-m", "harness", "lab", "gc"], capture_output=True, text=True
    )
    # another `lab gc` on this machine (a parallel run) may have collected it first
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert leftovers(name, [sleeper]) == []


def test_gc_keeps_labs_in_use() -> None:
    with Lab("topologies/open-internet.yaml", name="td-live") as lab:
        subprocess.run(
            [sys.executable, "-m", "harness", "lab", "gc"], check=True, capture_output=True
        )
        assert Path(f"/run/netns/{lab.netns('server')}").exists()


def test_bad_topology_creates_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nnetworks:\n  lan: {subnet: 192.168.5.0/24}\nhosts:\n  h:\n    interfaces: {eth0: {network: nope}}\n"
    )
    before = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    r = subprocess.run(
        [sys.executable, "-m", "harness", "lab", "up", str(bad), "--name", "td-bad"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert f"{bad}:6: hosts.h.interfaces.eth0.network: no network named 'nope'" in r.stderr.replace(
        "\n", ""
    )
    after = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    assert [n for n in after if n not in before and "td-bad" in n] == []
    assert leftovers("td-bad") == []
