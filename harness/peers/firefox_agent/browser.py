"""Debian's firefox-esr, headless, driven through its built-in WebDriver BiDi agent.

No driver download and no patched build: `--remote-debugging-port 0` makes the
stock browser print the WebSocket it listens on (loopback of the lab node), and
a fresh profile's user.js gives it a fake microphone playing a sine, no
permission prompts, real host addresses in candidates (no mDNS obfuscation) and
no background traffic. The fake microphone's tone is a pref read at launch, so
a new tone means a new browser (as for Chromium).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from harness.peers.browser.agent import PAGE, Emit
from harness.peers.browser.trust import add_to_nssdb, run_ca

from .bidi import BiDiSession

log = logging.getLogger(__name__)

FIREFOX = os.environ.get("HARNESS_FIREFOX", "/usr/bin/firefox-esr")
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
START_TIMEOUT = 30.0

#: Prefs written to the fresh profile's user.js. The remote agent applies its own
#: "recommended" prefs once running; the network ones are repeated here so nothing
#: calls out during start-up either.
PREFS: dict[str, Any] = {
    # Media: fake devices, no prompts, audio plays without a gesture.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    # No sound device here: without cubeb's mock context an AudioContext never
    # leaves "suspended" and received audio cannot be measured.
    "media.cubeb.force_mock_context": True,
    # Host candidates carry real addresses, as Chromium's do with the fake UI.
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # No network chatter: updates, telemetry, safe browsing, captive portal,
    # remote settings, push, OpenH264 download, DNS-over-HTTPS, prefetching.
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.region.network.url": "",
    "browser.search.update": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.newtabpage.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.server": "",
    "dom.push.connection.enabled": False,
    "extensions.update.enabled": False,
    "extensions.blocklist.enabled": False,
    "geo.provider.network.url": "",
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-manager.url": "",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
}


def profile_prefs(audio: dict[str, Any] | None) -> dict[str, Any]:
    """The prefs for one launch: PREFS plus the fake microphone's tone."""
    prefs = dict(PREFS)
    if audio:
        if audio.get("file"):
            raise ValueError(
                "firefox: audio.file is not supported (Firefox's fake microphone plays "
                "only a sine; use audio.tone_hz)"
            )
        hz = audio.get("tone_hz", 440)
        if float(hz) != int(hz) or not 20 <= int(hz) <= 20000:
            raise ValueError(f"firefox: tone_hz must be a whole number of Hz in 20..20000: {hz}")
        prefs["media.navigator.audio.fake_frequency"] = int(hz)
    return prefs


def write_profile(path: Path, prefs: dict[str, Any]) -> Path:
    """A fresh profile folder holding only user.js."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    lines = [f"user_pref({json.dumps(k)}, {json.dumps(v)});" for k, v in prefs.items()]
    (path / "user.js").write_text("\n".join(lines) + "\n")
    return path


class FirefoxPage:
    """One running Firefox with the peer page loaded in its first tab."""

    def __init__(self, proc: asyncio.subprocess.Process, session: BiDiSession, context: str):
        self.proc = proc
        self.session = session
        self.context = context

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        # Arguments and results cross as JSON text: no BiDi value (de)serialisation.
        source = (
            f"(async () => JSON.stringify((await ({expression})({json.dumps(arg)})) ?? null))()"
        )
        res = await self.session.command(
            "script.evaluate",
            {
                "expression": source,
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
        )
        if res.get("type") == "exception":
            raise RuntimeError(res["exceptionDetails"].get("text", "page exception"))
        return json.loads(res["result"]["value"])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.session.command("browser.close", {}, timeout=5.0)
        await self.session.close()
        await _reap(self.proc)


class FirefoxEngine:
    """Nothing to start per agent; one Firefox process per launch."""

    async def start(self) -> None:
        if not os.access(FIREFOX, os.X_OK):
            raise RuntimeError(f"no Firefox executable at {FIREFOX} (apt-get install firefox-esr)")

    async def stop(self) -> None:
        return None

    async def launch(self, workdir: Path, audio: dict[str, Any] | None, emit: Emit) -> FirefoxPage:
        profile = write_profile(workdir / "firefox-profile", profile_prefs(audio))
        ca = run_ca(workdir)
        if ca is not None:  # wss:// and turns: to the run's certificates are trusted
            add_to_nssdb(profile, ca)
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_CRASHREPORTER_DISABLE="1")
        # (D)TLS secrets for `harness analyze --keylog` and the run report: the NSS that
        # Firefox ships honours SSLKEYLOGFILE, for its WebRTC DTLS too (data channels).
        env["SSLKEYLOGFILE"] = str(workdir / "keylog.txt")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        proc = await asyncio.create_subprocess_exec(
            FIREFOX,
            "--headless",
            "--no-remote",
            "--profile",
            str(profile),
            "--remote-debugging-port",
            "0",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            url = await asyncio.wait_for(_listening_url(proc), START_TIMEOUT)
            log.info("firefox: remote agent up after %.2f s", loop.time() - t0)
            session = await BiDiSession.connect(url, lambda m, p: _on_event(m, p, emit))
            log.info("firefox: BiDi session after %.2f s", loop.time() - t0)
            await session.command(
                "session.subscribe", {"events": ["script.message", "log.entryAdded"]}
            )
            # window.__emit exists before peer.js runs, in every document of the tab.
            await session.command(
                "script.addPreloadScript",
                {
                    "functionDeclaration": (
                        "(ch) => { window.__emit = (k, d, t) => ch(JSON.stringify([k, d, t])); }"
                    ),
                    "arguments": [{"type": "channel", "value": {"channel": "emit"}}],
                },
            )
            tree = await session.command("browsingContext.getTree", {"maxDepth": 0})
            context = tree["contexts"][0]["context"]
            await session.command(
                "browsingContext.navigate",
                {"context": context, "url": PAGE.as_uri(), "wait": "complete"},
            )
            log.info("firefox: peer page loaded after %.2f s", loop.time() - t0)
        except BaseException:
            await _reap(proc)
            raise
        return FirefoxPage(proc, session, context)


async def _listening_url(proc: asyncio.subprocess.Process) -> str:
    """Read stderr until the remote agent says where it listens; keep logging the rest."""
    assert proc.stderr is not None
    while True:
        line = await proc.stderr.readline()
        if not line:
            raise RuntimeError(f"firefox exited (rc {await proc.wait()}) before listening")
        text = line.decode(errors="replace").rstrip()
        log.info("firefox: %s", text)
        m = LISTENING.search(text)
        if m:
            asyncio.get_running_loop().create_task(_drain(proc.stderr))
            return m.group(1)


async def _drain(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        log.info("firefox: %s", line.decode(errors="replace").rstrip())


def _on_event(method: str, params: dict[str, Any], emit: Emit) -> None:
    if method == "script.message" and params.get("channel") == "emit":
        kind, data, t = json.loads(params["data"]["value"])
        emit(kind, data, t)
    elif method == "log.entryAdded" and params.get("type") == "javascript":
        emit("error", {"message": params.get("text", "page error")}, None)


async def _reap(proc: asyncio.subprocess.Process, timeout: float = 5.0) -> None:
    """Wait for Firefox to exit; terminate, then kill, if it does not."""
    for signal_it in (None, proc.terminate, proc.kill):
        if proc.returncode is not None:
            return
        if signal_it is not None:
            with contextlib.suppress(ProcessLookupError):
                signal_it()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout)
