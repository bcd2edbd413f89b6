"""Gateway steps: a peer calls SIP extensions through Janus's SIP plugin, restarts ICE, hangs up.

The harness plays the browser app's JavaScript (janus.js): it holds the Janus
session for the peer, carries the peer's SDP to the SIP plugin and back, and
forwards trickled candidates. Sessions live in `ctx.extras["janus"]`, one per
peer. `sip_offer_webrtc_sdp` is the opposite case: a WebRTC offer sent straight
to a plain SIP extension, with no gateway to translate it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.base import Component
    from harness.components.janus import Janus
    from harness.components.janus_client import JanusEvent, JanusSession, SipPluginClient
    from harness.components.kamailio import Kamailio
    from harness.peers.client import PeerClient
    from harness.scenario.context import ScenarioContext


@dataclass
class JanusLeg:
    """What a janus.js app holds for one peer: its session, SIP handle and the current call."""

    janus: Janus
    registrar: Kamailio
    session: JanusSession
    sip: SipPluginClient
    user: str
    remote_ufrags: list[str] = field(default_factory=list)
    """Janus's ICE ufrag in each answer, oldest first (one per restart after the first)."""


def legs(ctx: ScenarioContext) -> dict[str, JanusLeg]:
    return ctx.extras.setdefault("janus", {})


def leg_of(ctx: ScenarioContext, peer: str, step: str) -> JanusLeg:
    try:
        return legs(ctx)[peer]
    except KeyError:
        raise StepError(
            f"{step}: peer {peer!r} has no Janus session (janus_register first)"
        ) from None


def component(ctx: ScenarioContext, name: str, kind: str, step: str) -> Any:
    comp = ctx.components.get(name)
    if comp is None or comp.kind != kind:
        raise StepError(f"{step}: no {kind} component named {name!r} in this scenario")
    return comp


def sip_registrar(ctx: ScenarioContext, name: str, step: str) -> Any:
    """A registrar: Kamailio, or any component that serves SIP (`sip_port` of a PBX run
    through the generic `container`/`process` kinds)."""
    comp = ctx.components.get(name)
    if comp is None or getattr(comp, "uri", None) is None:
        raise StepError(f"{step}: no SIP registrar component named {name!r} in this scenario")
    return comp


def ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.split(":", 1)[1].strip()
    return None


def candidate_types(sdp: str) -> list[str]:
    """`typ` of each a=candidate line, in order (what the far side offered to be reached on)."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            words = line.split()
            out.append(f"{words[4]}:{words[5]} {words[7]}" if len(words) > 7 else line)
    return out


async def forward_candidates(peer: PeerClient, leg: JanusLeg, mark: int, timeout: float) -> int:
    """Trickle: pass the peer's `icecandidate` events (from index `mark`) to Janus until the end."""
    deadline = time.monotonic() + timeout
    sent, seen = 0, mark
    while time.monotonic() < deadline:
        for ev in peer.events[seen:]:
            seen += 1
            if ev.kind != "icecandidate":
                continue
            cand = ev.data.get("candidate")
            if cand is None:
                await leg.sip.handle.trickle(None)
                return sent
            await leg.sip.handle.trickle(
                {
                    "candidate": cand,
                    "sdpMid": ev.data.get("sdp_mid"),
                    "sdpMLineIndex": ev.data.get("sdp_mline_index"),
                }
            )
            sent += 1
        await asyncio.sleep(0.02)
    return sent


