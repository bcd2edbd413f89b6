"""aioice's nomination race (the pair whose check completes last wins), named from the
aiortc agent's log, excuses exactly what it causes: `peer_selected_pair` finding a relay.
Real agent logs (tests/data/logs/SOURCES.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from harness.analysis.analyzer import analyze_file
from harness.analysis.session import build
from harness.assertions.registry import run_check
from harness.peers.aioice_diag import nomination_race
from harness.peers.launch import LaunchedPeer
from harness.runtime.base import NodeProcess
from harness.scenario.result import CheckResult, RunResult
from harness.scenario.verdict import FAIL, XFAIL, decide

LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"
RACE = (LOGS / "aiortc-nomination-race.log").read_text()
HOST = (LOGS / "aiortc-host-pair.log").read_text()
LATE = (LOGS / "aiortc-late-remote-relay.log").read_text()
RELAY_AFTER_RELAY = (LOGS / "aiortc-relay-after-relay.log").read_text()


def crossed() -> CheckResult:
    """What `rtp_flowing` found on that run's capture (peer-a-eth0.pcap)."""
    pcap = LOGS.parent / "pcaps" / "aiortc-chromium-crossed-paths.pcap"
    o = run_check("rtp_flowing", build(analyze_file(pcap)), {})
    return CheckResult("rtp_flowing", o.passed, o.message, o.evidence, params={})


def test_the_race_is_proven_by_the_log() -> None:
    found = nomination_race(RACE)
    assert found is not None and found.known_race
    assert "pair 198.18.0.12:49190 -> 198.18.0.11:56759 (local relay)" in found.text
    assert "completed on 198.18.0.10:54514 -> 198.18.0.11:56759" in found.text
    assert found.may_fail == {
        "peer_selected_pair": r"^local is relay, expected",
        "rtp_flowing": r"^RTP after t=\S+ flows both ways, on different paths: ",
    }


def test_no_race_when_ice_completed_on_the_only_success() -> None:
    assert nomination_race(HOST) is None


def test_the_restart_starts_a_new_generation() -> None:
    # a relay success after ICE completed, but in the next generation: not the race
    lines = RACE.splitlines()
    completed = next(i for i, line in enumerate(lines) if "ICE completed" in line)
    restart = next(line for line in lines if "ICE restart" in line)
    assert (
        nomination_race("\n".join([*lines[: completed + 1], restart, *lines[completed + 1 :]]))
        is None
    )


def remote_race() -> str:
    """LATE with what CI's run of 2026-12-03 (seed 302106145, "remote is relay, expected
    host/prflx"; only its tail kept) logged after ICE completed: Chromium's check from its
    relay reached alice's host, learned as peer-reflexive, and the triggered check that
    aioice nominated succeeded; the candidate was then signalled as the relay it is."""
    lines = LATE.splitlines()
    completed = next(i for i, line in enumerate(lines) if "ICE completed" in line)
    stamp, ice = "2026-12-03 05:31:43,004 ", "aioice.ice INFO Connection(1) "
    prflx = "Candidate(ODGNPmFLfx 1 udp 1853825023 198.18.0.12 49370 typ prflx)"
    pair = "CandidatePair(('198.18.0.10', 51596) -> ('198.18.0.12', 49370))"
    late = [
        f"{stamp}{ice}Discovered peer reflexive candidate {prflx}",
        f"{stamp}{ice}Check {pair} State.WAITING -> State.IN_PROGRESS",
        f"{stamp}{ice}Check {pair} State.IN_PROGRESS -> State.SUCCEEDED",
    ]
    return "\n".join([*lines[: completed + 1], *late, *lines[completed + 1 :]])


def test_a_remote_relay_signalled_late_and_never_checked_is_no_race() -> None:
    # Chromium's relay candidate reached alice 55 ms after ICE completed, no check on it
    assert "typ relay" in LATE and nomination_race(LATE) is None


def test_the_race_on_the_far_ends_relay() -> None:
    found = nomination_race(remote_race())
    assert found is not None and found.known_race
    assert "pair 198.18.0.10:51596 -> 198.18.0.12:49370 (remote relay)" in found.text
    assert "completed on 198.18.0.10:51596 -> 198.18.0.11:44938" in found.text
    assert found.may_fail is not None
    assert found.may_fail["peer_selected_pair"] == r"^remote is relay, expected"


