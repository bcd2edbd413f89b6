"""The decisions of one link direction: drop, duplicate, hold, and when to release each packet.

Pure logic, no I/O: the relay feeds it arrival times and frames, it answers with
release times. Every random choice draws from its own stream seeded from
(seed, direction, purpose), so the loss pattern for a seed does not depend on
jitter, duplication or traffic in the other direction.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import asdict, dataclass, field

from harness.conditions.classify import PacketClass, classify, matches
from harness.conditions.model import PERFECT, Fault, FaultMatch, LinkConditions

JITTER_TAU_NS = 250_000_000
"""Correlation time of jitter without reordering (0.25 s)."""
MS = 1_000_000  # ns
DROP, HOLD = -1, -2  # _apply_faults' answers besides an extra delay


@dataclass
class DirectionStats:
    received: int = 0
    delivered: int = 0
    lost: int = 0
    burst_lost: int = 0
    blackout: int = 0
    queue_full: int = 0
    too_big: int = 0
    fault_dropped: int = 0
    fault_delayed: int = 0
    fault_held: int = 0
    duplicated: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ActiveFault:
    """A fault while it runs; one object is shared by both directions so `count` is shared."""

    fault: Fault
    ends_ns: int | None
    remaining: int | None
    hits: int = 0

    def expired(self, now: int) -> bool:
        return (self.ends_ns is not None and now >= self.ends_ns) or self.remaining == 0


@dataclass
class Held:
    """A packet a hold fault keeps back: what releases it, and when it goes regardless."""

    until: FaultMatch
    deadline: int
    frame: bytes


@dataclass
class Shaper:
    name: str  # "up" / "down"
    seed: int
    offset: int = 0
    """Bytes before the Ethernet header in a frame (the virtio-net header)."""
    cond: LinkConditions = PERFECT
    stats: DirectionStats = field(default_factory=DirectionStats)
    faults: list[ActiveFault] = field(default_factory=list)
    blackout_until: int = 0
    held: list[Held] = field(default_factory=list)
    released: list[tuple[int, bytes]] = field(default_factory=list)
    """(release time, frame) of held packets let go, for the relay to schedule."""

    def __post_init__(self) -> None:
        def rng(purpose: str) -> random.Random:
            return random.Random(f"{self.seed}/{self.name}/{purpose}")

        self._loss = rng("loss")
        self._burst = rng("burst")
        self._dup = rng("dup")
        self._jitter = rng("jitter")
        self._jitter_x = 0.0  # current slowly varying delay offset (ns)
        self._jitter_at = 0
        self._bad = False  # Gilbert-Elliott state
        self._queue: deque[int] = deque()  # departure times of packets at the bottleneck
        self._link_free = 0
        self._last = 0
        self.set(self.cond)

    def set(self, cond: LinkConditions) -> None:
        """Change conditions now; random streams continue, queued packets keep their times."""
        self.cond = cond
        self._delay = int(cond.delay * MS)
        self._jitter_ns = cond.jitter * MS
        self._ns_per_byte = 8e6 / cond.rate if cond.rate else 0.0
        self._perfect = cond == PERFECT

    def add_fault(self, fault: ActiveFault) -> None:
        self.faults.append(fault)

    def admit(self, frame: bytes, now: int) -> tuple[int, ...]:
        """Release times (ns, same clock as `now`) for this frame's copies; () means dropped,
        or held (a hold fault's: `released` gives it back later)."""
        st = self.stats
        st.received += 1
        if self._perfect and not self.faults and not self.held and now >= self.blackout_until:
            return (now,)
        if now < self.blackout_until or self.cond.blackout:
            st.blackout += 1
            return ()
        extra = 0
        pc = classify(frame, self.offset) if self.faults or self.held else None
        if self.faults:
            assert pc is not None
            extra = self._apply_faults(pc, frame, now)
            if extra == DROP:
                st.fault_dropped += 1
                return ()
            if extra == HOLD:
                st.fault_held += 1
                return ()
        c = self.cond
        size = len(frame) - self.offset
        if c.mtu is not None and self._ip_size(frame, size) > c.mtu:
            st.too_big += 1
            return ()
        if c.loss and self._loss.random() * 100 < c.loss:
            st.lost += 1
            return ()
        if c.burst_loss is not None and self._burst_drop(c):
            st.burst_lost += 1
            return ()
        copies = 1
        if c.duplicate and self._dup.random() * 100 < c.duplicate:
            copies = 2
            st.duplicated += 1
        out = []
        for _ in range(copies):
            t = now
            if self._ns_per_byte:
                q = self._queue
                while q and q[0] <= now:
                    q.popleft()
                if len(q) >= c.queue:
                    st.queue_full += 1
                    continue
                self._link_free = max(now, self._link_free) + int(size * self._ns_per_byte)
                q.append(self._link_free)
                t = self._link_free
            d = self._delay
            if self._jitter_ns:
                d = max(0, d + self._jitter_offset(c.reorder, now))
            t += d
            if not c.reorder:
                if t < self._last:
                    t = self._last
                self._last = t
            # a fault's delay is its class's alone: added after the link's own order, so
            # the packets behind it are not held up, and none overtakes the link's queue
            out.append(t + extra)
        if self.held and out and pc is not None:
            self._release_behind(pc, max(out))
        return tuple(out)

    def _release_behind(self, pc: PacketClass, t: int) -> None:
        """Let the packets held for class `pc` go right behind this one (released at `t`)."""
        keep = []
        for h in self.held:
            if matches(h.until, pc):
                t += 1
                self.released.append((t, h.frame))
            else:
                keep.append(h)
        self.held = keep
        self._last = max(self._last, t)

    def expire(self, now: int) -> None:
        """Let go of held packets whose longest hold is over (nothing released them)."""
        if any(h.deadline <= now for h in self.held):
            self.released += [(h.deadline, h.frame) for h in self.held if h.deadline <= now]
            self.held = [h for h in self.held if h.deadline > now]

    def release_all(self, now: int) -> None:
        """Let go of every held packet now (the faults are cleared)."""
        self.released += [(now, h.frame) for h in self.held]
        self.held = []

    def take_released(self) -> list[tuple[int, bytes]]:
        out, self.released = self.released, []
        return out

    def _jitter_offset(self, reorder: bool, now: int) -> int:
        """The delay's variation for a packet sent at `now`.

        With reordering allowed, each packet draws its own normal variation. Without,
        the variation drifts slowly (an Ornstein-Uhlenbeck process with correlation
        time JITTER_TAU_NS): its spread is still `jitter` and its mean still 0, but
        packets close together see nearly the same delay, so they rarely overtake
        each other. Independent draws clamped to FIFO order would instead make every
        delay longer (a 45 ms + 15 ms jitter link measured a 62 ms median).
        """
        if reorder:
            return int(self._jitter.gauss(0.0, self._jitter_ns))
        dt = max(0, now - self._jitter_at)
        keep = math.exp(-dt / JITTER_TAU_NS) if self._jitter_at else 0.0
        self._jitter_x = self._jitter_x * keep + self._jitter_ns * math.sqrt(
            1.0 - keep * keep
        ) * self._jitter.gauss(0.0, 1.0)
        self._jitter_at = now
        return int(self._jitter_x)

    def _burst_drop(self, c: LinkConditions) -> bool:
        g = c.burst_loss
        assert g is not None
        r = self._burst.random() * 100
        self._bad = (r >= g.r) if self._bad else (r < g.p)
        return self._burst.random() * 100 < (g.loss_bad if self._bad else g.loss_good)

    def _ip_size(self, frame: bytes, size: int) -> int:
        if self.offset and frame[1]:  # a GSO frame: the wire carries gso_size segments
            hdr_len = frame[2] | (frame[3] << 8)
            gso_size = frame[4] | (frame[5] << 8)
            return hdr_len - 14 + gso_size
        return size - 14

    def _apply_faults(self, pc: PacketClass, frame: bytes, now: int) -> int:
        """DROP, HOLD (the frame is held), or an extra delay in ns."""
        extra = 0
        for af in list(self.faults):
            if af.expired(now):
                self.faults.remove(af)
                continue
            if not matches(af.fault.match, pc):
                continue
            af.hits += 1
            if af.remaining is not None:
                af.remaining -= 1
            if af.fault.action == "drop":
                return DROP
            if af.fault.until is not None:  # hold
                self.held.append(Held(af.fault.until, now + int(af.fault.delay * MS), frame))
                return HOLD
            self.stats.fault_delayed += 1
            extra += int(af.fault.delay * MS)
        return extra
