"""Janus admin API queries, for assertions on what Janus itself thinks of a handle.

A peer can report "connected" while Janus's side of the same PeerConnection is
still checking (or has restarted ICE and answers 401): asserting on both sides is
how the harness catches that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.components.janus import ADMIN_SECRET
from harness.components.janus_client import HttpTarget, JanusError, _tx, http_json


@dataclass(frozen=True)
class HandleState:
    """ICE and DTLS state of one handle's first media component, from handle_info."""

    session_id: int
    handle_id: int
    plugin: str
    ice_state: str | None
    """libnice state: "checking", "connected", "ready", "failed", ... (None: no PeerConnection)."""
    dtls_state: str | None
    """"trying", "connected", "failed", "closed", ... (None: no DTLS yet)."""
    dtls_role: str | None
    selected_pair: str | None
    local_ufrag: str | None
    remote_ufrag: str | None
    packets_in: int
    """RTP packets Janus received from the peer, over all media."""
    packets_out: int
    info: dict[str, Any]
    """The whole handle_info reply, for anything else a test wants."""


class JanusAdmin:
    """The admin API of one Janus (POST /admin[/session[/handle]] with admin_secret)."""

    def __init__(
        self, target: HttpTarget, secret: str = ADMIN_SECRET, base: str = "/admin"
    ) -> None:
        self.target = target
        self.secret = secret
        self.base = base

    async def request(self, path: str, janus: str, **fields: Any) -> dict[str, Any]:
        body = {"janus": janus, "transaction": _tx(), "admin_secret": self.secret, **fields}
        reply = await http_json(self.target, "POST", path, body)
        if reply.get("janus") == "error":
            err = reply.get("error", {})
            raise JanusError(f"admin {janus}: {err.get('code')} {err.get('reason')}")
        return reply

    async def ping(self) -> bool:
        return (await self.request(self.base, "ping")).get("janus") == "pong"

    async def info(self) -> dict[str, Any]:
        return await self.request(self.base, "info")

    async def sessions(self) -> list[int]:
        return (await self.request(self.base, "list_sessions"))["sessions"]

    async def handles(self, session_id: int) -> list[int]:
        return (await self.request(f"{self.base}/{session_id}", "list_handles"))["handles"]

    async def handle_info(self, session_id: int, handle_id: int) -> dict[str, Any]:
        reply = await self.request(f"{self.base}/{session_id}/{handle_id}", "handle_info")
        return reply["info"]

    async def handle_state(self, session_id: int, handle_id: int) -> HandleState:
        info = await self.handle_info(session_id, handle_id)
        return parse_handle_state(session_id, handle_id, info)


def parse_handle_state(session_id: int, handle_id: int, info: dict[str, Any]) -> HandleState:
    """Pick ICE/DTLS facts out of handle_info (Janus 1.x: info.webrtc.{ice,dtls,media})."""
    webrtc = info.get("webrtc") or {}
    ice, dtls = webrtc.get("ice") or {}, webrtc.get("dtls") or {}
    media = list((webrtc.get("media") or {}).values())
    stats = [m.get("stats") or {} for m in media]
    sdps = info.get("sdps") or {}
    return HandleState(
        session_id=session_id,
        handle_id=handle_id,
        plugin=info.get("plugin", ""),
        ice_state=ice.get("state"),
        dtls_state=dtls.get("dtls-state"),
        dtls_role=dtls.get("dtls-role"),
        selected_pair=ice.get("selected-pair"),
        local_ufrag=_ufrag(sdps.get("local")),
        remote_ufrag=_ufrag(sdps.get("remote")),
        packets_in=sum((s.get("in") or {}).get("packets", 0) for s in stats),
        packets_out=sum((s.get("out") or {}).get("packets", 0) for s in stats),
        info=info,
    )


def _ufrag(sdp: str | None) -> str | None:
    """The first a=ice-ufrag of an SDP: after an ICE restart, the new one."""
    for line in (sdp or "").splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.removeprefix("a=ice-ufrag:").strip()
    return None