async def negotiate(
    ctx: ScenarioContext,
    peer_name: str,
    leg: JanusLeg,
    send: Callable[[dict[str, Any]], Awaitable[JanusEvent]],
    timeout: float,
    ice_restart: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Offer from the peer, `send(offer)` to the SIP plugin, answer back; trickle if the peer does.

    Returns (offer, answer event data, candidates trickled).
    """
    peer = ctx.peer(peer_name)
    trickle = ctx.peer_spec(peer_name).trickle
    mark = len(peer.events)
    offer = await peer.call("create_offer", ice_restart=ice_restart)
    relay = asyncio.create_task(forward_candidates(peer, leg, mark, timeout)) if trickle else None
    try:
        ev = await send(offer)
        if ev.jsep is None or ev.jsep.get("type") != "answer":
            raise StepError(f"Janus answered without an SDP answer: {ev.kind} {ev.data}")
        await peer.call("set_remote", type="answer", sdp=ev.jsep["sdp"])
        leg.remote_ufrags.append(ufrag(ev.jsep["sdp"]) or "?")
        sent = await asyncio.wait_for(relay, timeout) if relay is not None else 0
        return offer, {"sdp": ev.jsep["sdp"], **ev.data}, sent
    finally:
        if relay is not None and not relay.done():
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay


@action("janus_register")
class JanusRegister(Action):
    """Open a Janus session for `peer`, attach the SIP plugin, REGISTER `user` at the registrar."""

    peer: str
    janus: str = "janus"
    registrar: str = "kamailio"
    user: str | None = None
    secret: str = ""
    """The account's password, for a registrar that challenges (a PBX)."""
    api_via: str | None = None
    """Node whose namespace the API requests come from (default: the peer's node); e.g. the
    NAT box in front of a Janus behind NAT, acting as the reverse proxy a real set-up has."""

    def components(self) -> list[str]:
        return [self.janus, self.registrar]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.components.janus_client import HttpTarget, JanusSession, SipPluginClient

        janus = component(ctx, self.janus, "janus", "janus_register")
        kam = sip_registrar(ctx, self.registrar, "janus_register")
        node = self.api_via or ctx.peer_spec(self.peer).node
        if node not in ctx.lab.topology.nodes:
            raise StepError(f"janus_register: no node {node!r} (api_via)")
        target = HttpTarget(janus.listen_address(), janus.options.http_port, ctx.lab.netns(node))
        session = await JanusSession(target).create()
        sip = await SipPluginClient.attach(session)
        user = self.user or self.peer
        leg = JanusLeg(janus, kam, session, sip, user)
        legs(ctx)[self.peer] = leg
        t0 = time.time()
        ev = await sip.register(
            f"sip:{user}@{kam.listen_address()}", kam.uri, self.secret, timeout=self.timeout
        )
        return {
            "registered_after_s": round(time.time() - t0, 3),
            "username": ev.data.get("result", {}).get("username"),
        }


@action("janus_call")
class JanusCall(Action):
    """`peer` calls a SIP extension (`callee`: a baresip/sipp component, or `uri`) through Janus.

    Done when the peer's ICE is connected and Janus reports `webrtcup` (DTLS done).
    """

    peer: str
    callee: str | None = None
    uri: str | None = None

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.callee] if self.callee else []

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        leg = leg_of(ctx, self.peer, "janus_call")
        uri = self.uri or await self._callee_uri(ctx, leg)
        peer = ctx.peer(self.peer)
        t0 = time.time()
        since = len(leg.sip.events)

        async def send(offer: dict[str, Any]) -> JanusEvent:
            return await leg.sip.call(uri, offer, timeout=self.timeout)

        offer, answer, trickled = await negotiate(ctx, self.peer, leg, send, self.timeout)
        left = max(1.0, self.timeout - (time.time() - t0))
        await wait_connected(peer, t0, left)
        await leg.sip.handle.wait_event("webrtcup", left, since)
        return {
            "uri": uri,
            "connected_after_s": round(time.time() - t0, 3),
            "offer_candidates": candidate_types(offer["sdp"]),
            "answer_candidates": candidate_types(answer["sdp"]),
            "trickled": trickled,
        }

    async def _callee_uri(self, ctx: ScenarioContext, leg: JanusLeg) -> str:
        if self.callee is None:
            raise StepError("janus_call: give `callee` (a component) or `uri`")
        return await callee_uri(ctx, leg.registrar, self.callee, self.timeout)


