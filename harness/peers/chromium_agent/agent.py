"""The Chromium peer agent: control commands in, page calls out, page events back.

All WebRTC work happens in the page (page/peer.js); this process owns the browser,
turns each protocol command into one call on `window.peer`, and forwards what the
page observes as protocol events. Received audio comes back as PCM and is measured
here with the same code as the aiortc peer's, so both kinds report comparable tones.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import numpy as np
from playwright.async_api import Playwright, async_playwright

from harness.peers.control import ControlServer
from harness.peers.tone import dominant_frequency, rms_dbfs

from . import browser
from .fakemic import write_tone_wav

log = logging.getLogger(__name__)


class ChromiumAgent:
    """One named peer: a control server and, once configured, one browser."""

    def __init__(self, name: str, control: Path, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.server = ControlServer(control, self)
        self._pw: Playwright | None = None
        self._browser: browser.Browser | None = None

    async def run(self) -> None:
        """Serve until `shutdown` (or a signal sets `server.stopped`), then close the browser."""
        self._pw = await async_playwright().start()
        try:
            await self.server.start()
            log.info("%s: control socket %s", self.name, self.server.path)
            await self.server.stopped.wait()
        finally:
            await self._close_browser()
            await self.server.close()
            await self._pw.stop()

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
        audio_file = self._audio_file(audio)
        if self._browser is None or self._browser.audio_file != audio_file:
            await self._close_browser()
            self._browser = await self._open_browser(audio_file)
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

    async def cmd_set_remote(self, type: str, sdp: str) -> dict[str, Any]:
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
        return await self._browser.page.evaluate(expression, arg)

    def _audio_file(self, audio: dict[str, Any] | None) -> Path | None:
        if not audio:
            return None
        if audio.get("file"):
            path = Path(audio["file"])
            if not path.is_file():
                raise FileNotFoundError(f"audio file {path} does not exist")
            return path.resolve()
        hz = float(audio.get("tone_hz", 440))
        return write_tone_wav(self.workdir / f"tone-{hz:g}hz.wav", hz)

    async def _open_browser(self, audio_file: Path | None) -> browser.Browser:
        assert self._pw is not None
        b = await browser.launch(self._pw, self.workdir, audio_file)
        await b.page.expose_binding(
            "__emit", lambda _src, kind, data, t: self.server.emit(kind, data, t)
        )
        b.page.on("pageerror", lambda exc: self.server.emit("error", {"message": str(exc)}))
        b.page.on("crash", lambda _p: self.server.emit("error", {"message": "page crashed"}))
        await b.page.goto(browser.PAGE.as_uri())
        return b

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