def test_the_race_from_a_relay_pair_to_a_relay_relay_pair() -> None:
    # CI, 2026-12-03 (seed 334608537): ICE completed on alice's relay -> Chromium's NAT
    # address, then relay -> Chromium's relay succeeded 2 ms later and aioice moved to it
    found = nomination_race(RELAY_AFTER_RELAY)
    assert found is not None and found.known_race
    assert "pair 198.18.0.12:49404 -> 198.18.0.12:49289 (remote relay)" in found.text
    assert "completed on 198.18.0.12:49404 -> 198.18.0.11:48000" in found.text
    # a later success with no relay on a new side is no race: the same pair again
    lines = RELAY_AFTER_RELAY.splitlines()
    late = next(line for line in lines if "49289)) State.IN_PROGRESS -> State.SUCCEEDED" in line)
    same = late.replace("('198.18.0.12', 49289)", "('198.18.0.11', 48000)")
    assert nomination_race(RELAY_AFTER_RELAY.replace(late, same)) is None


def test_a_remote_relay_is_known_by_its_address_whenever_named() -> None:
    # the agent names the candidates it is given; CI's agent did not, and aioice's line
    # (from that run's tail) named it a relay after its check: either proves the race
    text = remote_race()
    [named] = [line for line in text.splitlines() if "49370 typ relay" in line]
    signalled = (
        "2026-12-03 05:31:43,058 aioice.ice INFO Connection(1) Peer reflexive candidate "
        "Candidate(ODGNPmFLfx 1 udp 1853825023 198.18.0.12 49370 typ prflx) signalled as "
        "Candidate(3825919126 1 udp 58662911 198.18.0.12 49370 typ relay raddr 198.18.0.11 "
        "rport 44938)"
    )
    assert nomination_race(text.replace(named, signalled)) is not None
    # named nowhere: a peer-reflexive candidate that stayed one is no relay, so no race
    assert nomination_race(text.replace(named, "")) is None


def run(*checks: CheckResult, log: str = RACE) -> RunResult:
    found = nomination_race(log)
    assert found is not None
    found.source = "alice"
    return RunResult("cell", "x.yaml", 1, Path("/n"), checks=list(checks), races=[found.to_dict()])


def pair(message: str) -> CheckResult:
    return CheckResult("peer_selected_pair", False, message, params={"peer": "alice"})


def test_it_excuses_the_pair_it_moved() -> None:
    v = decide(run(pair("local is relay, expected host")))
    assert (v.state, v.race) == (XFAIL, True) and "alice: aioice's nomination race" in v.reason


def test_it_excuses_media_on_two_paths() -> None:
    # the far end sends on the highest-priority nominated pair, aioice on its last one
    v = decide(run(crossed(), log=RELAY_AFTER_RELAY))
    assert (v.state, v.race) == (XFAIL, True) and "(remote relay)" in v.reason
    assert decide(run(pair("local is relay, expected host"), crossed())).state == XFAIL
    one_way = replace(crossed(), message="RTP after t=0.0s flows one way only on every path")
    assert decide(run(one_way, log=RELAY_AFTER_RELAY)).state == FAIL


def test_it_excuses_nothing_else() -> None:
    assert decide(run(pair("remote is relay, expected host"))).state == FAIL
    tone = CheckResult("peer_received_tone", False, "alice received no audio it could measure")
    assert decide(run(pair("local is relay, expected host"), tone)).state == FAIL


def test_the_aiortc_agent_reads_its_log(tmp_path: Path) -> None:
    log = tmp_path / "peer-a-alice.log"
    log.write_text(RACE)
    proc = SimpleNamespace(log_path=log)  # what the runtime gives: its log
    proc.log_text = lambda: NodeProcess.log_text(cast(Any, proc))
    process = cast(Any, proc)
    [found] = LaunchedPeer("alice", tmp_path / "s", process, "aiortc").log_findings()
    assert found.known_race
    assert LaunchedPeer("alice", tmp_path / "s", process, "chromium").log_findings() == []
    log.write_text(HOST)
    assert LaunchedPeer("alice", tmp_path / "s", process, "aiortc").log_findings() == []


def test_the_far_ends_relay_excuses_that_side_only() -> None:
    v = decide(run(pair("remote is relay, expected host/prflx"), log=remote_race()))
    assert (v.state, v.race) == (XFAIL, True) and "(remote relay)" in v.reason
    assert decide(run(pair("local is relay, expected host"), log=remote_race())).state == FAIL
