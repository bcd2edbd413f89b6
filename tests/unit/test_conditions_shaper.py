"""One link direction's decisions, fed synthetic arrival times (the logic, without I/O)."""

import statistics

import pytest

from harness.conditions.model import Fault, LinkConditions
from harness.conditions.shaper import MS, ActiveFault, Shaper

FRAME = bytes(14 + 20 + 8 + 172)  # an all-zero Ethernet frame of a probe's size


def run(
    cond: LinkConditions, n: int, pps: float = 1000, seed: int = 7, frame: bytes = FRAME
) -> tuple[Shaper, list[tuple[int, tuple[int, ...]]]]:
    """The shaper and, per frame sent, (arrival time, release times: () if dropped)."""
    sh = Shaper("up", seed, cond=cond)
    out: list[tuple[int, tuple[int, ...]]] = []
    for i in range(n):
        now = int(i * 1e9 / pps)
        out.append((now, sh.admit(frame, now)))
    return sh, out


def test_same_seed_same_loss_pattern_other_seed_other() -> None:
    cond = LinkConditions(loss=5, jitter=3)
    a = [bool(r) for _, r in run(cond, 5000, seed=1)[1]]
    b = [bool(r) for _, r in run(LinkConditions(loss=5), 5000, seed=1)[1]]
    c = [bool(r) for _, r in run(cond, 5000, seed=2)[1]]
    assert a == b  # jitter draws do not shift the loss stream
    assert a != c


def test_loss_rate() -> None:
    sh, out = run(LinkConditions(loss=5), 20000)
    assert sh.stats.lost / 20000 == pytest.approx(0.05, abs=0.006)


def test_gilbert_elliott_mean_and_burst_length() -> None:
    sh, out = run(LinkConditions.model_validate({"burst_loss": {"loss": 10, "burst": 4}}), 50000)
    lost = [not r for _, r in out]
    bursts, run_len = [], 0
    for x in lost:
        if x:
            run_len += 1
        elif run_len:
            bursts.append(run_len)
            run_len = 0
    assert sum(lost) / len(lost) == pytest.approx(0.10, abs=0.015)
    assert statistics.mean(bursts) == pytest.approx(4, rel=0.15)


def test_jitter_without_reordering_is_fifo_and_with_it_reorders() -> None:
    _, fifo = run(LinkConditions(delay=50, jitter=10), 5000)
    times = [r[0] for _, r in fifo]
    assert times == sorted(times)
    _, free = run(LinkConditions(delay=50, jitter=10, reorder=True), 5000)
    delays = [(r[0] - now) / MS for now, r in free]
    assert statistics.pstdev(delays) == pytest.approx(10, rel=0.08)
    assert [r[0] for _, r in free] != sorted(r[0] for _, r in free)


def test_jitter_without_reordering_keeps_its_median_and_spread() -> None:
    """The slowly varying delay: centred on `delay`, spread `jitter`, never reordered
    (the old FIFO clamp of independent draws measured 62 ms for 45 +- 15 at 500 pps)."""
    _, out = run(LinkConditions(delay=45, jitter=15), 100_000, pps=500)  # 200 s
    delays = [(r[0] - now) / MS for now, r in out]
    assert statistics.median(delays) == pytest.approx(45, abs=1.5)
    assert statistics.pstdev(delays) == pytest.approx(15, rel=0.15)
    times = [r[0] for _, r in out]
    assert times == sorted(times)


def test_rate_serialises_and_queue_tail_drops() -> None:
    # 1000 pps of 214-byte frames = 1712 kbit/s into a 856 kbit/s bottleneck
    sh, out = run(LinkConditions(rate=856, queue=10), 2000)
    sent = [r[0] for _, r in out if r]
    gaps = {b - a for a, b in zip(sent, sent[1:], strict=False)}
    assert gaps == {2 * MS}  # one frame every 214*8/856k s = 2 ms
    assert sh.stats.queue_full == pytest.approx(1000, abs=15)


def test_duplicates_blackout_mtu() -> None:
    sh, out = run(LinkConditions(duplicate=10), 10000)
    assert sum(len(r) == 2 for _, r in out) / 10000 == pytest.approx(0.10, abs=0.01)
    sh, out = run(LinkConditions(blackout=True), 10)
    assert not any(r for _, r in out)
    sh, out = run(LinkConditions(mtu=199), 10)  # the IP packet is 200 bytes
    assert sh.stats.too_big == 10
    assert run(LinkConditions(mtu=200), 10)[0].stats.too_big == 0


