"""Gateway and PBX components for real, in one open-internet lab.

`server` runs rtpengine, Kamailio (driving that rtpengine) and Janus with its SIP
plugin; extensions (baresip, sipp) come and go on peer-a and peer-b per test. Audio
is proven by pitch: a sender plays a known tone, the receiver's recording must
have that dominant frequency.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.components.baresip import Baresip, Recording
from harness.components.base import Component
from harness.components.janus import Janus
from harness.components.janus_admin import JanusAdmin
from harness.components.janus_client import HttpTarget, JanusSession, SipPluginClient
from harness.components.kamailio import Kamailio
from harness.components.ports import check_port_clashes
from harness.components.rtpengine import Rtpengine
from harness.components.sipp import Sipp
from harness.errors import ComponentError
from harness.lab import Lab
from harness.peers.tone import dominant_frequency

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]
TOPOLOGY = Path(__file__).parents[2] / "topologies" / "open-internet.yaml"


@dataclass
class Gateway:
    lab: Lab
    rtpengine: Rtpengine
    kamailio: Kamailio
    janus: Janus


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Lab(TOPOLOGY, name=f"tgw-sip-{secrets.token_hex(2)}") as lab:
        rtpengine = Rtpengine("rtpengine", "server")
        kamailio = Kamailio("kamailio", "server", {"ws": True, "rtpengine": "198.18.0.12:2223"})
        janus = Janus("janus", "server")
        servers: list[Component] = [rtpengine, kamailio, janus]
        check_port_clashes(servers)
        started: list[Component] = []
        try:
            for comp in servers:  # rtpengine first: Kamailio probes it at start
                comp.start(lab)
                started.append(comp)
            assert rtpengine.ng_address == kamailio.options.rtpengine
            yield Gateway(lab, rtpengine, kamailio, janus)
        finally:
            for comp in reversed(started):
                comp.stop()


@contextmanager
def running(lab: Lab, *components: Component) -> Iterator[None]:
    """Start components in order, stop them in reverse, whatever the test does."""
    started: list[Component] = []
    try:
        for comp in components:
            comp.start(lab)
            started.append(comp)
        yield
    finally:
        for comp in reversed(started):
            comp.stop()


def pitch(rec: Recording) -> float | None:
    return dominant_frequency(np.frombuffer(rec.samples, dtype=np.int16), rec.rate)


def test_sipp_uac_calls_baresip_through_kamailio_with_audio(gw: Gateway) -> None:
    bob = Baresip("bob", "peer-b", {"user": "bob", "registrar": gw.kamailio.listen_address()})
    uac = Sipp(
        "uac",
        "peer-a",
        {
            "role": "uac",
            "target": gw.kamailio.listen_address(),
            "service": "bob",
            "tone_hz": 1000,
            "hold_ms": 2000,
            "timeout_s": 20,
        },
    )
    with running(gw.lab, bob):
        bob.wait_registered()
        contacts = gw.kamailio.contacts("bob")
        assert [c for c in contacts if "@198.18.0.11:5060" in c], contacts
        with running(gw.lab, uac):
            uac.wait(timeout=25)
    # the BYE followed the Record-Route through the proxy (and uac.wait saw its 200 OK)
    messages = uac.messages()
    bye = messages[messages.index("BYE sip:bob") :].split("\n\n")[0]
    assert "Route: <sip:198.18.0.12;lr" in bye, bye
    [rec] = bob.received_recordings()
    assert rec.seconds > 1.5, rec
    assert rec.rms > 3000, rec.rms
    assert pitch(rec) == pytest.approx(1000, abs=5)


def test_baresip_calls_sipp_uas_which_echoes_rtp(gw: Gateway) -> None:
    uas = Sipp("uas", "peer-a", {"role": "uas", "media_port": 6000, "timeout_s": 30})
    carol = Baresip(
        "carol",
        "peer-b",
        {
            "user": "carol",
            "registrar": gw.kamailio.listen_address(),
            "tone_hz": 700,
            "dial": "sip:echo@198.18.0.10:5060",
            "quit_after": 3,
        },
    )
    with running(gw.lab, uas, carol):
        assert carol.proc is not None
        carol.proc.wait(10)  # -t 3: hangs up, un-registers, exits
    [rec] = carol.received_recordings()
    assert rec.seconds > 1.5, rec
    assert pitch(rec) == pytest.approx(700, abs=5), "carol should hear her own tone, echoed"
    messages = uas.messages()
    assert "Record-Route:" in messages and "BYE sip:" in messages


def test_rtpengine_answers_ng_from_kamailio_side(gw: Gateway) -> None:
    assert asyncio.run(gw.rtpengine.ping(from_node="server"))
    out = gw.kamailio.rpc("rtpengine.show", "all")
    assert "198.18.0.12:2223" in out and "disabled: 0" in out, out
    gw.kamailio.rpc("rtpengine.ping", "all")  # raises unless rtpengine answers Kamailio


def test_rtpengine_bridges_webrtc_offer_to_plain_rtp(gw: Gateway) -> None:
    """The flags Kamailio's config uses turn a WebRTC offer into RTP/AVP without ICE."""
    webrtc_offer = "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 198.18.0.10",
            "s=-",
            "t=0 0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
            "c=IN IP4 198.18.0.10",
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuvwx",
            "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
            "a=setup:actpass",
            "a=rtcp-mux",
            "a=candidate:1 1 udp 2122260223 198.18.0.10 40000 typ host",
            "",
        ]
    )
    call = f"tgw-{secrets.token_hex(4)}"

    async def offer() -> dict[str, Any]:
        try:
            return await gw.rtpengine.ng(
                {
                    "command": "offer",
                    "call-id": call,
                    "from-tag": "a",
                    "sdp": webrtc_offer,
                    "flags": ["trust-address"],
                    "replace": ["origin", "session-connection"],
                    "ICE": "remove",
                    "transport-protocol": "RTP/AVP",
                }
            )
        finally:
            await gw.rtpengine.ng({"command": "delete", "call-id": call, "from-tag": "a"})

    sdp = asyncio.run(offer())["sdp"]
    assert "m=audio 30" in sdp and "RTP/AVP" in sdp and "SAVPF" not in sdp, sdp
    assert "a=ice-ufrag" not in sdp and "a=fingerprint" not in sdp, sdp
    assert "c=IN IP4 198.18.0.12" in sdp, sdp


