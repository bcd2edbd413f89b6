"""Which images exist: kinds, Debian suites, names (`rtc-harness/<kind>:<suite>`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.runtime.engine import ImageError, default_image

REPO = "rtc-harness"
#: Oldest to newest: the order `images build` and matrices use.
SUITES = ("bookworm", "trixie", "sid")
MIRROR = "http://deb.debian.org/debian"
#: Dockerfiles live here, one folder (the build context) per kind.
IMAGES_DIR = Path(__file__).resolve().parents[2] / "ci" / "images"


@dataclass(frozen=True)
class Kind:
    """One image kind: the folder of its Dockerfile and the suites that package it."""

    name: str
    suites: tuple[str, ...] = SUITES
    what: str = ""
    folder: Path | None = None
    """The build context (default: ci/images/<name>)."""

    @property
    def context(self) -> Path:
        return self.folder or IMAGES_DIR / self.name


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        # trixie released without Janus (removed from testing): apt has no candidate there
        Kind(
            "janus",
            suites=("bookworm", "sid"),
            what="Janus gateway with SIP plugin, HTTP/WebSocket transports",
        ),
        Kind("kamailio", what="Kamailio SIP proxy with WebSocket modules"),
        Kind("rtpengine", what="rtpengine media relay (userspace)"),
        Kind("coturn", what="coturn TURN/STUN server"),
        Kind("baresip", what="baresip SIP user agent"),
        Kind("sipp", what="SIPp traffic generator"),
        Kind("asterisk", suites=("sid",), what="Asterisk PBX (only sid packages it)"),
        Kind("chromium", what="Chromium with Playwright for the peer agent"),
        Kind("firefox", what="firefox-esr (WebDriver BiDi) for the peer agent"),
        Kind("aiortc", what="Python with aiortc for the peer agent"),
    )
}


image_name = default_image  # `rtc-harness/<kind>:<suite>`, what the docker runtime runs


def base_name(suite: str) -> str:
    return f"{REPO}/base:{suite}"


def targets(kinds: list[str] | None, suites: list[str] | None) -> list[tuple[str, str]]:
    """(kind, suite) pairs to build, in a stable order; unknown names are errors."""
    for s in suites or []:
        if s not in SUITES:
            raise ImageError(f"unknown suite {s!r} (one of {', '.join(SUITES)})")
    for k in kinds or []:
        if k not in KINDS:
            raise ImageError(f"unknown image kind {k!r} (one of {', '.join(KINDS)})")
    out = []
    for k in kinds or list(KINDS):
        wanted = suites or list(SUITES)
        have = [s for s in wanted if s in KINDS[k].suites]
        if kinds and suites and not have:
            raise ImageError(f"{k} is only built for {', '.join(KINDS[k].suites)}")
        out += [(k, s) for s in have]
    return out
