"""Headless Chromium from Debian, started through Playwright's async API.

Only the system executable is used (never `playwright install`). The fake
microphone plays a WAV file chosen at launch, so a new tone means a new browser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import BrowserContext, Page, Playwright

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
PAGE = Path(__file__).with_name("page") / "peer.html"

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


@dataclass
class Browser:
    """One launched browser: its context (own profile) and the peer page."""

    context: BrowserContext
    page: Page
    audio_file: Path | None

    async def close(self) -> None:
        await self.context.close()


async def launch(pw: Playwright, workdir: Path, audio_file: Path | None) -> Browser:
    """Start Chromium with its profile in `workdir/profile` and open the peer page."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"no Chromium executable at {CHROMIUM} (apt-get install chromium)")
    args = list(FLAGS)
    if audio_file is not None:
        args.append(f"--use-file-for-fake-audio-capture={audio_file}")
    context = await pw.chromium.launch_persistent_context(
        str(workdir / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=args,
        ignore_default_args=DROPPED_DEFAULTS,
        permissions=["microphone", "camera"],
        # TLS secrets for `harness analyze --keylog` (and the run report) to read wss:// and
        # SIP over TLS in the captures; Chromium honours SSLKEYLOGFILE.
        env={**os.environ, "SSLKEYLOGFILE": str(workdir / "keylog.txt")},
    )
    page = context.pages[0] if context.pages else await context.new_page()
    return Browser(context, page, audio_file)
