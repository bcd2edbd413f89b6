"""Probe statistics from raw arrivals."""

import pytest

from harness.conditions.measure import analyse, percentile


def test_percentile_nearest_rank() -> None:
    v = list(range(1, 101))
    assert (percentile(v, 50), percentile(v, 99), percentile(v, 100)) == (50, 99, 100)


def test_loss_bursts_duplicates_reordering_delay() -> None:
    # seqs 0..9 sent 1 ms apart; 3,4 lost (one burst of 2), 7 lost; 6 arrives twice; 9 before 8
    seqs = [0, 1, 2, 5, 6, 6, 9, 8]
    txs = [s * 1_000_000 for s in seqs]
    rxs = [t + 20_000_000 for t in txs]
    r = analyse(10, 100, seqs, txs, rxs)
    assert (r.received, r.lost, r.duplicates, r.reordered) == (7, 3, 1, 1)
    assert r.mean_burst == pytest.approx(1.5)
    assert r.delay_ms["p50"] == pytest.approx(20.0)
    assert r.loss_pct == pytest.approx(30.0)