def test_fault_count_and_window() -> None:
    stun = bytearray(FRAME)
    stun[12:14] = b"\x08\x00"
    stun[14] = 0x45
    stun[23] = 17  # UDP
    stun[42:50] = b"\x00\x01\x00\x00\x21\x12\xa4\x42"  # Binding request, magic cookie
    sh = Shaper("up", 1)
    af = ActiveFault(Fault.model_validate({"match": {"kind": "stun-binding"}}), 10 * MS, 3)
    sh.add_fault(af)
    got = [bool(sh.admit(bytes(stun), i * MS)) for i in range(6)]
    assert got == [False, False, False, True, True, True]
    sh.add_fault(ActiveFault(af.fault, 10 * MS, None))
    assert [bool(sh.admit(bytes(stun), t * MS)) for t in (8, 9, 10, 11)] == [False] * 2 + [True] * 2


def sip_frame(first_line: str) -> bytes:
    """An Ethernet/IPv4/UDP frame carrying a SIP message (enough for the classifier)."""
    payload = f"{first_line}\r\nCSeq: 1 INVITE\r\n\r\n".encode()
    frame = bytearray(42) + payload
    frame[12:14] = b"\x08\x00"
    frame[14] = 0x45
    frame[23] = 17  # UDP
    return bytes(frame)


RINGING, OK, TRYING = (sip_frame(f"SIP/2.0 {s}") for s in ("180 Ringing", "200 OK", "100 Trying"))
HOLD_180 = {
    "match": {"kind": "sip", "status": 180},
    "action": "hold",
    "until": {"kind": "sip", "status": 200},
    "delay": 500,
    "count": 1,
}


def test_hold_releases_right_behind_the_until_packet() -> None:
    sh = Shaper("down", 1, cond=LinkConditions(delay=20))
    sh.add_fault(ActiveFault(Fault.model_validate(HOLD_180), None, 1))
    assert sh.admit(TRYING, 0) == (20 * MS,)
    assert sh.admit(RINGING, 1 * MS) == () and sh.stats.fault_held == 1
    assert sh.admit(TRYING, 2 * MS) == (22 * MS,)  # another class passes, releases nothing
    assert not sh.take_released()
    assert sh.admit(OK, 3 * MS) == (23 * MS,)
    assert sh.take_released() == [(23 * MS + 1, RINGING)]  # the 180 right behind the 200
    assert sh.admit(RINGING, 4 * MS) == (24 * MS,)  # the count is used up: no more holding
    assert sh.admit(TRYING, 5 * MS)[0] > 23 * MS + 1  # and the link stays in order


def test_hold_ends_at_its_longest_and_when_cleared() -> None:
    sh = Shaper("down", 1)
    sh.add_fault(ActiveFault(Fault.model_validate({**HOLD_180, "count": None}), None, None))
    assert sh.admit(RINGING, 0) == () and sh.admit(RINGING, 1 * MS) == ()
    sh.expire(499 * MS)
    assert not sh.released
    sh.expire(500 * MS)  # nothing released the first: it goes when its hold is over
    assert sh.take_released() == [(500 * MS, RINGING)] and len(sh.held) == 1
    sh.release_all(600 * MS)
    assert sh.take_released() == [(600 * MS, RINGING)] and not sh.held


def test_a_delay_fault_delays_its_class_only() -> None:
    """The 200 waits 300 ms; the 180 and 100 behind it leave at once (a fault is no
    head-of-line block), and on a slow link they keep the link's own order."""
    delay_200 = {"match": {"kind": "sip", "status": 200}, "action": "delay", "delay": 300}
    for cond, base in ((LinkConditions(), 0), (LinkConditions(delay=20, jitter=5), 20 * MS)):
        sh = Shaper("down", 1, cond=cond)
        sh.add_fault(ActiveFault(Fault.model_validate(delay_200), None, 1))
        (t200,) = sh.admit(OK, 0)
        (t180,) = sh.admit(RINGING, 1 * MS)
        (t100,) = sh.admit(TRYING, 2 * MS)
        assert t200 >= 300 * MS and t180 < t100 < 300 * MS, (t200, t180, t100)
        assert t180 >= base - 15 * MS
