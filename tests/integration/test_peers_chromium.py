"""Chromium peer agents in real labs: direct, NATed with trickle and ICE restart, relay-only.

Two headless browsers (the most this machine runs at once), one per peer node;
coturn on `server` where STUN or TURN is needed. Audio is a known tone each way,
checked by its measured frequency at the far end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from harness.components.coturn import Coturn
from harness.peers.browser.fakemic import write_tone_wav
from harness.peers.client import PeerError
from harness.peers.launch import LaunchedPeer, start_peer
from harness.peers.signaling import connect_pair, negotiate, restart_ice
from harness.peers.tone import dominant_frequency
from tests.integration import peerlab
from tests.integration.peerlab import TOPOLOGIES, lab_with_turn

TONE_A, TONE_B = 440.0, 880.0
T = TypeVar("T")

lab_only = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/chromium").exists(),
    reason="needs root for network namespaces and Debian's chromium",
)


def test_tone_wav_loops_cleanly(tmp_path: Path) -> None:
    """The fake-microphone file holds whole cycles of the asked tone at 48 kHz."""
    path = write_tone_wav(tmp_path / "t.wav", 997.0)
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (48000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    hz = dominant_frequency(pcm)
    assert hz is not None and abs(hz - 997.0) < 1.0
    # Played twice in a row there is no jump at the seam.
    diffs = np.abs(np.diff(np.concatenate([pcm, pcm]).astype(np.int32)))
    assert diffs[len(pcm) - 1] <= diffs[: len(pcm) - 1].max()
    with pytest.raises(ValueError):
        write_tone_wav(tmp_path / "x.wav", 5.0)


# -- lab helpers -------------------------------------------------------------------------


def run(coro: Awaitable[T], timeout: float = 80.0) -> T:
    return peerlab.run(coro, timeout)


@asynccontextmanager
async def browsers(lab: Any) -> AsyncIterator[tuple[LaunchedPeer, LaunchedPeer]]:
    a, b = await asyncio.gather(
        start_peer(lab, "peer-a", "chromium", "chrome-a"),
        start_peer(lab, "peer-b", "chromium", "chrome-b"),
    )
    try:
        yield a, b
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def configure(
    a: LaunchedPeer, b: LaunchedPeer, audio_b: dict[str, Any] | None = None, **kw: Any
) -> None:
    """A sends TONE_A and opens the data channel; B sends TONE_B (or `audio_b`)."""
    await asyncio.gather(
        a.call("configure", audio={"tone_hz": TONE_A}, datachannel=True, **kw),
        b.call("configure", audio=audio_b or {"tone_hz": TONE_B}, **kw),
    )


async def stats_until(
    peer: LaunchedPeer, ok: Callable[[dict[str, Any]], bool], what: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll `stats` until `ok(stats)`; fail showing the last stats seen."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await peer.call("stats")
        if ok(stats):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"{peer.name}: not within {timeout} s: {what}; stats: {stats}")
        await asyncio.sleep(0.2)


def hears(hz: float, more_than: int = 0) -> Callable[[dict[str, Any]], bool]:
    """The last window of received audio is mostly the tone `hz`, after `more_than` packets."""

    def ok(stats: dict[str, Any]) -> bool:
        audio = stats["media"].get("audio") or {}
        tone = audio.get("tone_hz")
        # Half a second of packets fills most of the ~0.7 s analysis window.
        enough = audio.get("packets_received", 0) >= more_than + 25
        return enough and tone is not None and abs(tone - hz) < 5 and audio["level"] > -20

    return ok


async def audio_both_ways(
    a: LaunchedPeer, b: LaunchedPeer, after: dict[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    after = after or {}
    return await asyncio.gather(
        stats_until(a, hears(TONE_B, after.get(a.name, 0)), f"{a.name} hears {TONE_B} Hz"),
        stats_until(b, hears(TONE_A, after.get(b.name, 0)), f"{b.name} hears {TONE_A} Hz"),
    )


def sdp_attr(sdp: str, name: str) -> str:
    m = re.search(rf"^a={name}:(.+?)\r?$", sdp, re.M)
    assert m, f"no a={name} in SDP"
    return m.group(1)


def sdp_candidate_addresses(sdp: str) -> set[str]:
    return set(re.findall(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) ", sdp, re.M))


def is_public(address: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network("198.18.0.0/15")


# -- calls -------------------------------------------------------------------------------


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(120)
def test_direct_call_audio_data_dtls() -> None:
    """open-internet, no trickle: host candidates with real addresses, tones both ways,
    a data channel both ways, DTLS roles and fingerprints that match the SDP."""

    async def scenario(lab: Any) -> None:
        addr_a = str(lab.topology.node("peer-a").iface("eth0").address)
        addr_b = str(lab.topology.node("peer-b").iface("eth0").address)
        async with browsers(lab) as (a, b):
            t0 = time.time()
            await configure(a, b)
            call = await connect_pair(a, b)
            # Without trickle the descriptions carry the candidates: real IPs, no mDNS.
            assert sdp_candidate_addresses(call.offer["sdp"]) == {addr_a}
            assert sdp_candidate_addresses(call.answer["sdp"]) == {addr_b}
            assert not [e for e in a.events + b.events if e.kind == "icecandidate"]

            await b.wait_event("datachannel", 10, since=t0, state="open")
            await a.wait_event("datachannel", 10, since=t0, state="open")
            await a.call("send_data", text="ping")
            await b.call("send_data", text="pong")
            got_b = await b.wait_event("datamessage", 5, since=t0)
            got_a = await a.wait_event("datamessage", 5, since=t0)
            assert got_b.data == {"label": "harness", "text": "ping"}
            assert got_a.data == {"label": "harness", "text": "pong"}

            sa, sb = await audio_both_ways(a, b)
            for me, mine, theirs, local, remote in (
                (sa, call.offer, call.answer, addr_a, addr_b),
                (sb, call.answer, call.offer, addr_b, addr_a),
            ):
                assert me["ice"]["local_ufrag"] == sdp_attr(mine["sdp"], "ice-ufrag")
                assert me["ice"]["remote_ufrag"] == sdp_attr(theirs["sdp"], "ice-ufrag")
                pair = me["ice"]["selected_pair"]
                assert (pair["local"]["type"], pair["local"]["address"]) == ("host", local)
                assert (pair["remote"]["type"], pair["remote"]["address"]) == ("host", remote)
                assert me["dtls"]["state"] == "connected"
                assert me["dtls"]["remote_fingerprint"] == sdp_attr(theirs["sdp"], "fingerprint")
                assert me["media"]["audio"]["packets_sent"] > 0
            assert {sa["dtls"]["role"], sb["dtls"]["role"]} == {"client", "server"}

            for peer, stats in ((a, sa), (b, sb)):
                ts = [e.t for e in peer.events]
                assert ts == sorted(ts) and t0 <= ts[0] <= time.time()
                ev = await peer.wait_event("dtlsstatechange", 1, since=t0, state="connected")
                assert ev.data == stats["dtls"]
                await peer.wait_event("selectedpair", 1, since=t0)
                pairs = [e.data for e in peer.events if e.kind == "selectedpair"]
                assert pairs[-1] == stats["ice"]["selected_pair"]
                # (wait_event's own `kind` parameter hides the event's `kind` field)
                assert {"kind": "audio"} in [e.data for e in peer.events if e.kind == "track"]

            await a.call("hangup")
            await a.wait_event("connectionstatechange", 2, since=t0, state="closed")
            await b.wait_event("iceconnectionstatechange", 15, since=t0, state="disconnected")

    with lab_with_turn("open-internet") as (lab, _turn):
        run(scenario(lab))


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(120)
def test_port_restricted_trickle_then_ice_restart() -> None:
    """Both browsers behind port-restricted NATs, STUN from coturn, trickled candidates:
    they punch through; an ICE restart (A's `restart_ice`, then B's offer with
    ice_restart) brings new ufrags on both sides, keeps the DTLS session, and audio
    flows after each."""

    async def scenario(lab: Any, turn: Coturn) -> None:
        stun = {"urls": [f"stun:{turn.listen_address()}:3478"]}
        # B's microphone plays a file (the same tone, made here) instead of a generated tone.
        wav = write_tone_wav(lab.workdir("peer-b", "media") / "tone.wav", TONE_B)
        async with browsers(lab) as (a, b):
            await configure(a, b, audio_b={"file": str(wav)}, ice_servers=[stun], trickle=True)
            call = await connect_pair(a, b)
            assert "a=candidate" not in call.offer["sdp"]
            trickled = [e.data["candidate"] for e in a.events if e.kind == "icecandidate"]
            assert trickled[-1] is None and any(" typ srflx " in c for c in trickled[:-1])
            before_a, before_b = await audio_both_ways(a, b)
            for stats in (before_a, before_b):
                pair = stats["ice"]["selected_pair"]
                assert pair["remote"]["type"] != "relay" and is_public(pair["remote"]["address"])

            t1 = time.time()
            again = await restart_ice(a, b)
            assert again.offer_ufrags.isdisjoint(call.offer_ufrags)
            assert again.answer_ufrags.isdisjoint(call.answer_ufrags)
            counts = {
                p.name: s["media"]["audio"]["packets_received"]
                for p, s in ((a, before_a), (b, before_b))
            }
            after_a, after_b = await audio_both_ways(a, b, after=counts)
            assert after_a["ice"]["local_ufrag"] in again.offer_ufrags
            assert after_a["ice"]["remote_ufrag"] in again.answer_ufrags
            assert after_b["ice"]["local_ufrag"] in again.answer_ufrags
            assert after_b["ice"]["remote_ufrag"] in again.offer_ufrags
            # Same DTLS session: the same certificates, no DTLS state change at all.
            for before, after in ((before_a, after_a), (before_b, after_b)):
                assert after["dtls"] == before["dtls"]
            assert not [e for e in a.events + b.events if e.kind == "dtlsstatechange" and e.t > t1]

            # Now B restarts, the other way: an offer made with iceRestart, roles reversed.
            third = await negotiate(b, a, ice_restart=True, wait_for="selectedpair")
            assert third.offer_ufrags.isdisjoint(again.answer_ufrags)
            assert third.answer_ufrags.isdisjoint(again.offer_ufrags)
            counts = {
                p.name: s["media"]["audio"]["packets_received"]
                for p, s in ((a, after_a), (b, after_b))
            }
            last_a, last_b = await audio_both_ways(a, b, after=counts)
            assert last_b["ice"]["local_ufrag"] in third.offer_ufrags
            assert last_a["ice"]["local_ufrag"] in third.answer_ufrags
            assert last_a["dtls"] == before_a["dtls"]

    with lab_with_turn("port-restricted") as (lab, turn):
        run(scenario(lab, turn))


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(120)
def test_relay_only_selects_relay_pair() -> None:
    """iceTransportPolicy relay on both sides behind NATs: a relay <-> relay pair on
    coturn's address carries the tones and the fake camera's video."""

    async def scenario(lab: Any, turn: Coturn) -> None:
        async with browsers(lab) as (a, b):
            servers = [turn.ice_server("udp")]
            await configure(a, b, ice_servers=servers, ice_transport_policy="relay", video=True)
            call = await connect_pair(a, b)
            for sdp in (call.offer["sdp"], call.answer["sdp"]):
                assert sdp_candidate_addresses(sdp) == {turn.listen_address()}
            for stats in await audio_both_ways(a, b):
                pair = stats["ice"]["selected_pair"]
                assert pair["local"]["type"] == pair["remote"]["type"] == "relay", pair
                assert pair["local"]["address"] == turn.listen_address()
                assert pair["local"]["relay_protocol"] == "udp"
                assert stats["media"]["video"]["packets_received"] > 0
            await b.wait_event("datachannel", 10, state="open")

    with lab_with_turn("port-restricted") as (lab, turn):
        run(scenario(lab, turn))


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(60)
def test_errors_come_back_to_the_caller(tmp_path: Path) -> None:
    """Bad commands fail with a message; the agent lives on."""
    from harness.lab import Lab

    async def scenario(lab: Any) -> None:
        a = await start_peer(lab, "peer-a", "chromium", "chrome-a")
        try:
            with pytest.raises(PeerError, match="not configured"):
                await a.call("create_offer")
            with pytest.raises(PeerError, match="unknown command"):
                await a.call("fly")
            with pytest.raises(PeerError, match="relay"):
                await a.call("configure", ice_transport_policy="none")
            with pytest.raises(PeerError, match="does not exist"):
                await a.call("configure", audio={"file": str(tmp_path / "missing.wav")})
            await a.call("configure", datachannel=True)
            with pytest.raises(PeerError, match="no open data channel"):
                await a.call("send_data", text="x")
            with pytest.raises(PeerError, match="SessionDescription"):
                await a.call("set_remote", type="offer", sdp="v=0 garbage")
            offer = await a.call("create_offer")
            assert "m=application" in offer["sdp"]
            # Data only, no getUserMedia: host candidates still carry the real address.
            addr = str(lab.topology.node("peer-a").iface("eth0").address)
            assert sdp_candidate_addresses(offer["sdp"]) == {addr}
        finally:
            await a.stop()

    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        run(scenario(lab))


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(60)
def test_refused_turn_credentials_are_reported() -> None:
    """A wrong TURN password: no relay candidate, and an `error` event says why."""

    async def scenario(lab: Any, turn: Coturn) -> None:
        a = await start_peer(lab, "peer-a", "chromium", "chrome-a")
        try:
            bad = dict(turn.ice_server("udp"), credential="wrong")
            t0 = time.time()
            await a.call("configure", ice_servers=[bad], ice_transport_policy="relay")
            with pytest.raises(PeerError, match="nothing to offer"):
                await a.call("create_offer")
            await a.call(
                "configure", ice_servers=[bad], ice_transport_policy="relay", datachannel=True
            )
            offer = await a.call("create_offer")
            assert "a=candidate" not in offer["sdp"]
            err = await a.wait_event("error", 10, since=t0)
            assert "401" in err.data["message"] and turn.listen_address() in err.data["message"]
        finally:
            await a.stop()

    with lab_with_turn("open-internet") as (lab, turn):
        run(scenario(lab, turn))


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(60)
def test_event_times_follow_a_wall_clock_step() -> None:
    """After the machine's clock is stepped, the page's event times still agree with the
    harness's and the pcaps' clock (CLOCK_REALTIME), so `since` filters find them.

    This steps the real clock +1.5 s and back (the serial phase runs nothing beside it).
    Stamped from performance.timeOrigin + performance.now(), Chromium's events lagged by
    the whole step: a CI run lost a connected event and an ICE restart that way.
    """
    from harness.lab import Lab

    step_s = 1.5

    async def scenario(lab: Any) -> None:
        a = await start_peer(lab, "peer-a", "chromium", "chrome-a")
        try:
            await a.call("configure", datachannel=True)
            await a.call("stats")  # the page is up before the step
            time.clock_settime(time.CLOCK_REALTIME, time.time() + step_s)
            try:
                t0 = time.time()
                await a.call("create_offer")
                ev = await a.wait_event("signalingstatechange", 10, state="have-local-offer")
                t1 = time.time()
            finally:
                time.clock_settime(time.CLOCK_REALTIME, time.time() - step_s)
            assert t0 - 0.05 <= ev.t <= t1 + 0.05, (
                f"event at {ev.t:.3f}, harness clock {t0:.3f}..{t1:.3f} after a +{step_s} s step"
            )
        finally:
            await a.stop()

    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        run(scenario(lab))
