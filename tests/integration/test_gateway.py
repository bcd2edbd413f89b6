"""Gateway pieces the scenarios in scenarios/gateway/ rely on, each tested on its own.

- Kamailio sends a request that would exceed 1300 bytes over TCP (RFC 3261 18.1.1):
  a WebRTC-derived SDP makes an INVITE that, over UDP, is IP-fragmented.
- The Chromium agent's JsSIP phone gives a clear, bounded error when the proxy has
  no WebSocket listener.

The full calls (Janus, Kamailio + rtpengine over WebSocket, the ICE-restart matrix)
are the YAML scenarios, collected by the harness's pytest plugin.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.actions.gateway import invite_once
from harness.components.baresip import Baresip
from harness.components.kamailio import Kamailio
from harness.lab import Lab
from harness.peers.client import PeerError

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]
TOPOLOGY = Path(__file__).parents[2] / "topologies" / "open-internet.yaml"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(TOPOLOGY, name=f"tgw-{secrets.token_hex(2)}") as lab:
        yield lab


def big_webrtc_sdp(address: str, codecs: int = 40) -> str:
    """A WebRTC-style audio offer padded with codecs until it is well over 1300 bytes."""
    pts = list(range(96, 96 + codecs))
    lines = [
        "v=0",
        f"o=- 1 1 IN IP4 {address}",
        "s=-",
        "t=0 0",
        f"c=IN IP4 {address}",
        f"m=audio 40000 UDP/TLS/RTP/SAVPF {' '.join(map(str, pts))}",
        *(f"a=rtpmap:{pt} codec{pt}/48000/2" for pt in pts),
        "a=rtcp-mux",
        "a=setup:actpass",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    ]
    return "\r\n".join(lines) + "\r\n"


def tshark_count(pcap: Path, display_filter: str) -> int:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", display_filter],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return len(out.splitlines())


def test_kamailio_relays_a_large_invite_over_tcp(lab: Lab) -> None:
    kam = Kamailio("kamailio", "server")
    bob = Baresip("bob", "peer-b", {"user": "bob", "registrar": "198.18.0.12:5060"})
    started = []
    try:
        for comp in (kam, bob):
            comp.start(lab)
            started.append(comp)
        bob.wait_registered(10)
        cap = lab.capture([("peer-b", "eth0")])
        sdp = big_webrtc_sdp("198.18.0.10")
        assert len(sdp) > 1300
        status, _reason, _seen = asyncio.run(
            invite_once(lab.netns("peer-a"), "198.18.0.10", ("198.18.0.12", 5060), "bob", sdp, 10)
        )
        [pcap] = cap.stop()
    finally:
        for comp in reversed(started):
            comp.stop()
    assert status == 488, "baresip refuses a WebRTC offer it cannot take"
    assert tshark_count(pcap, "sip.Method == INVITE && tcp") == 1
    assert tshark_count(pcap, "udp && (ip.flags.mf == 1 || ip.frag_offset > 0)") == 0
    assert "relayed over TCP" in kam.log_tail(200)


def test_jssip_register_without_websocket_fails_clearly(lab: Lab) -> None:
    from harness.peers.launch import start_peer

    kam = Kamailio("kamailio-nows", "server", {"ws": False})

    async def register() -> str:
        peer = await start_peer(lab, "peer-a", "chromium", "jssip-a")
        try:
            await peer.call("configure", audio={"tone_hz": 440})
            with pytest.raises(PeerError) as err:
                await peer.call(
                    "sip_register",
                    timeout=25,
                    ws_uri="ws://198.18.0.12:8080",
                    uri="sip:alice@198.18.0.12",
                )
            return str(err.value)
        finally:
            await peer.stop()

    kam.start(lab)
    try:
        message = asyncio.run(asyncio.wait_for(register(), 60))
    finally:
        kam.stop()
    assert "REGISTER over ws://198.18.0.12:8080" in message, message
    assert "disconnected" in message or "registrationFailed" in message, message
