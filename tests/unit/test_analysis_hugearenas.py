"""pymalloc's arenas from huge pages (`_hugearenas.c`), as `harness analyze` runs with them
where a huge page costs less than its small pages (timed at start: cli.process says why),
or when RTC_HARNESS_HUGE_ARENAS=1 asks for them.

Each test runs in a process of its own: the allocator, once installed, stays for the
life of the process. Objects must keep their values through arenas handed out, let go
and handed out again; the kernel must really back the regions with huge pages where
it offers them; and the command must print the same with and without (the pure-Python
comparison, test_analysis_pure_python.py, runs without any extension).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis import cli

DATA = Path(__file__).resolve().parents[1] / "data"
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

pytestmark = pytest.mark.skipif(
    cli._hugearenas is None,
    reason="harness/analysis/_hugearenas.c is not built (pip install -e . builds it)",
)

CHURN = """
import sys
from harness.analysis import _hugearenas as h
assert h.stats()[0] is False
h.enable()
h.enable()  # a second call changes nothing
rounds = []
for r in range(3):
    # a million small objects: well over a hundred 1 MiB arenas
    objs = [(i, str(i), b"x" * (i % 40)) for i in range(1_000_000)]
    assert all(t[0] == i and t[1] == str(i) and len(t[2]) == i % 40 for i, t in enumerate(objs))
    rounds.append(h.stats())
    del objs  # pymalloc lets the emptied arenas go: they return to the free list
    rounds.append(h.stats())
print(rounds)
"""


def run(program: str) -> str:
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def test_objects_keep_their_values_through_arenas_let_go_and_reused() -> None:
    rounds = eval(run(CHURN))  # noqa: S307 (our own subprocess's repr of tuples)
    (on, regions, _, out, free), (_, _, _, _, freed) = rounds[0], rounds[1]
    assert on is True
    assert regions >= 4 and out >= 100  # the arenas came from the regions
    assert freed > free  # the emptied ones went back to the free list...
    # ...and were handed out again: the later rounds needed no new region
    assert [r[1] for r in rounds[2:]] == [regions] * 4, rounds
    assert rounds[-2][3] > out  # more arenas handed out in all, from the same regions


def test_the_kernel_backs_the_regions_with_huge_pages() -> None:
    mode = THP.read_text() if THP.exists() else ""
    setting = re.search(r"\[(\w+)\]", mode)
    if setting is None or setting[1] == "never":
        pytest.skip(f"transparent huge pages off on this machine ({THP}: {mode.strip()!r})")
    program = """
from harness.analysis import _hugearenas as h
h.enable()
objs = [(i, str(i)) for i in range(1_000_000)]
rollup = open("/proc/self/smaps_rollup").read()
print(h.stats()[2], [l for l in rollup.splitlines() if l.startswith("AnonHugePages")][0])
"""
    advised, _, line = run(program).partition(" ")
    kib = int(line.split()[1])
    assert int(advised) >= 1
    # every region was advised; the kernel may still fall back to small pages when it
    # has no free 2 MiB page at hand, but not for all of a hundred megabytes
    assert kib >= 2048, f"no huge page behind the arenas: {line.strip()}"


@pytest.mark.parametrize(
    "name", ["pcaps/aiortc-relayed.pcap", "pcaps/sipp-tcp.pcap", "pcaps/sip-ws.pcap"]
)
def test_the_command_prints_the_same_with_them(name: str) -> None:
    argv = [sys.executable, "-m", "harness", "analyze", "--json", str(DATA / name)]
    plain = subprocess.run(argv, capture_output=True, timeout=120)
    huge = subprocess.run(
        argv, capture_output=True, timeout=120, env=dict(os.environ, RTC_HARNESS_HUGE_ARENAS="1")
    )
    assert huge.returncode == plain.returncode == 0, plain.stderr[-2000:]
    assert b'"packets"' in huge.stdout
    assert huge.stdout == plain.stdout


@pytest.mark.parametrize(("value", "on"), [(None, None), ("0", False), ("1", True)])
def test_on_where_they_pay_or_as_asked(value: str | None, on: bool | None) -> None:
    """`harness analyze` as a process (cli.process) turns them on where the timing says a
    huge page costs less than its small pages (None: the answer is the test's), always
    for RTC_HARNESS_HUGE_ARENAS=1, never for =0 (and then times nothing)."""
    program = """
from harness.analysis import _hugearenas as h, cli
cli.main = lambda argv: print(h.stats()[0], h.probe()) or 0
cli.process(["analyze"])
"""
    env = {k: v for k, v in os.environ.items() if k != "RTC_HARNESS_HUGE_ARENAS"}
    if value is not None:
        env["RTC_HARNESS_HUGE_ARENAS"] = value
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    installed, _, timed = out.stdout.strip().partition(" ")
    probe = eval(timed)  # noqa: S307 (our own subprocess's repr of a tuple or None)
    if on is None:
        assert probe is not None and installed == str(probe[0] < probe[1])
    else:
        assert installed == str(on) and probe is None


@pytest.mark.parametrize("margin", [1.0, 0.0])
def test_the_test_keeps_its_region_or_gives_it_back(margin: float) -> None:
    """enable_if_cheap times once: installed, its region is the first arenas' (handed out
    as they come); declined (a margin of 0 declines anywhere), the region is unmapped and
    nothing is installed."""
    program = f"""
from harness.analysis import _hugearenas as h
first = h.enable_if_cheap({margin})
probe = h.probe()
again = h.enable_if_cheap()
objs = [(i, str(i)) for i in range(200_000)]
assert all(t[1] == str(t[0]) for t in objs)
print((first, again, probe, h.probe(), h.stats()))
"""
    first, again, probe, later, (on, regions, _, out, _) = eval(run(program))  # noqa: S307
    huge_ns, small_ns = probe
    assert huge_ns > 0 and small_ns > 0 and later == probe  # timed once
    assert first == again == on == (huge_ns < small_ns * margin)
    if on:
        assert regions >= 1 and out >= 1
    else:
        assert regions == 0 and out == 0