async def wait_connected(peer: PeerClient, since: float, timeout: float) -> float:
    """Time the peer's ICE reached connected/completed (aiortc says completed, Chromium connected)."""
    waits = [
        asyncio.create_task(peer.wait_event("iceconnectionstatechange", timeout, since, state=s))
        for s in ("connected", "completed")
    ]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is None:
                return task.result().t
        if done:
            raise next(iter(done)).exception()  # type: ignore[misc]
        raise StepError(f"{peer.name}: ICE not connected within {timeout:.0f} s")
    finally:
        for task in waits:
            task.cancel()
        for task in waits:
            with contextlib.suppress(BaseException):
                await task


@action("janus_restart_ice")
class JanusRestartIce(Action):
    """The forum recipe: createOffer({iceRestart: true}), SIP plugin `update`, apply the answer.

    Recovery means the peer selected a pair of the new generation within `observe_s` and
    Janus's ICE (admin API) is connected with the peer's new ufrag.
    With `must_recover: false` the step records what happened and leaves the verdict
    to the `expect:` checks on the captures (so a failed restart still gets its evidence).
    """

    peer: str
    must_recover: bool = True
    timeout: float = 15.0
    observe_s: float = 3.0
    """How long after the answer the peer's ICE state and media are watched (the forum
    report's browser went `disconnected` 2-3 s after the restart); within `timeout`."""

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.components.janus_admin import JanusAdmin
        from harness.components.janus_client import HttpTarget

        if self.observe_s + 2 > self.timeout:
            raise StepError(
                f"janus_restart_ice: observe_s ({self.observe_s:g}) must leave 2 s of `timeout`"
            )
        leg = leg_of(ctx, self.peer, "janus_restart_ice")
        peer = ctx.peer(self.peer)
        before = await peer.call("stats")
        old_local = before.get("ice", {}).get("local_ufrag")
        t0 = time.time()

        async def send(offer: dict[str, Any]) -> JanusEvent:
            return await leg.sip.update(offer, self.timeout, fail_on=("error", "hangup"))

        offer, answer, trickled = await negotiate(
            ctx, self.peer, leg, send, self.timeout, ice_restart=True
        )
        t_answer = time.time()
        detail: dict[str, Any] = {
            "peer_ufrag": f"{old_local} -> {ufrag(offer['sdp'])}",
            "janus_ufrag": " -> ".join(leg.remote_ufrags[-2:]),
            "answer_after_s": round(t_answer - t0, 3),
            "answer_candidates": candidate_types(answer["sdp"]),
            "answer_end_of_candidates": "a=end-of-candidates" in answer["sdp"],
            "trickled": trickled,
        }
        # Watch whether a new state comes and holds, second by second: which direction's
        # media stops, if any. The step's whole budget is `timeout` (+5 s from the runner).
        stats = await peer.call("stats")
        per_s: list[tuple[int, int]] = []
        for _ in range(max(1, round(self.observe_s))):
            await asyncio.sleep(1.0)
            prev, stats = stats, await peer.call("stats")
            per_s.append(media_delta(prev, stats))
        pair = next((e for e in peer.events if e.kind == "selectedpair" and e.t >= t0), None)
        recovered = pair is not None
        if pair is not None:
            detail["new_pair_after_s"] = round(pair.t - t0, 3)
            detail["new_pair"] = pair.data
        else:
            detail["error"] = f"no new selected pair within {self.observe_s:g} s of the answer"
        detail["peer_ice_state"] = stats.get("ice", {}).get("state")
        detail["peer_ice_states"] = [
            f"+{ev.t - t_answer:.2f}s {ev.data.get('state')}"
            for ev in peer.events
            if ev.kind == "iceconnectionstatechange" and ev.t >= t0
        ]
        detail["audio_sent_received_per_s"] = per_s
        detail["media_stopped"] = media_stopped(per_s)
        admin = JanusAdmin(
            HttpTarget(
                leg.janus.listen_address(),
                leg.janus.options.admin_port,
                ctx.lab.netns(leg.janus.node),
            )
        )
        with contextlib.suppress(Exception):
            st = await admin.handle_state(leg.session.id, leg.sip.handle.id)  # type: ignore[arg-type]
            detail["janus_ice"] = {
                "state": st.ice_state,
                "remote_ufrag": st.remote_ufrag,
                "local_ufrag": st.local_ufrag,
                "selected_pair": st.selected_pair,
                "dtls": st.dtls_state,
            }
        # The peer alone can be wrong: Chromium keeps `connected` on the old pair while its
        # new-generation checks go unanswered. Janus must be connected with the new ufrag too.
        janus_ice = detail.get("janus_ice", {})
        detail["recovered"] = (
            recovered
            and detail["peer_ice_state"] in ("connected", "completed")
            and janus_ice.get("state") in ("connected", "ready")
            and janus_ice.get("remote_ufrag") == ufrag(offer["sdp"])
        )
        if self.must_recover and not detail["recovered"]:
            raise StepError(f"janus_restart_ice: ICE did not recover: {detail}")
        return detail


