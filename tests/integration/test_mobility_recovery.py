"""Recovery metrics on a committed capture (no lab, no root): the edges of the analysis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.analysis.analyzer import analyze_file
from harness.analysis.recovery import LOG_NAME, RecoveryError, analyse, read_log
from harness.analysis.session import Session, build
from harness.assertions import recovery as _registers_recovery  # noqa: F401
from harness.assertions.registry import run_check

PCAP = Path(__file__).resolve().parents[1] / "data" / "pcaps" / "aiortc-direct.pcap"


def session_with_log(tmp_path: Path, events: list[dict[str, object]]) -> Session:
    shutil.copy(PCAP, tmp_path / "peer-b-eth0.pcap")
    (tmp_path / LOG_NAME).write_text(json.dumps(events))
    return build(analyze_file(tmp_path / "peer-b-eth0.pcap"))


def media_span(s: Session) -> tuple[float, float, str]:
    flows = [f for f in s.analysis.flows if f.streams]
    t0 = s.analysis.start_time
    return t0 + min(f.first_t for f in flows), t0 + max(f.last_t for f in flows), flows[0].dst[0]


def test_no_event_in_the_log_is_a_clear_error(tmp_path: Path) -> None:
    s = session_with_log(tmp_path, [])
    with pytest.raises(RecoveryError, match="no network event during media"):
        analyse(s, read_log(tmp_path))


def test_an_event_media_flowed_through_shows_no_outage(tmp_path: Path) -> None:
    s = session_with_log(tmp_path, [])
    first, last, dst = media_span(s)
    mid = (first + last) / 2
    (tmp_path / LOG_NAME).write_text(json.dumps([{"t": mid, "kind": "route", "node": "peer-a"}]))
    rec = analyse(s, read_log(tmp_path), fixed=dst)
    for name in ("up", "down"):
        d = rec.directions[name]
        assert d.packets > 50 and d.recovered and d.new_path == d.old_path, d
        assert d.largest_gap_s < 0.2 and d.lost == 0, d
    out = run_check("recovery", s, {"fixed": dst, "max_gap_s": 0.2})
    assert out.passed, out
    out = run_check("recovery", s, {"fixed": dst, "recovered": False})
    assert not out.passed and "recovered True, expected False" in out.message


def test_bounds_fail_with_the_measured_value(tmp_path: Path) -> None:
    s = session_with_log(tmp_path, [])
    first, last, dst = media_span(s)
    (tmp_path / LOG_NAME).write_text(json.dumps([{"t": first + 0.5, "kind": "handoff"}]))
    out = run_check("recovery", s, {"fixed": dst, "max_gap_s": 0.001, "direction": "up"})
    assert not out.passed and "up: largest gap" in out.message and "> 0.001 s" in out.message
    assert any(line.startswith("up: old udp") for line in out.evidence), out.evidence
    # the gap's span, for a run to name a host stall inside it: the checked direction's only
    up = analyse(s, read_log(tmp_path), fixed=dst).directions["up"]
    assert out.windows == [(up.gap_from, up.gap_to)], out.windows
    assert up.gap_from is not None and up.gap_to is not None  # the windows above hold them
    assert up.gap_to - up.gap_from == pytest.approx(up.largest_gap_s)


def test_both_ends_keeping_their_ports_need_fixed(tmp_path: Path) -> None:
    s = session_with_log(tmp_path, [])
    first, last, _ = media_span(s)
    (tmp_path / LOG_NAME).write_text(json.dumps([{"t": first + 0.5, "kind": "route"}]))
    with pytest.raises(RecoveryError, match="give `fixed: IP`"):
        analyse(s, read_log(tmp_path))
