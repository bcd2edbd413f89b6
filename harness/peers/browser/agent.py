"""A browser peer agent: control commands in, page calls out, page events back.

All WebRTC work happens in the page (page/peer.js); this process owns the browser
(through an `Engine`: Chromium via Playwright, Firefox via WebDriver BiDi), turns
each protocol command into one call on `window.peer`, and forwards what the page
observes as protocol events. Received audio comes back as PCM and is measured
here with the same code as the aiortc peer's, so every kind reports comparable tones.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harness.peers.control import ControlServer
from harness.peers.tonemath import dominant_frequency, rms_dbfs

log = logging.getLogger(__name__)

#: The page's peer; both engines load it from here.
PAGE = Path(__file__).with_name("page") / "peer.html"
#: (event kind, data, wall-clock time) from the page to the control clients.
Emit = Callable[[str, dict[str, Any], "float | None"], None]


class PageDriver(Protocol):
    """One launched browser with the peer page loaded."""

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Call the JS function `expression` with `arg` (JSON) in the page; its result."""

    async def close(self) -> None: ...


class Engine(Protocol):
    """How one browser kind starts, with a fake microphone, and reaches the page."""

    async def start(self) -> None: ...

    async def launch(self, workdir: Path, audio: dict[str, Any] | None, emit: Emit) -> PageDriver:
        """A fresh browser whose microphone plays `audio`, `window.__emit` wired to `emit`."""

    async def stop(self) -> None: ...


class BrowserAgent:
    """One named peer: a control server and, once configured, one browser."""

    def __init__(self, name: str, control: Path, workdir: Path, engine: Engine) -> None:
        self.name = name
        self.workdir = workdir
        self.engine = engine
        self.server = ControlServer(control, self)
        self._browser: PageDriver | None = None
        self._audio: dict[str, Any] | None = None

    async def run(self) -> None:
        """Serve until `shutdown` (or a signal sets `server.stopped`), then close the browser."""
        await self.engine.start()
        try:
            await self.server.start()
            log.info("%s: control socket %s", self.name, self.server.path)
            await self.server.stopped.wait()
        finally:
            await self._close_browser()
            await self.server.close()
            await self.engine.stop()

    # -- commands (docs/peers.md) -------------------------------------------------

    async def cmd_configure(
        self,
        ice_servers: list[dict[str, Any]] | None = None,
        ice_transport_policy: str = "all",
        trickle: bool = False,
        audio: dict[str, Any] | None = None,
        video: bool = False,
        datachannel: bool = False,
    ) -> dict[str, Any]:
        if ice_transport_policy not in ("all", "relay"):
            raise ValueError(f"ice_transport_policy must be all or relay: {ice_transport_policy!r}")
        # The fake microphone is chosen at launch: a new sound means a new browser.
        if self._browser is None or self._audio != audio:
            await self._close_browser()
            self._browser = await self.engine.launch(self.workdir, audio, self.server.emit)
            self._audio = audio
        cfg = {
            "ice_servers": ice_servers or [],
            "ice_transport_policy": ice_transport_policy,
            "trickle": trickle,
            "audio": audio,
            "video": video,
            "datachannel": datachannel,
        }
        return await self._page("c => peer.configure(c)", cfg)

    async def cmd_create_offer(self, ice_restart: bool = False) -> dict[str, Any]:
        return await self._page("r => peer.createOffer(r)", ice_restart)

    async def cmd_create_answer(self) -> dict[str, Any]:
        return await self._page("() => peer.createAnswer()")

    async def cmd_create_pranswer(self) -> dict[str, Any]:
        return await self._page("() => peer.createPranswer()")

    async def cmd_rollback(self) -> dict[str, Any]:
        return await self._page("() => peer.rollback()")

    async def cmd_set_remote(self, type: str, sdp: str = "") -> dict[str, Any]:
        return await self._page("([t, s]) => peer.setRemote(t, s)", [type, sdp])

    async def cmd_add_candidate(
        self,
        candidate: str | None = None,
        sdp_mid: str | None = None,
        sdp_mline_index: int | None = None,
    ) -> dict[str, Any]:
        return await self._page(
            "([c, m, i]) => peer.addCandidate(c, m, i)", [candidate, sdp_mid, sdp_mline_index]
        )

    async def cmd_restart_ice(self) -> dict[str, Any]:
        return await self._page("() => peer.restartIce()")

    async def cmd_send_data(self, text: str) -> dict[str, Any]:
        return await self._page("t => peer.sendData(t)", text)

    async def cmd_send_dtmf(
        self, tones: str, duration_ms: int = 100, gap_ms: int = 70
    ) -> dict[str, Any]:
        return await self._page(
            "([t, d, g]) => peer.sendDtmf(t, d, g)", [tones, duration_ms, gap_ms]
        )

    async def cmd_stats(self) -> dict[str, Any]:
        stats = await self._page("() => peer.snapshot()")
        audio = stats["media"].get("audio")
        if audio is not None:
            audio.update(measure(audio.pop("received_pcm", None)))
        return stats

    async def cmd_hangup(self) -> dict[str, Any]:
        return await self._page("() => peer.hangup()")

    # SIP over WebSocket (page/sip.js, JsSIP): the page is the SIP user agent.

    async def cmd_sip_register(
        self, ws_uri: str, uri: str, password: str | None = None, display_name: str | None = None
    ) -> dict[str, Any]:
        return await self._page(
            "([w, u, p, d]) => sip.register(w, u, p, d)", [ws_uri, uri, password, display_name]
        )

    async def cmd_sip_call(self, target: str) -> dict[str, Any]:
        return await self._page("t => sip.call(t)", target)

    async def cmd_sip_answer(self) -> dict[str, Any]:
        return await self._page("() => sip.answer()")

    async def cmd_sip_hangup(self) -> dict[str, Any]:
        return await self._page("() => sip.hangup()")

    async def cmd_shutdown(self) -> dict[str, Any]:
        return {}  # the control server stops after replying

    # -- browser ------------------------------------------------------------------

    async def _page(self, expression: str, arg: Any = None) -> Any:
        if self._browser is None:
            raise RuntimeError("not configured")
        return await self._browser.evaluate(expression, arg)

    async def _close_browser(self) -> None:
        if self._browser is not None:
            b, self._browser = self._browser, None
            await b.close()


def measure(received: dict[str, Any] | None) -> dict[str, float | None]:
    """Tone (Hz) and level (dBFS) of the page's last window of received audio."""
    if not received:
        return {"level": None, "tone_hz": None}
    pcm = np.frombuffer(base64.b64decode(received["pcm"]), dtype=np.int16)
    rate = int(received["sample_rate"])
    if not pcm.any():
        return {"level": None, "tone_hz": None}
    return {"level": rms_dbfs(pcm), "tone_hz": dominant_frequency(pcm, rate)}