def media_delta(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int]:
    """Audio packets the peer (sent, received) between two stats snapshots."""
    audio_a = a.get("media", {}).get("audio", {})
    audio_b = b.get("media", {}).get("audio", {})
    sent, received = (
        (audio_b.get(k) or 0) - (audio_a.get(k) or 0) for k in ("packets_sent", "packets_received")
    )
    return sent, received


def media_stopped(per_s: list[tuple[int, int]]) -> dict[str, int | None]:
    """Second (1-based, after the answer) from which each direction carried no audio."""

    def first_silent(i: int) -> int | None:
        for n in range(1, len(per_s) + 1):
            if all(c[i] == 0 for c in per_s[n - 1 :]):
                return n
        return None

    return {"sent": first_silent(0), "received": first_silent(1)}


@action("janus_hangup")
class JanusHangup(Action):
    """Hang up the peer's SIP call (BYE through Kamailio), close its PeerConnection and session."""

    peer: str
    timeout: float = 10.0

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        leg = leg_of(ctx, self.peer, "janus_hangup")
        t0 = time.time()
        ev = await leg.sip.hangup(timeout=self.timeout)
        await ctx.peer(self.peer).call("hangup")
        await leg.session.close()
        legs(ctx).pop(self.peer, None)
        return {
            "hangup_after_s": round(time.time() - t0, 3),
            "reason": ev.data.get("result", {}).get("reason"),
        }


async def callee_uri(ctx: ScenarioContext, registrar: Kamailio, callee: str, timeout: float) -> str:
    """SIP URI of extension `callee`: its AOR at `registrar` once it registered, else direct."""
    ext: Component = ctx.components[callee]
    if hasattr(ext, "wait_registered") and getattr(ext.options, "registrar", None):
        await asyncio.to_thread(ext.wait_registered, min(timeout, 10.0))
        return f"sip:{ext.options.user}@{registrar.listen_address()}"
    port = getattr(ext.options, "sip_port", 5060)
    return f"sip:{callee}@{ext.listen_address()}:{port}"


@action("sip_ws_register")
class SipWsRegister(Action):
    """`peer` (a browser with JsSIP) registers `user` at Kamailio over SIP over WebSocket."""

    peer: str
    registrar: str = "kamailio"
    user: str | None = None

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.registrar]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        kam = component(ctx, self.registrar, "kamailio", "sip_ws_register")
        if not kam.options.ws:
            raise StepError(f"sip_ws_register: {self.registrar} has no WebSocket (ws: true)")
        ws_uri = f"ws://{kam.listen_address()}:{kam.options.ws_port}"
        user = self.user or self.peer
        t0 = time.time()
        reply = await ctx.peer(self.peer).call(
            "sip_register",
            timeout=self.timeout,
            ws_uri=ws_uri,
            uri=f"sip:{user}@{kam.listen_address()}",
        )
        contacts = await asyncio.to_thread(kam.contacts, user)
        if not contacts:
            raise StepError(f"sip_ws_register: {self.registrar} holds no contact for {user!r}")
        return {
            "registered_after_s": round(time.time() - t0, 3),
            "ws_uri": ws_uri,
            "contact": reply.get("contact"),
            "registrar_contacts": contacts,
        }


