"""A count a check may find zero of proves nothing on a capture that holds none of the
protocol (a wrong capture point, a dead link): such a check fails saying so, as
`no_rtp` does; a count check given no bounds wants at least one, as it says. Real
captures: a SIP call with plain RTP (no STUN, no ICE, no DTLS) and the same file cut
to its header (no packets at all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.analysis.report import summarize_file
from harness.analysis.session import Session
from harness.assertions.registry import load_checks, run_check

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
load_checks()


@pytest.fixture(scope="module")
def sip_call() -> Session:
    return summarize_file(PCAPS / "sipp-udp.pcap")[0]


@pytest.fixture(scope="module")
def nothing(tmp_path_factory: pytest.TempPathFactory) -> Session:
    empty = tmp_path_factory.mktemp("empty") / "empty.pcap"
    empty.write_bytes((PCAPS / "sipp-udp.pcap").read_bytes()[:24])  # the file header only
    return summarize_file(empty)[0]


#: (check, parameters allowing zero, the protocol it needs to have seen)
ZERO_ALLOWED = [
    ("stun_errors", {}, "STUN"),
    ("stun_errors", {"code": 403, "max": 0}, "STUN"),
    ("ice_restarts", {"count": 0}, "ICE connectivity check"),
    ("ice_restarts", {"max": 1}, "ICE connectivity check"),
    ("dtls_handshakes", {"count": 0}, "UDP"),
    ("sip_messages", {"method": "REFER", "count": 0}, "SIP"),
    ("sip_reinvite", {"count": 0}, "SIP dialog"),
    ("tls_connections", {"port": 5061, "count": 0}, "TLS connection to port 5061"),
    ("telephone_events", {"pt": 101, "encrypted": True, "count": 0}, "RTP"),
]


@pytest.mark.parametrize(("name", "params", "what"), ZERO_ALLOWED)
def test_zero_on_a_capture_without_the_protocol_fails(
    nothing: Session, name: str, params: dict[str, Any], what: str
) -> None:
    out = run_check(name, nothing, params)
    assert not out.passed and f"no {what} at all in the capture" in out.message, out


def test_zero_where_the_protocol_was_captured_passes(sip_call: Session) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("sip_messages", {"method": "REFER", "count": 0}),
        ("dtls_handshakes", {"count": 0}),
    ]
    for name, params in cases:
        out = run_check(name, sip_call, params)
        assert out.passed, (name, out)
    # the call has no STUN and no ICE: zero of those still proves nothing
    for name in ("stun_errors", "ice_restarts"):
        out = run_check(name, sip_call, {"max": 0})
        assert not out.passed and "at all in the capture" in out.message, (name, out)


@pytest.mark.parametrize(
    ("name", "params", "found"),
    [
        ("dtls_handshakes", {}, "0 DTLS handshake(s): 0 < min 1"),
        ("ice_restarts", {}, "0 ICE restart(s): 0 < min 1"),
        ("sip_messages", {"method": "REFER"}, "0 SIP message(s) with method=REFER: 0 < min 1"),
    ],
)
def test_no_bounds_want_at_least_one(
    sip_call: Session, name: str, params: dict[str, Any], found: str
) -> None:
    out = run_check(name, sip_call, params)
    assert not out.passed and out.message == found, out
