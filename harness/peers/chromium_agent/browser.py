"""Headless Chromium from Debian, started through Playwright's async API.

Only the system executable is used (never `playwright install`). The fake
microphone plays a WAV file chosen at launch, so a new tone means a new browser.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, Playwright, async_playwright

from harness.peers.browser.agent import PAGE, Emit
from harness.peers.browser.fakemic import write_tone_wav
from harness.peers.browser.trust import add_to_nssdb, run_ca

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # Remote audio must play into WebAudio without a user gesture.
    "--autoplay-policy=no-user-gesture-required",
]
# Playwright's defaults we replace: its own headless mode, and muting (kept off so
# the audio path stays the one a user has).
DROPPED_DEFAULTS = ["--headless", "--mute-audio"]


class ChromiumPage:
    """One launched browser: its context (own profile) and the peer page."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        return await self.page.evaluate(expression, arg)

    async def close(self) -> None:
        await self.context.close()


def trust_run_ca(workdir: Path) -> dict[str, str]:
    """Environment for a Chromium that trusts the run's CA, if there is one: a HOME of its
    own whose $HOME/.pki/nssdb holds it (harness/peers/browser/trust.py)."""
    ca = run_ca(workdir)
    if ca is None:
        return {}
    home = workdir / "home"
    add_to_nssdb(home / ".pki" / "nssdb", ca)
    return {**os.environ, "HOME": str(home)}


class ChromiumEngine:
    """Playwright, started once per agent; one persistent context per launch."""

    def __init__(self) -> None:
        self._pw: Playwright | None = None

    async def start(self) -> None:
        self._pw = await async_playwright().start()

    async def stop(self) -> None:
        if self._pw is not None:
            await self._pw.stop()

    async def launch(self, workdir: Path, audio: dict[str, Any] | None, emit: Emit) -> ChromiumPage:
        """Start Chromium with its profile in `workdir/profile` and open the peer page."""
        assert self._pw is not None
        if not os.access(CHROMIUM, os.X_OK):
            raise RuntimeError(f"no Chromium executable at {CHROMIUM} (apt-get install chromium)")
        env = trust_run_ca(workdir) or dict(os.environ)
        # TLS secrets for `harness analyze --keylog` and the run report (wss://, SIP over
        # TLS in the captures); Chromium honours SSLKEYLOGFILE.
        env["SSLKEYLOGFILE"] = str(workdir / "keylog.txt")
        args = list(FLAGS)
        audio_file = _audio_file(workdir, audio)
        if audio_file is not None:
            args.append(f"--use-file-for-fake-audio-capture={audio_file}")
        context = await self._pw.chromium.launch_persistent_context(
            str(workdir / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=args,
            ignore_default_args=DROPPED_DEFAULTS,
            permissions=["microphone", "camera"],
            env=env,  # type: ignore[arg-type]  # str values are among the ones it takes
        )
        page = context.pages[0] if context.pages else await context.new_page()
        await page.expose_binding("__emit", lambda _src, kind, data, t: emit(kind, data, t))
        page.on("pageerror", lambda exc: emit("error", {"message": str(exc)}, None))
        page.on("crash", lambda _p: emit("error", {"message": "page crashed"}, None))
        # The browser's own errors (e.g. a WebSocket refused for its certificate) as evidence.
        page.on(
            "console",
            lambda msg: emit("console", {"text": msg.text}, None) if msg.type == "error" else None,
        )
        await page.goto(PAGE.as_uri())
        return ChromiumPage(context, page)


def _audio_file(workdir: Path, audio: dict[str, Any] | None) -> Path | None:
    """The WAV the fake microphone loops: a given file, or a generated tone."""
    if not audio:
        return None
    if audio.get("file"):
        path = Path(audio["file"])
        if not path.is_file():
            raise FileNotFoundError(f"audio file {path} does not exist")
        return path.resolve()
    hz = float(audio.get("tone_hz", 440))
    return write_tone_wav(workdir / f"tone-{hz:g}hz.wav", hz)