@action("sip_ws_call")
class SipWsCall(Action):
    """`peer` calls a SIP extension itself (JsSIP over WebSocket); done when ICE is connected.

    The offer and answer travel through Kamailio, which has rtpengine turn the WebRTC
    media (ICE, DTLS-SRTP) into plain RTP for the extension.
    """

    peer: str
    registrar: str = "kamailio"
    callee: str | None = None
    uri: str | None = None

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.registrar] + ([self.callee] if self.callee else [])

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        kam = component(ctx, self.registrar, "kamailio", "sip_ws_call")
        if self.uri is None and self.callee is None:
            raise StepError("sip_ws_call: give `callee` (a component) or `uri`")
        uri = self.uri or await callee_uri(ctx, kam, self.callee or "", self.timeout)
        peer = ctx.peer(self.peer)
        t0 = time.time()
        reply = await peer.call("sip_call", timeout=self.timeout, target=uri)
        answered = time.time()
        connected = await wait_connected(peer, t0, max(1.0, self.timeout - (answered - t0)))
        return {
            "uri": uri,
            "call_id": reply.get("call_id"),
            "answered_after_s": round(answered - t0, 3),
            "connected_after_s": round(connected - t0, 3),
        }


@action("sip_ws_hangup")
class SipWsHangup(Action):
    """`peer` ends its JsSIP call with a BYE and waits for the answer."""

    peer: str
    timeout: float = 10.0

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        t0 = time.time()
        await ctx.peer(self.peer).call("sip_hangup", timeout=self.timeout)
        return {"hangup_after_s": round(time.time() - t0, 3)}


@action("audio_heard")
class AudioHeard(Action):
    """A peer (its stats) or a baresip extension (its recordings) heard a tone of `tone_hz`.

    For an extension the last call's recording is read, so put this after the hang-up.
    `min_seconds` of recording must hold the tone (default 1 s).
    """

    peer: str | None = None
    component: str | None = None
    tone_hz: float
    tolerance_hz: float = 10.0
    min_seconds: float = 1.0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        if (self.peer is None) == (self.component is None):
            raise StepError("audio_heard: give either `peer` or `component`")
        if self.peer is not None:
            stats = await ctx.peer(self.peer).call("stats")
            audio = stats.get("media", {}).get("audio", {})
            heard, detail = (
                audio.get("tone_hz"),
                {k: audio.get(k) for k in ("packets_received", "level", "tone_hz")},
            )
        else:
            heard, detail = await asyncio.to_thread(self._recording, ctx)
        if heard is None or abs(heard - self.tone_hz) > self.tolerance_hz:
            who = self.peer or self.component
            raise StepError(
                f"audio_heard: {who} heard {heard} Hz, expected {self.tone_hz} Hz: {detail}"
            )
        return detail

    def _recording(self, ctx: ScenarioContext) -> tuple[float | None, dict[str, Any]]:
        import numpy as np

        from harness.peers.tone import dominant_frequency

        ext = component(ctx, self.component or "", "baresip", "audio_heard")
        deadline = time.monotonic() + 3.0
        while True:  # baresip closes the WAV when the call ends, shortly after the BYE
            recs = ext.received_recordings()
            if recs and recs[-1].seconds >= self.min_seconds or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not recs:
            return None, {"recordings": 0}
        rec = recs[-1]
        samples = np.frombuffer(rec.samples, dtype=np.int16)
        freq = dominant_frequency(samples, rec.rate) if rec.seconds >= self.min_seconds else None
        return freq, {
            "file": rec.path.name,
            "seconds": round(rec.seconds, 2),
            "rms": round(rec.rms),
            "tone_hz": freq,
        }