def test_janus_sip_plugin_registers_and_admin_api_reports_it(gw: Gateway) -> None:
    kam = gw.kamailio
    api = HttpTarget(gw.janus.listen_address(), gw.janus.options.http_port, gw.lab.netns("peer-a"))
    admin = JanusAdmin(
        HttpTarget(gw.janus.listen_address(), gw.janus.options.admin_port, gw.lab.netns("server"))
    )

    async def scenario() -> None:
        async with JanusSession(api) as session:
            assert (await session.info())["name"] == "Janus WebRTC Server"
            sip = await SipPluginClient.attach(session)
            ev = await sip.register(f"sip:alice@{kam.listen_address()}", kam.uri)
            assert ev.kind == "registered" and ev.data["result"]["username"] == "alice"
            assert any("@198.18.0.12:" in c for c in kam.contacts("alice"))
            assert await admin.ping()
            assert session.id in await admin.sessions()
            assert sip.handle.id in await admin.handles(session.id)
            state = await admin.handle_state(session.id, sip.handle.id)
            assert state.plugin == "janus.plugin.sip"
            assert state.info["plugin_specific"]["registration_status"] == "registered"
            assert state.ice_state is None  # no PeerConnection yet
            await sip.unregister()
            assert kam.contacts("alice") == []
        assert session.id is None

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_janus_that_cannot_start_names_itself_with_log_tail(gw: Gateway) -> None:
    bad = Janus(
        "janus-bad",
        "peer-a",
        {"dtls_cert": "/nonexistent/cert.pem", "dtls_key": "/nonexistent/key.pem"},
    )
    with pytest.raises(ComponentError) as err:
        bad.start(gw.lab)
    assert err.value.component == "janus-bad"
    assert "before it was ready" in str(err.value)
    assert "certificate" in err.value.log_tail
    assert bad.proc is not None and not bad.proc.alive()


def test_port_clash_on_one_node_is_found_before_start(gw: Gateway) -> None:
    second = Kamailio("kamailio-2", "server", {"ws": False})
    with pytest.raises(ComponentError) as err:
        check_port_clashes([gw.rtpengine, gw.kamailio, gw.janus, second])
    assert "kamailio-2" in str(err.value) and "'kamailio'" in str(err.value)
    assert second.proc is None
    check_port_clashes([gw.kamailio, Kamailio("k-other", "server", {"sip_port": 5070})])


def test_aiortc_peer_calls_baresip_through_janus_sip_plugin(gw: Gateway) -> None:
    """WebRTC (aiortc on peer-a) -> Janus SIP plugin -> Kamailio -> baresip on peer-b."""
    from harness.peers.launch import start_peer

    kam = gw.kamailio
    erin = Baresip(
        "erin", "peer-b", {"user": "erin", "registrar": kam.listen_address(), "tone_hz": 600}
    )
    api = HttpTarget(gw.janus.listen_address(), gw.janus.options.http_port, gw.lab.netns("peer-a"))
    admin = JanusAdmin(
        HttpTarget(gw.janus.listen_address(), gw.janus.options.admin_port, gw.lab.netns("server"))
    )

    async def scenario() -> dict[str, Any]:
        peer = await start_peer(gw.lab, "peer-a", "aiortc", "webrtc-a")
        try:
            async with JanusSession(api) as session:
                sip = await SipPluginClient.attach(session)
                await sip.register(f"sip:frank@{kam.listen_address()}", kam.uri)
                await peer.call("configure", audio={"tone_hz": 440})
                offer = await peer.call("create_offer")
                accepted = await sip.call(f"sip:erin@{kam.listen_address()}", offer)
                assert accepted.jsep is not None and accepted.jsep["type"] == "answer"
                await peer.call("set_remote", **accepted.jsep)
                await peer.wait_event("iceconnectionstatechange", 10, state="completed")
                await sip.handle.wait_event("webrtcup", 10)
                await asyncio.sleep(2.0)
                assert session.id is not None  # created on entering the session
                state = await admin.handle_state(session.id, sip.handle.id)
                stats = await peer.call("stats")
                await sip.hangup()
                return {"state": state, "stats": stats}
        finally:
            await peer.stop()

    with running(gw.lab, erin):
        erin.wait_registered()
        result = asyncio.run(asyncio.wait_for(scenario(), 40))
    state = result["state"]
    assert state.ice_state in ("connected", "ready"), state
    assert state.dtls_state == "connected", state
    assert state.selected_pair and "198.18.0.10" in state.selected_pair
    assert state.packets_in > 50 and state.packets_out > 50, state
    [rec] = erin.received_recordings()
    assert pitch(rec) == pytest.approx(440, abs=5), "erin should hear the WebRTC peer's tone"
