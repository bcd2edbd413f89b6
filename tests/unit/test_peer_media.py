"""peer_media judges the audio counters a peer reported (its stats snapshot after a step):
given no bounds it wants media both ways, as a count check given none wants at least one."""

from __future__ import annotations

from typing import Any

from harness.assertions.peer import run_peer_check


def snapshots(received: int, sent: int) -> dict[str, list[dict[str, Any]]]:
    """One snapshot of alice, as the runner records it after a step."""
    audio = {"packets_received": received, "packets_sent": sent}
    return {
        "alice": [{"step": 0, "stats": {"ice": {"state": "connected"}, "media": {"audio": audio}}}]
    }


def test_no_bounds_want_media_both_ways() -> None:
    assert run_peer_check("peer_media", snapshots(50, 50), {"peer": "alice"}).passed
    for received, sent in ((0, 50), (50, 0), (0, 0)):
        out = run_peer_check("peer_media", snapshots(received, sent), {"peer": "alice"})
        assert not out.passed and "< 1" in out.message, out


def test_a_bound_given_is_the_only_one() -> None:
    # a send-only peer: nothing received is fine when only what it sent is asked about
    out = run_peer_check("peer_media", snapshots(0, 50), {"peer": "alice", "min_packets_sent": 10})
    assert out.passed, out
    out = run_peer_check("peer_media", snapshots(0, 5), {"peer": "alice", "min_packets_sent": 10})
    assert not out.passed and "packets sent 5 < 10" in out.message, out
