"""aioice's nomination race, named from the aiortc agent's log.

aioice, as the controlling agent, nominates every check it sends (aggressive nomination:
`nominate = self.ice_controlling and not self.remote_is_lite`, Connection.check_start)
and `check_complete` records each nominated success as the component's selected pair:
the pair whose check completes last wins, not the highest-priority one RFC 5245 8.1.1.2
wants. When a host-side pair succeeds (ICE completed) and a relay pair's check, sent at
the same time, completes a moment later, media moves to the relay. The relay may be the
agent's own (a local TURN allocation) or the far end's (a check triggered by the far
end's check from its relay, its candidate learned as peer-reflexive and signalled as a
relay after). A run on a busy machine sees it now and then (scenarios/p2p/README.md).
Its consequences: `peer_selected_pair` finding that side a relay, and media on two
paths, since the far end, controlled, sends on the highest-priority nominated pair while
aioice sends on its last (`rtp_flowing`: both ways, on different paths).

The agent logs aioice's INFO lines: every TURN allocation, every check's state change,
`ICE completed` and a peer-reflexive candidate later signalled; and every remote
candidate it is given (peer.py). The race is proven when, in one ICE generation, a check
succeeds after ICE completed with a relay on a side where the completed pair had none.
"""

from __future__ import annotations

import re

from harness.logfinding import LogFinding

_ALLOCATED = re.compile(r"TURN allocation created \('([^']+)', (\d+)\)")
#: a remote relay candidate: signalled to the agent, or aioice's peer-reflexive one
#: signalled as such later (the address is the candidate's, whichever came first)
_REMOTE_RELAY = re.compile(
    r"(?:remote candidate |signalled as Candidate\()\S+ \d+ \S+ \d+ (\S+) (\d+) typ relay\b"
)
_SUCCEEDED = re.compile(
    r"Check CandidatePair\(\('([^']+)', (\d+)\) -> \('([^']+)', (\d+)\)\) "
    r"State\.IN_PROGRESS -> State\.SUCCEEDED"
)
_COMPLETED = "ICE completed"
_RESTART = "ICE restart"


def may_fail(side: str) -> dict[str, str | None]:
    """What the race makes fail: the selected pair's `side` candidate is the relay, and
    the two ends' media on different pairs."""
    return {
        "peer_selected_pair": rf"^{side} is relay, expected",
        "rtp_flowing": r"^RTP after t=\S+ flows both ways, on different paths: ",
    }


def nomination_race(text: str) -> LogFinding | None:
    """The race, when the log proves it: a pair that succeeded after ICE had completed on a
    pair of the same generation, with a relay on a side where that pair had none (the pair
    aioice then used)."""
    Pair = tuple[str, int, str, int]
    lines = text.splitlines()
    local: set[tuple[str, int]] = set()
    remote: set[tuple[str, int]] = set()
    for line in lines:  # addresses first: a candidate may be named a relay after its check
        if (m := _ALLOCATED.search(line)) is not None:
            local.add((m.group(1), int(m.group(2))))
        elif (m := _REMOTE_RELAY.search(line)) is not None:
            remote.add((m.group(1), int(m.group(2))))

    def relayed(pair: Pair) -> list[str]:
        return [
            side
            for side, ok in (("local", pair[:2] in local), ("remote", pair[2:] in remote))
            if ok
        ]

    last: Pair | None = None  # the generation's latest successful check
    completed: Pair | None = None  # the pair ICE completed on, in this generation
    for line in lines:
        if _RESTART in line:
            last = completed = None  # a new generation
        elif (m := _SUCCEEDED.search(line)) is not None:
            pair = (m.group(1), int(m.group(2)), m.group(3), int(m.group(4)))
            had = relayed(completed) if completed is not None else []
            new = [side for side in relayed(pair) if side not in had]
            if completed is not None and new:
                return LogFinding(
                    f"aioice's nomination race: the pair {pair[0]}:{pair[1]} -> "
                    f"{pair[2]}:{pair[3]} ({new[0]} relay) succeeded after ICE had completed "
                    f"on {completed[0]}:{completed[1]} -> {completed[2]}:{completed[3]} and "
                    "replaced it as the selected pair (aioice keeps the nominated pair whose "
                    "check completes last: RFC 5245 8.1.1.2 wants the highest-priority one)",
                    known_race=True,
                    may_fail=may_fail(new[0]),
                )
            last = pair
        elif _COMPLETED in line and completed is None:
            completed = last
    return None
