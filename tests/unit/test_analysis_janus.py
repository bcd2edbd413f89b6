"""Janus events: decoded when first read (model.JanusLog), the same as decoded in the walk.

The walk keeps a JSON body whole unless it may carry a JSEP (whose SDP is read at once);
the log decodes the rest on its first read. Events, their order and what they say must be
what decoding every body in the walk gave.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis import http
from harness.analysis.analyzer import Analyzer, analyze_file
from harness.analysis.model import Flow, JanusEvent, JanusLog

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = (
    ROOT / "benchmarks" / "data" / "janus-sip-relayed.pcap",  # Janus' REST API, long polls
    ROOT / "tests" / "data" / "pcaps" / "sip-ws.pcap",
)


def said(ev: JanusEvent) -> tuple[object, ...]:
    return (ev.frame, ev.time, ev.src, ev.dst, ev.flow, ev.relayed, ev.label, ev.transaction)


def eager(path: Path) -> list[tuple[object, ...]]:
    """Every body decoded in the walk, as the analyser did before the log."""
    out: list[tuple[object, ...]] = []
    real = Analyzer._json_body

    def decode(self: Analyzer, flow: Flow, body: bytes, t: float, no: int, source: str) -> None:
        for msg in http.janus_messages(body):
            if msg["janus"] == "keepalive":
                continue
            session = msg.get("session_id") or msg.get("sender")
            out.append(
                (no, t, flow.src, flow.dst, flow.label, bool(flow.via), http.janus_label(msg))
                + (str(msg.get("transaction")) if msg.get("transaction") else None,)
                + (str(session) if session else None, isinstance(msg.get("jsep"), dict))
            )
        real(self, flow, body, t, no, source)

    Analyzer._json_body = decode  # type: ignore[method-assign]  # patched for the walk
    try:
        analyze_file(path)
    finally:
        Analyzer._json_body = real  # type: ignore[method-assign]  # and restored
    return out


def test_log_says_what_decoding_in_the_walk_said() -> None:
    kept = decoded = 0
    for path in CAPTURES:
        log = analyze_file(path).janus
        kept += sum(isinstance(body, bytes) for *_, body in log._seen)
        decoded += sum(isinstance(body, list) for *_, body in log._seen)
        got = [(*said(ev), ev.session, ev.has_jsep) for ev in log]
        assert got == eager(path)
        events = list(log)
        assert len(log) == len(events) and log[:2] == events[:2] and log == list(log)
    # long polls kept whole; JSEP bodies read at once, but for their SDP alone when the
    # compiled scan reads them (http.jsep_read): then they are kept whole too
    assert kept >= 10 and (decoded >= 3 if http._jsepscan is None else kept >= 13)


def test_log_says_the_same_when_jsep_bodies_are_decoded_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A JSEP body kept whole (http.jsep_read) gives the events decoding it at once gave."""
    for path in CAPTURES:
        got = [(*said(ev), ev.session, ev.has_jsep) for ev in analyze_file(path).janus]
        with monkeypatch.context() as m:
            m.setattr(http, "jsep_read", lambda body: None)
            log = analyze_file(path).janus
        assert got == [(*said(ev), ev.session, ev.has_jsep) for ev in log]


def test_bodies_that_may_carry_a_jsep_or_raise_are_read_at_once() -> None:
    plain = b'{"janus": "ack", "transaction": "x"}'
    assert http.without_jsep(plain)
    for body in (
        b'{"janus": "event", "jsep": {"type": "offer", "sdp": "v=0"}}',
        b'{"janus": "event", "\\u006asep": {"type": "offer", "sdp": "v=0"}}',  # an escaped key
        plain.decode().encode("utf-16-le"),  # json.loads finds the encoding
        b"[" * 5000 + b"]" * 5000,  # json's scanner raises RecursionError: counted in the walk
    ):
        assert not http.without_jsep(body), body[:40]
    assert http.signalling(b'{"janus": "event", "\\u006asep": {"type": "offer", "sdp": "v"}}')[1]


def test_log_reads_in_frame_order_and_takes_events() -> None:
    flow = Flow("tcp", ("10.0.0.1", 5000), ("10.0.0.2", 8088), None)
    log = JanusLog()
    log.add(1, 0.1, flow, b'[{"janus": "ack"}, {"janus": "keepalive"}, {"janus": "x"}, 1]')
    log.add(2, 0.2, flow, [{"janus": "event", "jsep": {}}])
    log.add(3, 0.3, flow, b"not json")
    assert [(e.frame, e.label, e.has_jsep) for e in log] == [
        (1, "ack", False),
        (1, "x", False),
        (2, "event", True),
    ]
    log.add(4, 0.4, flow, b'{"janus": "success", "transaction": "t1", "sender": 7}')
    log.append(JanusEvent(5, 0.5, flow.src, flow.dst, flow.label, False, {"janus": "media"}))
    assert [(e.frame, e.label, e.transaction, e.session) for e in log][-2:] == [
        (4, "success", "t1", "7"),
        (5, "media", None, None),
    ]
    assert len(log) == 5 and log == list(log) and log[-1].frame == 5
