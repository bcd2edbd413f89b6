"""One aiortc RTCPeerConnection, driven by the commands of docs/peers.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from aioice import stun, turn
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaBlackhole, MediaPlayer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcdtlstransport import RTCDtlsTransport, certificate_digest
from aiortc.rtcicetransport import connection_kwargs
from aiortc.sdp import SessionDescription, candidate_from_sdp, candidate_to_sdp

from harness.components import pki
from harness.peers.aiortc_agent import ice_restart
from harness.peers.aiortc_agent.renegotiation import RenegotiatingPeerConnection
from harness.peers.control import ControlServer
from harness.peers.tone import ToneMeter, ToneTrack

logger = logging.getLogger(__name__)

GATHER_TIMEOUT = 10.0


def trust_run_ca() -> None:
    """`turns:` servers with certificates from the run's CA (harness/components/pki.py) are
    trusted: aioice's TLS uses Python's default context, which reads SSL_CERT_FILE."""
    anchor = pki.anchor_above(Path.cwd())  # the agent runs in its work directory
    if anchor is not None:
        os.environ["SSL_CERT_FILE"] = str(anchor)


def _log_remote(candidate: str) -> None:
    """Name each remote candidate in the log, so its type is known there: aioice logs none
    it is given, and the nomination race is read from the log (peers/aioice_diag.py)."""
    logger.info("remote candidate %s", candidate.removeprefix("a=").removeprefix("candidate:"))


def candidate_info(candidate: Any, relay_protocol: str | None = None) -> dict[str, Any]:
    info = {
        "type": candidate.type,
        "address": candidate.host,
        "port": candidate.port,
        "protocol": candidate.transport.lower(),
    }
    if relay_protocol is not None and candidate.type == "relay":
        info["relay_protocol"] = relay_protocol
    return info


def strip_candidates(sdp: str) -> str:
    """The SDP as a trickle ICE agent writes it (RFC 8840 4.1.1, RFC 8829 5.2.1): no
    candidates (they travel as icecandidate events), the placeholders port 9 and
    c=IN IP4 0.0.0.0, and a=ice-options:trickle (aiortc itself gathers first)."""
    keep = []
    for line in sdp.splitlines():
        if line.startswith(("a=candidate:", "a=end-of-candidates", "a=rtcp:")):
            continue
        if line.startswith("m="):
            kind, _port, rest = line.split(" ", 2)
            line = f"{kind} 9 {rest}" if _port != "0" else line
        elif line.startswith("c=IN IP"):
            line = "c=IN IP4 0.0.0.0"
        elif line.startswith("t=") and "a=ice-options:trickle" not in sdp:
            keep.append(line)
            line = "a=ice-options:trickle"
        keep.append(line)
    return "\r\n".join(keep) + "\r\n"


class RtpCounter:
    """Counts RTP packets and payload bytes a receiver handles (aiortc has no bytesReceived)."""

    def __init__(self, receiver: Any) -> None:
        self.packets = 0
        self.bytes = 0
        inner = receiver._handle_rtp_packet

        async def counting(packet: Any, arrival_time_ms: int) -> None:
            self.packets += 1
            self.bytes += len(packet.payload)
            await inner(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = counting


class AiortcPeer:
    """Command handler: every `cmd_*` coroutine is one command of the control protocol."""

    def __init__(self, name: str, server: ControlServer | None = None) -> None:
        ice_restart.install()
        self.name = name
        self.server = server
        self.pc: RTCPeerConnection | None = None
        self.config: dict[str, Any] = {}
        self.channel: Any = None
        self.meter = ToneMeter()
        self.sink = MediaBlackhole()
        self.counters: dict[str, RtpCounter] = {}
        self._restart_pending = False
        self._watched: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._player: MediaPlayer | None = None

    # -- events

    def emit(self, event: str, **data: Any) -> None:
        if self.server is not None:
            self.server.emit(event, data, t=time.time())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- commands

    async def cmd_configure(
        self,
        ice_servers: list[dict[str, Any]] | None = None,
        ice_transport_policy: str = "all",
        trickle: bool = False,
        audio: dict[str, Any] | None = None,
        video: bool = False,
        datachannel: bool = False,
    ) -> dict[str, Any]:
        if self.pc is not None:
            await self.pc.close()
        trust_run_ca()
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ice_servers or []
        ]
        policy = RTCIceTransportPolicy(ice_transport_policy)
        self.config = {"servers": servers, "policy": policy, "trickle": trickle}
        # An explicit empty list: aiortc's default is a Google STUN server, unreachable here.
        pc = self.pc = RenegotiatingPeerConnection(
            RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
        )
        self.counters = {}
        self._watched = set()
        self._restart_pending = False

        @pc.on("signalingstatechange")
        def _signaling() -> None:
            self.emit("signalingstatechange", state=pc.signalingState)

        @pc.on("icegatheringstatechange")
        def _gathering() -> None:
            self.emit("icegatheringstatechange", state=pc.iceGatheringState)

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            self.emit("iceconnectionstatechange", state=pc.iceConnectionState)

        @pc.on("connectionstatechange")
        def _conn() -> None:
            self.emit("connectionstatechange", state=pc.connectionState)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self.emit("track", kind=track.kind)
            if track.kind == "audio":
                self._spawn(self.meter.consume(track))
            else:
                self.sink.addTrack(track)
                self._spawn(self.sink.start())

        @pc.on("datachannel")
        def _datachannel(channel: Any) -> None:
            self._watch_channel(channel)

        if audio is not None:
            if "tone_hz" in audio:
                pc.addTrack(ToneTrack(float(audio["tone_hz"])))
            elif "file" in audio:
                self._player = MediaPlayer(audio["file"])
                pc.addTrack(self._player.audio)  # type: ignore[arg-type]  # a file with audio
            else:
                raise ValueError("audio needs tone_hz or file")
        if video:
            pc.addTrack(VideoStreamTrack())
        if datachannel:
            self._watch_channel(pc.createDataChannel("harness"))
        return {}

    async def cmd_create_offer(self, ice_restart: bool = False) -> dict[str, str]:
        pc = self._pc()
        restart = ice_restart or self._restart_pending
        if restart:
            if pc.signalingState != "stable":
                raise RuntimeError(f"cannot restart ICE in signaling state {pc.signalingState}")
            await ice_restart_local(pc, offerer=True)
            self._restart_pending = False
        await pc.setLocalDescription(await pc.createOffer())
        return await self._local_description()

    async def cmd_create_answer(self) -> dict[str, str]:
        pc = self._pc()
        await pc.setLocalDescription(await pc.createAnswer())
        return await self._local_description()

    async def cmd_set_remote(self, type: str, sdp: str) -> dict[str, Any]:
        pc = self._pc()
        if type == "offer" and pc.remoteDescription is not None:
            parsed = SessionDescription.parse(sdp)
            ufrags = {m.ice.usernameFragment for m in parsed.media if m.ice}
            if ice_restart.remote_restarts(pc, ufrags):  # type: ignore[arg-type]
                await ice_restart_local(pc, offerer=False)
        for line in sdp.splitlines():
            if line.startswith("a=candidate:"):
                _log_remote(line)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type))
        self._watch_transports()
        return {}

    async def cmd_add_candidate(
        self,
        candidate: str | None = None,
        sdp_mid: str | None = None,
        sdp_mline_index: int | None = None,
    ) -> dict[str, Any]:
        pc = self._pc()
        if not candidate:
            await pc.addIceCandidate(None)
            return {}
        _log_remote(candidate)
        c = candidate_from_sdp(candidate.removeprefix("a=").removeprefix("candidate:"))
        c.sdpMid = sdp_mid
        c.sdpMLineIndex = sdp_mline_index if sdp_mline_index is not None else 0
        await pc.addIceCandidate(c)
        return {}

    async def cmd_restart_ice(self) -> dict[str, Any]:
        self._pc()
        self._restart_pending = True
        return {}

    async def cmd_send_data(self, text: str) -> dict[str, Any]:
        if self.channel is None or self.channel.readyState != "open":
            state = self.channel.readyState if self.channel else "none"
            raise RuntimeError(f"data channel not open (state {state})")
        self.channel.send(text)
        return {}

    async def cmd_stats(self) -> dict[str, Any]:
        return await self.stats()

    async def cmd_hangup(self) -> dict[str, Any]:
        if self.pc is not None:
            await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        await self.sink.stop()
        return {}

    async def cmd_shutdown(self) -> dict[str, Any]:
        await self.cmd_hangup()
        return {}

    # -- internals

    def _pc(self) -> RTCPeerConnection:
        if self.pc is None:
            raise RuntimeError("configure first")
        return self.pc

    async def _local_description(self) -> dict[str, str]:
        pc = self._pc()
        self._watch_transports()
        await self._check_gathering()
        desc = pc.localDescription
        if not self.config["trickle"]:
            return {"type": desc.type, "sdp": desc.sdp}
        # aiortc gathers before it returns: trickle the whole set, then end-of-candidates.
        parsed = SessionDescription.parse(desc.sdp)
        first = parsed.media[0]
        for c in ice_restart.ice_transports(pc)[0].iceGatherer.getLocalCandidates():
            self.emit(
                "icecandidate",
                candidate="candidate:" + candidate_to_sdp(c),
                sdp_mid=first.rtp.muxId,
                sdp_mline_index=0,
            )
        self.emit("icecandidate", candidate=None, sdp_mid=first.rtp.muxId, sdp_mline_index=0)
        return {"type": desc.type, "sdp": strip_candidates(desc.sdp)}

    async def _check_gathering(self) -> None:
        """A configured TURN server that gave no relay candidate is an error worth its reason."""
        kwargs = connection_kwargs(self.config["servers"])
        if "turn_server" not in kwargs:
            return
        transports = ice_restart.ice_transports(self._pc())
        candidates = transports[0].iceGatherer.getLocalCandidates() if transports else []
        if any(c.type == "relay" for c in candidates):
            return
        reason = await turn_probe(kwargs)
        message = (
            f"TURN server {kwargs['turn_server'][0]}:{kwargs['turn_server'][1]} "
            f"({kwargs['turn_transport']}) gave no relay candidate: {reason}"
        )
        self.emit("error", message=message)
        if self.config["policy"] == RTCIceTransportPolicy.RELAY:
            raise RuntimeError(message)

    def _watch_transports(self) -> None:
        """Subscribe to the DTLS and ICE transports aiortc created (or BUNDLE kept) so far."""
        for ice in ice_restart.ice_transports(self._pc()):
            if id(ice) not in self._watched:
                self._watched.add(id(ice))
                ice.connection.on_selected_pair = lambda pair, ice=ice: self._selected(ice)
        pc = self._pc()
        dtls = [t.receiver.transport for t in pc.getTransceivers()]
        if pc.sctp is not None:
            dtls.append(pc.sctp.transport)
        for d in dtls:
            if id(d) not in self._watched:
                self._watched.add(id(d))
                d.on("statechange", lambda d=d: self.emit("dtlsstatechange", **dtls_info(d)))
        for t in pc.getTransceivers():
            if t.kind not in self.counters:
                self.counters[t.kind] = RtpCounter(t.receiver)

    def _selected(self, ice: ice_restart.RestartableIceTransport) -> None:
        self.emit("selectedpair", **pair_info(ice))

    def _watch_channel(self, channel: Any) -> None:
        self.channel = channel

        def state() -> None:
            self.emit("datachannel", label=channel.label, state=channel.readyState)

        channel.on("open", state)
        channel.on("close", state)
        channel.on("message", lambda m: self.emit("datamessage", label=channel.label, text=str(m)))
        if channel.readyState == "open":
            state()

    async def stats(self) -> dict[str, Any]:
        pc = self._pc()
        transports = ice_restart.ice_transports(pc)
        ice: dict[str, Any] = {"state": pc.iceConnectionState}
        if transports:
            conn = transports[0].connection
            ice.update(
                local_ufrag=conn.local_username,
                remote_ufrag=conn.remote_username,
                generation=conn.generation,
                role=transports[0].role,
                selected_pair=pair_info(transports[0]) or None,
            )
        dtls: dict[str, Any] = {}
        dtls_transports = [t.receiver.transport for t in pc.getTransceivers()]
        if pc.sctp is not None:
            dtls_transports.append(pc.sctp.transport)
        if dtls_transports:
            dtls = dtls_info(dtls_transports[0])
        report = await pc.getStats()
        media: dict[str, dict[str, Any]] = {}
        for t in pc.getTransceivers():
            m = media.setdefault(
                t.kind,
                {"packets_sent": 0, "bytes_sent": 0, "packets_received": 0, "bytes_received": 0},
            )
            if (counter := self.counters.get(t.kind)) is not None:
                m["packets_received"] += counter.packets
                m["bytes_received"] += counter.bytes
        for s in report.values():
            if s.type == "outbound-rtp" and s.kind in media:
                media[s.kind]["packets_sent"] += s.packetsSent
                media[s.kind]["bytes_sent"] += s.bytesSent
        if "audio" in media:
            tone = self.meter.tone_hz()
            media["audio"]["tone_hz"] = round(tone, 1) if tone is not None else None
            level = self.meter.level()
            media["audio"]["level"] = round(level, 1) if level is not None else None
        return {"t": time.time(), "ice": ice, "dtls": dtls, "media": media}

    async def close(self) -> None:
        await self.cmd_hangup()
        if self._player is not None:
            with contextlib.suppress(Exception):
                self._player.audio.stop()  # type: ignore[union-attr]  # suppressed if None


async def ice_restart_local(pc: RTCPeerConnection, offerer: bool) -> None:
    await asyncio.wait_for(ice_restart.restart_local(pc, offerer), GATHER_TIMEOUT)


def pair_info(ice: ice_restart.RestartableIceTransport) -> dict[str, Any]:
    conn = ice.connection
    pair = conn.selected_pair()
    if pair is None:
        return {}
    return {
        "local": candidate_info(pair.local_candidate, conn.turn_transport),
        "remote": candidate_info(pair.remote_candidate),
        "generation": conn.generation,
        "local_ufrag": conn.local_username,
        "remote_ufrag": conn.remote_username,
    }


def dtls_info(dtls: RTCDtlsTransport) -> dict[str, Any]:
    fingerprint = None
    ssl = getattr(dtls, "_ssl", None)
    if ssl is not None:
        cert = ssl.get_peer_certificate(as_cryptography=True)
        if cert is not None:
            fingerprint = "sha-256 " + certificate_digest(cert, "sha-256")
    role = dtls._role if dtls._role != "auto" else None
    return {"state": dtls.state, "role": role, "remote_fingerprint": fingerprint}


async def turn_probe(kwargs: dict[str, Any]) -> str:
    """Ask the TURN server for one allocation to learn why gathering got none."""

    class Sink:
        def connection_made(self, transport: Any) -> None: ...
        def datagram_received(self, data: bytes, addr: Any) -> None: ...
        def connection_lost(self, exc: Any) -> None: ...

    try:
        transport, _ = await asyncio.wait_for(
            turn.create_turn_endpoint(
                Sink,  # type: ignore[type-var]
                server_addr=kwargs["turn_server"],
                username=kwargs.get("turn_username"),
                password=kwargs.get("turn_password"),
                ssl=kwargs.get("turn_ssl", False),
                transport=kwargs.get("turn_transport", "udp"),
            ),
            5.0,
        )
    except stun.TransactionFailed as exc:
        code = exc.response.attributes.get("ERROR-CODE", (0, "?"))
        if code[0] == 401:
            return f"the server refused the credentials ({code[0]} {code[1]})"
        return f"the server answered {code[0]} {code[1]}"
    except stun.TransactionTimeout:
        return "no answer from the server (timeout)"
    except (TimeoutError, OSError) as exc:
        return f"cannot reach the server ({type(exc).__name__}: {exc})"
    transport.close()
    return "an allocation works now; gathering failed for a transient reason"
