"""Short, bounded versions of the reliability fuzzing (the long runs: benchmarks/bench_reliability.py).

Any scenario or topology text loads or raises one HarnessError (never a traceback);
mutated packets of real captures never crash the analyser.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tests.fuzzing import SCALE, config_inputs, fuzz_pcap_packets, load_config_text

_TMP = tempfile.TemporaryDirectory(prefix="rh-config-fuzz-")  # removed at exit
FOLDER = Path(_TMP.name)


@seed(12)
@settings(
    max_examples=int(200 * SCALE),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(config_inputs())
def test_config_text_loads_or_is_one_clear_error(text: str) -> None:
    tb = load_config_text(text, FOLDER)
    assert tb is None, tb


def test_mutated_packets_never_crash_the_analyser() -> None:
    out = fuzz_pcap_packets(int(20_000 * SCALE), seed=12)
    assert out["packets"] == int(20_000 * SCALE)
    assert out["crashes"] == 0, out["examples"]
