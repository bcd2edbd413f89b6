"""What version of a program really ran, asked of the program itself.

An image tag or a package list says what should be inside; `janus --version` run on
the very binary (on the host, or in the component's image) says what is. Results,
reports and `harness doctor` all read versions through this one table.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VersionProbe:
    """The command that makes a program print its version, and where the version is."""

    argv: tuple[str, ...]
    pattern: str

    def parse(self, output: str) -> str | None:
        m = re.search(self.pattern, output, re.MULTILINE)
        return m.group(1) if m else None


PY_VERSION = "import importlib.metadata as m; print('{0}', m.version('{0}'))"

#: kind -> probe. Kinds are component and peer kinds (plus tools doctor shows).
PROBES: dict[str, VersionProbe] = {
    "coturn": VersionProbe(("turnserver", "--version"), r"^\s*(\d+\.\d[\w.\-]*)"),
    "janus": VersionProbe(("janus", "--version"), r"Janus version: \d+ \((\d[\d.]*)\)"),
    "kamailio": VersionProbe(("kamailio", "-v"), r"kamailio (\d\S*)"),
    # without --config-file=none, 26.x parses the packaged config before it prints anything
    "rtpengine": VersionProbe(("rtpengine", "--config-file=none", "--version"), r"Version: (\S+)"),
    "baresip": VersionProbe(("baresip", "-h"), r"baresip v(\S+)"),
    "sipp": VersionProbe(("sipp", "-v"), r"SIPp v([\d.]+\d)"),
    "asterisk": VersionProbe(("asterisk", "-V"), r"Asterisk (\d+\.\d+\.\d+)"),
    "chromium": VersionProbe(("chromium", "--version"), r"Chromium (\S+)"),
    "firefox": VersionProbe(("firefox-esr", "--version"), r"Firefox (\S+)"),
    "aiortc": VersionProbe(("python3", "-c", PY_VERSION.format("aiortc")), r"aiortc (\S+)"),
    "tcpdump": VersionProbe(("tcpdump", "--version"), r"tcpdump version (\S+)"),
    "tshark": VersionProbe(("tshark", "--version"), r"TShark \(Wireshark\) (\S+)"),
    "conntrack": VersionProbe(("conntrack", "--version"), r"v(\S+)"),
}

TIMEOUT = 15.0
#: An image id names immutable content: the version read once from it stays true.
CACHE = Path(
    os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "rtc-harness", "image-versions.json"
)


def _first_line(output: str) -> str:
    return next((ln.strip()[:60] for ln in output.splitlines() if ln.strip()), "?")


def _host_argv(argv: tuple[str, ...]) -> list[str]:
    # the harness's own interpreter is the one its peer agents run with
    return [sys.executable, *argv[1:]] if argv[0] == "python3" else list(argv)


def _probe(what: str | VersionProbe) -> VersionProbe:
    return PROBES[what] if isinstance(what, str) else what


def host_version(what: str | VersionProbe) -> str | None:
    """Version of the host's program (a kind or a probe), None when it is not installed."""
    probe = _probe(what)
    cmd = _host_argv(probe.argv)
    path = shutil.which(cmd[0])
    if path is None:
        return None
    return _host_cached(tuple(cmd), probe.pattern, os.stat(path).st_mtime_ns)


@functools.cache
def _host_cached(cmd: tuple[str, ...], pattern: str, _mtime: int) -> str:
    out = _run(list(cmd))
    return VersionProbe(cmd, pattern).parse(out) or _first_line(out)


def image_version(what: str | VersionProbe, image: str) -> str:
    """Version of the program inside `image`, from a throw-away container with no network."""
    import docker

    probe = _probe(what)
    image_id = docker.from_env().images.get(image).id
    key = f"{image_id} {' '.join(probe.argv)} {probe.pattern}"
    cache = _load_cache()
    if key not in cache:
        try:
            cache[key] = _ask_image(image_id, probe)
        except Exception as exc:  # noqa: BLE001 - engine error or timeout: say so, keep nothing
            return f"unknown ({exc.__class__.__name__}: {str(exc)[:80]})"
        with contextlib.suppress(OSError):
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            tmp = CACHE.with_suffix(f".{os.getpid()}")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(CACHE)
    return cache[key]


def _load_cache() -> dict[str, str]:
    try:
        return dict(json.loads(CACHE.read_text()))
    except (OSError, ValueError):
        return {}


def _ask_image(image_id: str, probe: VersionProbe) -> str:
    import docker

    argv = probe.argv
    client = docker.from_env(timeout=int(TIMEOUT) * 2)
    box = client.containers.create(
        image_id, command=list(argv[1:]), entrypoint=[argv[0]], network_mode="none"
    )
    try:
        # attached before start: reading logs after the exit can come back empty under load
        stream = box.attach(stdout=True, stderr=True, stream=True, logs=True)
        box.start()
        out = b"".join(stream).decode(errors="replace")
        box.wait(timeout=TIMEOUT)
    finally:
        box.remove(force=True)
    if not out.strip():
        raise RuntimeError(f"{argv[0]} printed nothing")
    return probe.parse(out) or _first_line(out)


def _run(cmd: list[str]) -> str:
    try:
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc.__class__.__name__})"
    return p.stdout + p.stderr
