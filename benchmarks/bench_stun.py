"""CPU time of the STUN/TURN side of `harness analyze`, in-process, parts side by side.

    .venv/bin/python benchmarks/bench_stun.py [--repeat 9] [--cases] [FILE ...]

For each capture (--cases: issue 15's (b) TURN-relayed call and (c) handshake-heavy
file, built as bench_analyze.py builds them):
- walk: the per-frame walk as it is, and with the STUN side cut out (TurnRelay._stun
  only counting): the difference is what STUN costs the walk (parsing, the events, TURN
  bookkeeping, and the dissection of what Send/Data indications relay: DTLS, STUN); and
  with those relayed payloads dropped (TurnRelay._inner doing nothing): STUN alone;
- parse: the parsers alone over the file's STUN messages (compiled and Python);
- integrity: session.build as it is, and with check_integrity answering without work:
  the difference is what the MESSAGE-INTEGRITY checks of ICE cost.
Medians of --repeat CPU times (process_time), the variants alternating, with the cyclic
collector off and results freed outside the clock (as `harness analyze` runs). It uses only
what main has too, so `PYTHONPATH=<a main export> python bench_stun.py` gives "before".
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness.analysis import analyzer, session, stun, turnrelay  # noqa: E402
from harness.analysis.model import Analysis, Flow  # noqa: E402

CASES = (("b", 250_000, True), ("c", 100_000, False))


def cpu(fn: Callable[[], object]) -> float:
    """CPU seconds of fn(), its result freed after the clock stops (as `harness analyze`
    never frees it: it ends with os._exit, the cyclic collector off)."""
    start = time.process_time()
    result = fn()
    spent = time.process_time() - start
    del result
    return spent


def medians(variants: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    runs: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeat):
        for k, fn in variants.items():
            runs[k].append(cpu(fn))
    return {k: round(statistics.median(v), 4) for k, v in runs.items()}


def measure(path: Path, repeat: int) -> dict[str, object]:
    data = path.read_bytes()
    real = turnrelay.TurnRelay._stun
    messages: list[bytes] = []

    def record(
        self: turnrelay.TurnRelay, flow: Flow, key: bytes, p: bytes, t: float, no: int
    ) -> None:
        messages.append(p)
        real(self, flow, key, p, t, no)

    def counted(
        self: turnrelay.TurnRelay, flow: Flow, key: bytes, p: bytes, t: float, no: int
    ) -> None:
        flow.kinds["stun"] += 1

    relay = turnrelay.TurnRelay._inner

    def dropped(self: turnrelay.TurnRelay, *args: object) -> None:
        pass

    # the variants replace TurnRelay's methods for a run: mypy forbids assigning to a
    # method (method-assign), which is the point here
    def walk(
        stun_side: Callable[..., None], inner: Callable[..., None] = relay
    ) -> Callable[[], Analysis]:
        def run() -> Analysis:
            turnrelay.TurnRelay._stun = stun_side  # type: ignore[method-assign]  # see above
            turnrelay.TurnRelay._inner = inner  # type: ignore[method-assign]  # see above
            try:
                return analyzer.analyze_bytes(data, path)
            finally:
                turnrelay.TurnRelay._stun = real  # type: ignore[method-assign]  # see above
                turnrelay.TurnRelay._inner = relay  # type: ignore[method-assign]  # see above

        return run

    result = walk(record)()
    walks = medians(
        {
            "with_stun": walk(real),
            "with_stun_send_data_payloads_dropped": walk(real, dropped),
            "stun_cut_out": walk(counted),
        },
        repeat,
    )

    parsers = {"parse": (stun.parse, stun.parse_classic)}
    if hasattr(stun, "parse_py"):  # this branch: the compiled parsers and the Python ones
        parsers["parse_py"] = (stun.parse_py, stun.parse_classic_py)

    def loop(parse: Callable[..., object], classic: Callable[..., object]) -> Callable[[], object]:
        return lambda: [parse(p) or classic(p) for p in messages]

    parse = medians({k: loop(*v) for k, v in parsers.items()}, repeat)

    checked = session.check_integrity

    def build(check: Callable[..., bool | None]) -> Callable[[], object]:
        def run() -> object:
            session.check_integrity = check
            try:
                return session.build(result)
            finally:
                session.check_integrity = checked

        return run

    def no_check(raw: bytes, key: bytes, msg: stun.StunMessage | None = None) -> bool | None:
        return True

    sessions = medians({"with_checks": build(checked), "checks_cut_out": build(no_check)}, repeat)
    return {
        "file": str(path),
        "stun_messages": len(messages),
        "compiled_stun_parser": getattr(stun, "_stunparse", None) is not None,
        "walk_cpu_s": walks,
        "stun_side_of_walk_cpu_s": round(walks["with_stun"] - walks["stun_cut_out"], 4),
        "stun_side_without_send_data_payloads_cpu_s": round(
            walks["with_stun_send_data_payloads_dropped"] - walks["stun_cut_out"], 4
        ),
        "parsers_alone_cpu_s": parse,
        "session_cpu_s": sessions,
        "integrity_checks_cpu_s": round(sessions["with_checks"] - sessions["checks_cut_out"], 4),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--cases", action="store_true", help="issue 15's (b) and (c)")
    p.add_argument("files", nargs="*", type=Path)
    args = p.parse_args()
    gc.disable()  # as harness.analysis.cli.process
    with tempfile.TemporaryDirectory() as tmp:
        files = list(args.files)
        if args.cases:
            import bench_analyze

            for name, packets, media in CASES:
                files.append(Path(tmp) / f"case-{name}.pcap")
                bench_analyze.build_capture(bench_analyze.RELAYED, files[-1], packets, media)
        for f in files:
            print(json.dumps(measure(f, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
