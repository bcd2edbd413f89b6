"""aiortc peer agents in real labs: direct, NATed, relayed, TCP TURN, ICE restarts.

Every call runs two agent processes in two lab nodes and coturn on `server`;
audio is a known tone each way, checked by its measured frequency at the other
end. Capture checks are deliberately tiny (count STUN checks carrying a ufrag,
count DTLS ClientHellos): the full dissection lives in harness/analysis/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from harness.peers.client import PeerError
from harness.peers.launch import LaunchedPeer, start_peer
from harness.peers.signaling import connect_pair, restart_ice
from harness.peers.tone import ToneMeter, dominant_frequency, rms_dbfs, sine
from tests.integration.peerlab import TOPOLOGIES, lab_with_turn, run

TONE_A, TONE_B = 440.0, 660.0
T = TypeVar("T")

lab_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


# -- tone measurement (no lab) ---------------------------------------------------------


def test_dominant_frequency_and_level() -> None:
    pcm = sine(1000.0, 48000, amplitude=0.5)
    hz = dominant_frequency(pcm)
    assert hz is not None and abs(hz - 1000.0) < 0.5
    assert abs(rms_dbfs(pcm) - (20 * np.log10(0.5 / np.sqrt(2)))) < 0.2
    assert dominant_frequency(np.zeros(4800, np.int16)) is None
    assert dominant_frequency(pcm[:100]) is None


def test_tone_meter_keeps_the_last_second() -> None:
    from av import AudioFrame

    meter = ToneMeter()
    for hz in (300.0, 800.0):  # two seconds of 300 Hz, then two of 800 Hz, stereo s16
        for i in range(100):
            mono = sine(hz, 960, start=960 * i)
            frame = AudioFrame.from_ndarray(
                np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
            )
            frame.sample_rate = 48000
            meter.feed(frame)
    tone = meter.tone_hz()
    assert tone is not None and abs(tone - 800.0) < 2.0
    assert len(meter.window()) == 48000


# -- lab helpers -----------------------------------------------------------------------


@asynccontextmanager
async def peers(lab: Any) -> AsyncIterator[tuple[LaunchedPeer, LaunchedPeer]]:
    a, b = await asyncio.gather(
        start_peer(lab, "peer-a", "aiortc", "alice"), start_peer(lab, "peer-b", "aiortc", "bob")
    )
    try:
        yield a, b
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def configure(
    a: LaunchedPeer, b: LaunchedPeer, servers_a: list[Any], servers_b: list[Any], **kw: Any
) -> None:
    await a.call(
        "configure", ice_servers=servers_a, audio={"tone_hz": TONE_A}, datachannel=True, **kw
    )
    await b.call("configure", ice_servers=servers_b, audio={"tone_hz": TONE_B}, **kw)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def assert_audio_both_ways(
    a: LaunchedPeer,
    b: LaunchedPeer,
    since: dict[str, int] | None = None,
    hear: tuple[float | None, float | None] = (TONE_B, TONE_A),
) -> None:
    """Each side's receive counter grows past `since` and it hears the other's tone
    (`hear`: the tone A and B should hear; None skips the frequency for that side)."""
    since = since or {}

    async def hears(peer: LaunchedPeer, hz: float | None) -> bool:
        audio = (await peer.call("stats"))["media"]["audio"]
        return audio["packets_received"] > since.get(peer.name, 0) + 25 and (
            hz is None or (audio["tone_hz"] is not None and abs(audio["tone_hz"] - hz) < 5.0)
        )

    await until(lambda: hears(a, hear[0]), 8, f"{a.name} hears {hear[0]} Hz")
    await until(lambda: hears(b, hear[1]), 8, f"{b.name} hears {hear[1]} Hz")


async def received(peer: LaunchedPeer) -> int:
    return (await peer.call("stats"))["media"]["audio"]["packets_received"]


async def pair(peer: LaunchedPeer) -> dict[str, Any]:
    return (await peer.call("stats"))["ice"]["selected_pair"]


# -- tiny pcap checks ------------------------------------------------------------------


def udp_payloads(path: Path) -> Iterator[bytes]:
    """UDP payloads of an Ethernet/IPv4 pcap (what tcpdump writes on a veth)."""
    data = path.read_bytes()
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 34 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
            continue
        ihl = (pkt[14] & 0x0F) * 4
        yield pkt[14 + ihl + 8 :]


def stun_usernames(payloads: list[bytes]) -> list[str]:
    """USERNAME of every STUN Binding request (ICE connectivity check)."""
    names = []
    for p in payloads:
        if len(p) < 20 or p[0:2] != b"\x00\x01" or p[4:8] != b"\x21\x12\xa4\x42":
            continue
        pos = 20
        while pos + 4 <= len(p):
            kind, length = struct.unpack_from("!HH", p, pos)
            if kind == 0x0006:
                names.append(p[pos + 4 : pos + 4 + length].decode(errors="replace"))
            pos += 4 + (length + 3) // 4 * 4
    return names


def dtls_client_hellos(payloads: list[bytes]) -> int:
    """Distinct DTLS ClientHellos (by their random: retransmits and cookie replays count once),
    sent directly or inside TURN ChannelData (4-byte header)."""
    randoms = set()
    for p in payloads:
        for off in (0, 4) if p and 0x40 <= p[0] <= 0x4F else (0,):
            rec = p[off:]
            if len(rec) > 59 and rec[0] == 22 and rec[1] == 0xFE and rec[13] == 1:
                randoms.add(rec[27:59])
    return len(randoms)


# -- calls -----------------------------------------------------------------------------


@pytest.mark.lab
@lab_only
def test_direct_call_audio_and_datachannel() -> None:
    """open-internet: host pair, tones both ways, data channel both ways."""

    async def scenario(lab: Any) -> None:
        async with peers(lab) as (a, b):
            await configure(a, b, [], [])
            await connect_pair(a, b)
            await assert_audio_both_ways(a, b)
            selected = await pair(a)
            assert (selected["local"]["type"], selected["remote"]["type"]) == ("host", "host")
            await b.wait_event("datachannel", 5, state="open")
            await a.call("send_data", text="ping")
            assert (await b.wait_event("datamessage", 5)).data == {
                "label": "harness",
                "text": "ping",
            }
            await b.call("send_data", text="pong")
            assert (await a.wait_event("datamessage", 5)).data["text"] == "pong"
            stats = await a.call("stats")
            assert stats["dtls"]["state"] == "connected"
            assert stats["dtls"]["remote_fingerprint"].startswith("sha-256 ")

    from harness.analysis.analyzer import analyze_file
    from harness.lab import Lab

    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        cap = lab.capture([("peer-a", "eth0")])
        run(scenario(lab))
        (pcap,) = cap.stop()
        # alice's agent logged its DTLS secrets (aiortc_agent/keylog.py): the wire opens
        keylog = lab.workdir("peer-a", "alice") / "keylog.txt"
        assert keylog.read_text().startswith("CLIENT_RANDOM "), keylog
        seen = [(e.label, e.kind, e.text) for e in analyze_file(pcap, keylog).datachannel]
        assert ("harness", "string", "ping") in seen and ("harness", "string", "pong") in seen


@pytest.mark.lab
@lab_only
def test_port_restricted_connects_through_srflx() -> None:
    """Both peers behind port-restricted NATs: STUN from coturn, hole punching, no relay."""
    with lab_with_turn("port-restricted") as (lab, turn):
        stun = {"urls": [f"stun:{turn.listen_address()}:3478"]}

        async def scenario() -> None:
            async with peers(lab) as (a, b):
                await configure(a, b, [stun], [stun])
                await connect_pair(a, b)
                selected = await pair(a)
                types = {selected["local"]["type"], selected["remote"]["type"]}
                assert "relay" not in types and types & {"srflx", "prflx"}, selected
                assert selected["remote"]["address"].startswith("198.18.0.")
                await assert_audio_both_ways(a, b)

        run(scenario())


@pytest.mark.lab
@lab_only
def test_symmetric_nat_relays_through_coturn() -> None:
    """Both peers behind symmetric NATs: only a TURN relay connects them."""
    with lab_with_turn("symmetric") as (lab, turn):
        servers = [{"urls": [f"stun:{turn.listen_address()}:3478"]}, turn.ice_server("udp")]

        async def scenario() -> None:
            async with peers(lab) as (a, b):
                await configure(a, b, servers, servers)
                await connect_pair(a, b)
                selected = await pair(a)
                assert "relay" in {selected["local"]["type"], selected["remote"]["type"]}, selected
                await assert_audio_both_ways(a, b)

        run(scenario())


@pytest.mark.lab
@lab_only
def test_relay_only_selects_relay_pair_and_trickles() -> None:
    """iceTransportPolicy relay on both sides, candidates trickled: relay <-> relay."""
    with lab_with_turn("open-internet") as (lab, turn):
        servers = [turn.ice_server("udp")]

        async def scenario() -> None:
            async with peers(lab) as (a, b):
                await configure(a, b, servers, servers, ice_transport_policy="relay", trickle=True)
                n = await connect_pair(a, b)
                assert "a=candidate" not in n.offer["sdp"]  # they travelled as events
                for peer in (a, b):
                    selected = await pair(peer)
                    assert selected["local"]["type"] == "relay", selected
                    assert selected["remote"]["type"] == "relay", selected
                    assert selected["local"]["address"] == turn.listen_address()
                await assert_audio_both_ways(a, b)

        run(scenario())


@pytest.mark.lab
@lab_only
def test_udp_blocked_uses_turn_over_tcp_443() -> None:
    """peer-a's firewall lets only TCP 80/443 out: TURN over TCP on 443 carries the call."""
    with lab_with_turn("udp-blocked", port=443) as (lab, turn):

        async def scenario() -> None:
            async with peers(lab) as (a, b):
                await configure(a, b, [turn.ice_server("tcp")], [])
                await connect_pair(a, b)
                selected = await pair(a)
                assert selected["local"]["type"] == "relay", selected
                assert selected["local"]["relay_protocol"] == "tcp", selected
                await assert_audio_both_ways(a, b)

        run(scenario())


