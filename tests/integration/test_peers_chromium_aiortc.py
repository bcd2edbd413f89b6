"""Chromium and aiortc agents talking to each other in real labs.

Both kinds speak the same control protocol, so the same signalling helpers drive
them; tones are measured by the same code on both sides (harness.peers.tone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from harness.components.coturn import Coturn
from harness.peers.launch import LaunchedPeer, start_peer
from harness.peers.signaling import connect_pair, restart_ice

from .test_peers_chromium import (
    TONE_A,
    TONE_B,
    audio_both_ways,
    lab_only,
    lab_with_turn,
    run,
    sdp_attr,
)

# audio_both_ways(x, y): x hears TONE_B, y hears TONE_A.
TONE_AIORTC, TONE_CHROMIUM = TONE_B, TONE_A


@asynccontextmanager
async def mixed(lab: Any, chromium_node: str) -> AsyncIterator[tuple[LaunchedPeer, LaunchedPeer]]:
    """A Chromium peer on `chromium_node`, an aiortc peer on the other peer node."""
    other = "peer-b" if chromium_node == "peer-a" else "peer-a"
    c, r = await asyncio.gather(
        start_peer(lab, chromium_node, "chromium", "chrome-a"),
        start_peer(lab, other, "aiortc", "aiortc-b"),
    )
    try:
        yield c, r
    finally:
        await asyncio.gather(c.stop(), r.stop())


async def configure(c: LaunchedPeer, r: LaunchedPeer, offerer: LaunchedPeer, **kw: Any) -> None:
    """The offerer opens the data channel (aiortc's convention and Chromium's agree on it)."""
    await asyncio.gather(
        c.call("configure", audio={"tone_hz": TONE_CHROMIUM}, datachannel=c is offerer, **kw),
        r.call("configure", audio={"tone_hz": TONE_AIORTC}, datachannel=r is offerer, **kw),
    )


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(90)
def test_chromium_offers_aiortc_answers() -> None:
    """open-internet: a host pair, tones both ways, a data channel both ways, DTLS agreed."""

    async def scenario(lab: Any) -> None:
        async with mixed(lab, "peer-a") as (c, r):
            t0 = time.time()
            await configure(c, r, offerer=c)
            call = await connect_pair(c, r)
            sc, sr = await audio_both_ways(c, r)
            assert (
                sc["dtls"]["remote_fingerprint"].lower()
                == sdp_attr(call.answer["sdp"], "fingerprint").lower()
            )
            assert {sc["dtls"]["role"], sr["dtls"]["role"]} == {"client", "server"}
            assert sc["ice"]["selected_pair"]["local"]["type"] == "host"
            await r.wait_event("datachannel", 10, since=t0, state="open")
            await c.wait_event("datachannel", 10, since=t0, state="open")
            await c.call("send_data", text="from chromium")
            await r.call("send_data", text="from aiortc")
            assert (await r.wait_event("datamessage", 5, since=t0)).data["text"] == "from chromium"
            assert (await c.wait_event("datamessage", 5, since=t0)).data["text"] == "from aiortc"

    with lab_with_turn("open-internet") as (lab, _turn):
        run(scenario(lab))


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(90)
def test_aiortc_offers_chromium_answers_then_chromium_restarts_ice() -> None:
    """port-restricted, STUN, trickle: aiortc calls Chromium; then Chromium restarts ICE
    (it offers): new ufrags on both sides and tones both ways afterwards."""

    async def scenario(lab: Any, turn: Coturn) -> None:
        stun = {"urls": [f"stun:{turn.listen_address()}:3478"]}
        async with mixed(lab, "peer-b") as (c, r):
            await configure(c, r, offerer=r, ice_servers=[stun], trickle=True)
            call = await connect_pair(r, c)
            before_c, before_r = await audio_both_ways(c, r)
            assert before_c["ice"]["selected_pair"]["remote"]["type"] != "relay"
            await c.wait_event("datachannel", 10, state="open")

            again = await restart_ice(c, r)
            assert again.offer_ufrags.isdisjoint(call.answer_ufrags)
            assert again.answer_ufrags.isdisjoint(call.offer_ufrags)
            counts = {
                c.name: before_c["media"]["audio"]["packets_received"],
                r.name: before_r["media"]["audio"]["packets_received"],
            }
            after_c, after_r = await audio_both_ways(c, r, after=counts)
            assert after_c["ice"]["local_ufrag"] in again.offer_ufrags
            assert after_c["ice"]["remote_ufrag"] in again.answer_ufrags
            assert after_c["dtls"]["remote_fingerprint"] == before_c["dtls"]["remote_fingerprint"]

    with lab_with_turn("port-restricted") as (lab, turn):
        run(scenario(lab, turn))


@pytest.mark.lab
@lab_only
@pytest.mark.timeout(90)
def test_udp_blocked_chromium_relays_over_turn_tcp_443() -> None:
    """Chromium behind a firewall that lets only TCP 80/443 out calls aiortc through
    TURN over TCP on 443."""

    async def scenario(lab: Any, turn: Coturn) -> None:
        async with mixed(lab, "peer-a") as (c, r):
            await asyncio.gather(
                c.call(
                    "configure",
                    ice_servers=[turn.ice_server("tcp")],
                    audio={"tone_hz": TONE_CHROMIUM},
                    datachannel=True,
                ),
                r.call("configure", audio={"tone_hz": TONE_AIORTC}),
            )
            await connect_pair(c, r)
            sc, _ = await audio_both_ways(c, r)
            pair = sc["ice"]["selected_pair"]
            assert pair["local"]["type"] == "relay", pair
            assert pair["local"]["relay_protocol"] == "tcp", pair

    with lab_with_turn("udp-blocked", port=443) as (lab, turn):
        run(scenario(lab, turn))
