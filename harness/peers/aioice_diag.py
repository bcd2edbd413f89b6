"""aioice's nomination race, named from the aiortc agent's log.

aioice, as the controlling agent, nominates every check it sends (aggressive nomination:
`nominate = self.ice_controlling and not self.remote_is_lite`, Connection.check_start)
and `check_complete` records each nominated success as the component's selected pair:
the pair whose check completes last wins, not the highest-priority one RFC 5245 8.1.1.2
wants. When a host-side pair succeeds (ICE completed) and a relay pair's check, sent at
the same time, completes a moment later, media moves to the relay. A run on a busy
machine sees it now and then (scenarios/p2p/README.md); its only consequence is the pair:
`peer_selected_pair` finding the local candidate a relay.

The agent logs aioice's INFO lines: every TURN allocation, every check's state change and
`ICE completed`. The race is proven when, in one ICE generation, a check whose local
address is one of the agent's TURN allocations succeeds after ICE completed on a pair
whose local address is not.
"""

from __future__ import annotations

import re

from harness.logfinding import LogFinding

_ALLOCATED = re.compile(r"TURN allocation created \('([^']+)', (\d+)\)")
_SUCCEEDED = re.compile(
    r"Check CandidatePair\(\('([^']+)', (\d+)\) -> \('([^']+)', (\d+)\)\) "
    r"State\.IN_PROGRESS -> State\.SUCCEEDED"
)
_COMPLETED = "ICE completed"
_RESTART = "ICE restart"

#: what the race makes fail: the selected pair's local candidate is the relay
MAY_FAIL: dict[str, str | None] = {"peer_selected_pair": r"^local is relay, expected"}


def nomination_race(text: str) -> LogFinding | None:
    """The race, when the log proves it: a relay pair that succeeded after ICE had completed
    on a host-side pair of the same generation (the one aioice then used)."""
    Pair = tuple[str, int, str, int]
    relays: set[tuple[str, int]] = set()
    last: Pair | None = None  # the generation's latest successful check
    completed: Pair | None = None  # the pair ICE completed on, in this generation
    for line in text.splitlines():
        if (m := _ALLOCATED.search(line)) is not None:
            relays.add((m.group(1), int(m.group(2))))
        elif _RESTART in line:
            last = completed = None  # a new generation
        elif (m := _SUCCEEDED.search(line)) is not None:
            pair = (m.group(1), int(m.group(2)), m.group(3), int(m.group(4)))
            if completed is not None and pair[:2] in relays and completed[:2] not in relays:
                return LogFinding(
                    "aioice's nomination race: the relay pair "
                    f"{pair[0]}:{pair[1]} -> {pair[2]}:{pair[3]} succeeded after ICE had "
                    f"completed on {completed[0]}:{completed[1]} -> {completed[2]}:"
                    f"{completed[3]} and replaced it as the selected pair (aioice keeps the "
                    "nominated pair whose check completes last: RFC 5245 8.1.1.2 wants the "
                    "highest-priority one)",
                    known_race=True,
                    may_fail=MAY_FAIL,
                )
            last = pair
        elif _COMPLETED in line and completed is None:
            completed = last
    return None