@pytest.mark.lab
@lab_only
def test_refused_turn_credentials_give_a_clear_error() -> None:
    with lab_with_turn("open-internet") as (lab, turn):
        bad = dict(turn.ice_server("udp"), credential="wrong")

        async def scenario() -> None:
            async with peers(lab) as (a, _b):
                await a.call("configure", ice_servers=[bad], ice_transport_policy="relay")
                with pytest.raises(PeerError, match="refused the credentials .401"):
                    await a.call("create_offer")
                assert "refused the credentials" in (await a.wait_event("error", 1)).data["message"]

        run(scenario())


# -- ICE restart -----------------------------------------------------------------------


async def restart_and_check(a: LaunchedPeer, b: LaunchedPeer) -> None:
    """A restarts, then B restarts: new ufrags, new pairs, media flows after each."""
    for offerer, answerer in ((a, b), (b, a)):
        before = {p.name: await pair(p) for p in (a, b)}
        counts = {p.name: await received(p) for p in (a, b)}
        n = await restart_ice(offerer, answerer)
        for peer, own, other in (
            (offerer, n.offer_ufrags, n.answer_ufrags),
            (answerer, n.answer_ufrags, n.offer_ufrags),
        ):
            now = await pair(peer)
            assert {now["local_ufrag"]} == own and {now["remote_ufrag"]} == other, now
            assert now["local_ufrag"] != before[peer.name]["local_ufrag"]
            assert now["remote_ufrag"] != before[peer.name]["remote_ufrag"]
            assert (now["local"], now["remote"]) != (
                before[peer.name]["local"],
                before[peer.name]["remote"],
            ), "the selected pair did not change"
        await assert_audio_both_ways(a, b, since=counts)


