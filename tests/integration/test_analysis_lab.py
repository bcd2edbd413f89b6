"""Fresh calls in a lab, captured by the harness, analysed, and checked against tshark."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.analyzer import analyze_file
from harness.analysis.session import build
from harness.assertions.registry import run_check
from tests.unit.test_analysis_tshark import rtp_per_ssrc

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

_spec = importlib.util.spec_from_file_location(
    "make_pcaps", Path(__file__).resolve().parents[1] / "data" / "make_pcaps.py"
)
assert _spec and _spec.loader
make_pcaps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_pcaps)


@pytest.mark.parametrize("relayed", [False, True], ids=["direct", "relayed"])
def test_aiortc_call(tmp_path: Path, relayed: bool) -> None:
    path = make_pcaps.make_aiortc(tmp_path / "call.pcap", relayed=relayed)
    s = build(analyze_file(path))
    assert s.analysis.rtp_streams, "no RTP captured"
    media_start = min(st.first_t for st in s.analysis.rtp_streams)
    checks: list[tuple[str, dict[str, Any]]] = [
        ("ice_connected", {}),
        ("selected_pair_type", {"type": "relay" if relayed else "host"}),
        ("dtls_handshakes", {"count": 1, "complete": True}),
        ("dtls_fingerprint_matches_sdp", {}),
        ("rtp_flowing", {"after_s": media_start + 1.5}),  # the call lasts 3 s
        ("max_media_gap", {"max_s": 1.0}),  # a smoke bound: the box is shared
        ("sdp_conformance", {"profile": "webrtc"}),
    ]
    for name, params in checks:
        o = run_check(name, s, params)
        assert o.passed, (name, o.message, o.evidence)
    if shutil.which("tshark"):
        mine: Counter[int] = Counter()
        for st in s.analysis.rtp_streams:
            mine[st.ssrc] += st.packets
        assert mine == rtp_per_ssrc(path)


def test_sipp_call_over_tcp(tmp_path: Path) -> None:
    path = make_pcaps.make_sipp(tmp_path / "sip.pcap", "tcp")
    s = build(analyze_file(path))
    assert [d.state for d in s.dialogs] == ["terminated"]
    assert {e.transport for e in s.analysis.sip} == {"tcp"}
    assert run_check("rtp_flowing", s, {"after_s": 1.0}).passed
