"""`harness analyze` imports what a run uses only: checks with --expect, decryption with
--keylog, numpy never when compiled (media is counted in C, _rtpcount.c).

Each case runs the command's `main` in a fresh interpreter and lists the modules it
loaded; the runs with the options are the control that the names are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis import fastpath, pcapio, rtp

ROOT = Path(__file__).resolve().parents[2]
PCAP = "tests/data/pcaps/aiortc-datachannel.pcap"
KEYS = "tests/data/pcaps/aiortc-datachannel.keys"
ON_DEMAND = {
    "harness.assertions.registry",
    "harness.analysis.tlsdecrypt",
    "harness.analysis.dtlsdecrypt",
    "harness.analysis.sctp",
    "harness.analysis.dcep",
}


def loaded(*args: str) -> set[str]:
    probe = (
        "import contextlib, io, json, sys\n"
        "from harness.analysis.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['analyze', '--json', *{list(args)!r}])\n"
        "mods = [m for m in sys.modules if m.startswith('harness.') or m == 'numpy']\n"
        "print(json.dumps([code, sorted(mods)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    code, mods = json.loads(out.stdout)
    assert code == 0, out.stderr
    assert "harness.analysis.analyzer" in mods
    return set(mods)


def test_a_plain_run_imports_no_checks_and_no_decryption() -> None:
    assert loaded(PCAP) & ON_DEMAND == set()


def test_the_options_import_what_they_use() -> None:
    assert "harness.assertions.registry" in loaded("--expect", "dtls_handshakes", PCAP)
    assert ON_DEMAND - {"harness.assertions.registry"} <= loaded("--keylog", KEYS, PCAP)


@pytest.mark.skipif(
    fastpath._fastpath is None or pcapio._pcapwalk is None or rtp._rtpcount is None,
    reason="without the compiled walk, fast path and RTP count numpy reads the media",
)
def test_no_numpy() -> None:
    """A capture is analysed without importing numpy (~0.03 s of CPU, a third of a
    one-call capture's run): without media (DTLS, SCTP, STUN), with plain RTP, and with
    RTP relayed in TURN ChannelData."""
    assert "numpy" not in loaded(PCAP)
    assert "numpy" not in loaded("tests/data/pcaps/sip-ws.pcap")
    assert "numpy" not in loaded("tests/data/pcaps/aiortc-long.pcap")
    assert "numpy" not in loaded("tests/data/pcaps/aiortc-relayed.pcap")