def check_capture(files: list[Path], ufrags: set[str]) -> None:
    payloads = [p for f in files for p in udp_payloads(f)]
    names = stun_usernames(payloads)
    for ufrag in ufrags:
        assert any(ufrag in n.split(":") for n in names), f"no connectivity check with {ufrag}"
    assert dtls_client_hellos(payloads) == 1, "ICE restart must not start a new DTLS handshake"


@pytest.mark.lab
@lab_only
def test_ice_restart_direct() -> None:
    from harness.lab import Lab

    async def scenario(lab: Any) -> set[str]:
        async with peers(lab) as (a, b):
            await configure(a, b, [], [])
            await connect_pair(a, b)
            await assert_audio_both_ways(a, b)
            await restart_and_check(a, b)
            stats = {p.name: await p.call("stats") for p in (a, b)}
            assert stats["alice"]["ice"]["generation"] == 2
            return {s["ice"]["local_ufrag"] for s in stats.values()}

    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        cap = lab.capture([("peer-a", "eth0")])
        ufrags = run(scenario(lab))
        check_capture(cap.stop(), ufrags)


@pytest.mark.lab
@lab_only
def test_ice_restart_relayed() -> None:
    """Relay-only through coturn: each restart makes new allocations and moves media there."""
    with lab_with_turn("open-internet") as (lab, turn):
        cap = lab.capture([("peer-a", "eth0")])
        servers = [turn.ice_server("udp")]

        async def scenario() -> set[str]:
            async with peers(lab) as (a, b):
                await configure(a, b, servers, servers, ice_transport_policy="relay")
                await connect_pair(a, b)
                await restart_and_check(a, b)
                for peer in (a, b):
                    assert (await pair(peer))["local"]["type"] == "relay"
                return {(await p.call("stats"))["ice"]["local_ufrag"] for p in (a, b)}

        ufrags = run(scenario())
        files = cap.stop()
        # Checks between relays travel inside TURN indications or ChannelData: the
        # ufrag check looks only at the outer layer, so only DTLS is checked here.
        payloads = [p for f in files for p in udp_payloads(f)]
        assert dtls_client_hellos(payloads) == 1
        assert len(ufrags) == 2


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
@pytest.mark.skipif(not shutil.which("chromium"), reason="Chromium is not installed")
def test_ice_restart_between_aiortc_and_chromium() -> None:
    from harness.lab import Lab

    async def scenario(lab: Any) -> set[str]:
        chrome = await start_peer(lab, "peer-a", "chromium", "alice")
        bob = await start_peer(lab, "peer-b", "aiortc", "bob")
        try:
            await chrome.call(
                "configure", ice_servers=[], audio={"tone_hz": TONE_A}, datachannel=True, timeout=60
            )
            await bob.call("configure", ice_servers=[], audio={"tone_hz": TONE_B})
            await connect_pair(chrome, bob)
            # Chromium reports no decoded tone in headless stats unless its agent analyses
            # it; aiortc hears Chromium's tone, Chromium's packet counter must grow.
            for offerer, answerer in ((chrome, bob), (bob, chrome)):
                before = await pair(bob)
                counts = {p.name: await received(p) for p in (chrome, bob)}
                n = await restart_ice(offerer, answerer)
                now = await pair(bob)
                assert {now["local_ufrag"], now["remote_ufrag"]} == n.offer_ufrags | n.answer_ufrags
                assert now["local_ufrag"] != before["local_ufrag"]
                assert (now["local"], now["remote"]) != (before["local"], before["remote"])
                chrome_stats = await chrome.call("stats")
                assert chrome_stats["ice"]["local_ufrag"] in n.offer_ufrags | n.answer_ufrags
                await assert_audio_both_ways(chrome, bob, since=counts, hear=(None, TONE_A))
            return n.offer_ufrags | n.answer_ufrags
        finally:
            await chrome.stop()
            await bob.stop()

    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        cap = lab.capture([("peer-b", "eth0")])
        ufrags = run(scenario(lab), timeout=120)
        check_capture(cap.stop(), ufrags)
