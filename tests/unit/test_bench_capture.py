"""The benchmarks' repeated captures (bench_analyze.build_capture): each repetition a call
of its own, read back with the analyser: its own dialogs and ICE generations, every
re-signed STUN check verified with the repetition's ice-pwd, no finding across calls."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_analyze  # noqa: E402

from harness.analysis.report import summarize_file  # noqa: E402


def facts(path: Path) -> dict[str, Any]:
    data = summarize_file(path)[1]
    pairs = [p for g in data["ice"]["generations"] for p in g["pairs"]]
    return {
        "generations": len(data["ice"]["generations"]),
        "dialogs": len(data["sip"]),
        "stun": data["stun"],
        "checked": sum(p["integrity_checked"] for p in pairs),
        "failures": sum(len(p["integrity_failures"]) for p in pairs),
        "fingerprint_failures": len(data["stun_fingerprint_failures"]),
        "findings": sum(len(s["findings"]) for s in data["sdp"]),
        "dtls": len(data["dtls"]),
    }


@pytest.mark.parametrize("source", [bench_analyze.RELAYED, bench_analyze.SOURCE])
def test_each_repetition_is_a_call_of_its_own(source: Path, tmp_path: Path) -> None:
    once = bench_analyze.build_capture(source, tmp_path / "1.pcap", 1, media=False)
    bench_analyze.build_capture(source, tmp_path / "3.pcap", 2 * once + 1, media=False)
    one, three = facts(tmp_path / "1.pcap"), facts(tmp_path / "3.pcap")
    assert one["checked"] > 0 and one["failures"] == 0 and one["generations"] > 0
    for key in ("generations", "dialogs", "checked", "findings", "dtls"):
        assert three[key] == 3 * one[key], (key, one[key], three[key])
    assert three["stun"] == {kind: 3 * n for kind, n in one["stun"].items()}
    assert three["failures"] == 0 and three["fingerprint_failures"] == 0


def test_ratio_interval_holds_the_ratio_of_medians_and_narrows_with_runs() -> None:
    """The benchmark's 95% interval of median(tshark) / median(harness): it holds the ratio
    of the medians, is the same for the same seed, and narrows as runs are added."""
    import random
    import statistics

    noise = random.Random(5)

    def runs(n: int) -> dict[str, list[tuple[float, float]]]:  # ratio 3, each run +-40%
        return {
            "harness": [(0.5 * noise.uniform(0.6, 1.4), 0.5) for _ in range(n)],
            "tshark": [(1.5 * noise.uniform(0.6, 1.4), 1.5) for _ in range(n)],
        }

    few, many = runs(11), runs(301)
    lo, hi = bench_analyze.ratio_interval(few, 0, random.Random(1))
    ratio = statistics.median(w for w, _ in few["tshark"]) / statistics.median(
        w for w, _ in few["harness"]
    )
    assert lo < ratio < hi
    assert (lo, hi) == bench_analyze.ratio_interval(few, 0, random.Random(1))
    lo_many, hi_many = bench_analyze.ratio_interval(many, 0, random.Random(1))
    assert lo_many < 3 < hi_many and hi_many - lo_many < (hi - lo) / 2
    assert bench_analyze.ratio_interval(few, 1, random.Random(1)) == (3.0, 3.0)  # no noise