@action("sip_offer_webrtc_sdp")
class SipOfferWebrtcSdp(Action):
    """Send `peer`'s WebRTC offer in a plain SIP INVITE straight to an extension (no gateway).

    The step passes when the extension's final answer is `expect_status` (e.g. 488); its
    detail carries the SDP lint of the offer against the `sip` profile, which says why
    a plain SIP endpoint cannot take it (profile, DTLS, ICE, rtcp-mux, BUNDLE).
    """

    peer: str
    callee: str
    expect_status: int | None = None
    timeout: float = 10.0

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.callee]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.analysis import sdp as sdpmod
        from harness.analysis import sdplint

        ext = ctx.components[self.callee]
        offer = await ctx.peer(self.peer).call("create_offer")
        node = ctx.peer_spec(self.peer).node
        local = str(ctx.lab.topology.node(node).iface().address)
        target = (ext.listen_address(), int(getattr(ext.options, "sip_port", 5060)))
        user = getattr(ext.options, "user", self.callee)
        status, reason, replies = await invite_once(
            ctx.lab.netns(node), local, target, user, offer["sdp"], self.timeout
        )
        findings = sdplint.lint(sdpmod.parse(offer["sdp"]), "offer", profile="sip")
        why = [
            f"{f.severity}: line {f.line_no} {f.line!r}: {f.message} ({f.rfc})" for f in findings
        ]
        detail = {"status": status, "reason": reason, "responses": replies, "sdp_lint": why}
        if self.expect_status is not None and status != self.expect_status:
            raise StepError(
                f"sip_offer_webrtc_sdp: {self.callee} answered {status} {reason}, "
                f"expected {self.expect_status}; lint: {why}"
            )
        if not any(f.severity == "error" for f in findings):
            raise StepError(
                f"sip_offer_webrtc_sdp: the SIP lint found no error in the offer: {why}"
            )
        return detail


async def invite_once(
    netns: str, local: str, target: tuple[str, int], user: str, sdp: str, timeout: float
) -> tuple[int, str, list[str]]:
    """One INVITE over TCP from `netns`; (final status, reason, status lines seen).

    TCP because a WebRTC offer makes the request larger than 1300 bytes (RFC 3261 18.1.1;
    over UDP it would be IP-fragmented). A 2xx is ACKed then ended with a BYE; a failure
    is ACKed (RFC 3261 17.1.1.3).
    """
    from harness.components.ports import netns_socket

    loop = asyncio.get_running_loop()
    sock = netns_socket(netns)
    sock.bind((local, 0))
    async with asyncio.timeout(timeout):
        await loop.sock_connect(sock, target)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            port = sock.getsockname()[1]
            call_id, tag = secrets.token_hex(8), secrets.token_hex(4)
            uri = f"sip:{user}@{target[0]}:{target[1]}"

            def request(method: str, cseq: int, to: str, body: str = "") -> bytes:
                via = f"SIP/2.0/TCP {local}:{port};branch=z9hG4bK{secrets.token_hex(6)}"
                lines = [
                    f"{method} {uri} SIP/2.0",
                    f"Via: {via}",
                    "Max-Forwards: 70",
                    f"From: <sip:webrtc@{local}>;tag={tag}",
                    f"To: {to}",
                    f"Call-ID: {call_id}",
                    f"CSeq: {cseq} {method}",
                    f"Contact: <sip:webrtc@{local}:{port};transport=tcp>",
                    *(["Content-Type: application/sdp"] if body else []),
                    f"Content-Length: {len(body.encode())}",
                ]
                return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

            body = sdp.replace("\r\n", "\n").replace("\n", "\r\n")
            writer.write(request("INVITE", 1, f"<{uri}>", body))
            await writer.drain()
            seen: list[str] = []
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode(errors="replace")
                lines = head.split("\r\n")
                fields = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(":") for x in lines[1:])
                }
                await reader.readexactly(int(fields.get("content-length", "0") or 0))
                if not lines[0].startswith("SIP/2.0 "):
                    continue
                seen.append(lines[0])
                code, _, reason = lines[0][8:].partition(" ")
                if int(code) < 200:
                    continue
                writer.write(request("ACK", 1, fields.get("to", f"<{uri}>")))
                if int(code) < 300:
                    writer.write(request("BYE", 2, fields.get("to", f"<{uri}>")))
                await writer.drain()
                await asyncio.sleep(0.2)  # let the ACK (and BYE) reach the wire before closing
                return int(code), reason, seen
        finally:
            writer.close()
