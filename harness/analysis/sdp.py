"""SDP (RFC 8866) parsed just enough for ICE, DTLS and codec analysis.

Every line keeps its number so lint findings and assertion evidence can quote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

Line = tuple[int, str]


@dataclass
class Media:
    """One m= section."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    line: Line
    lines: list[Line] = field(default_factory=list)

    def attrs(self, name: str) -> list[Line]:
        """(line number, value) of every a=name[:value] in this section."""
        return self._index.get(name, [])

    @cached_property
    def _index(self) -> dict[str, list[Line]]:
        return _index(self.lines)

    def attr(self, name: str) -> str | None:
        found = self.attrs(name)
        return found[0][1] if found else None

    def has(self, name: str) -> bool:
        return bool(self.attrs(name))

    @property
    def codecs(self) -> dict[str, str]:
        """payload type -> 'opus/48000/2' from a=rtpmap, static types named by number."""
        out = {pt: pt for pt in self.formats}
        for _, v in self.attrs("rtpmap"):
            pt, _, enc = v.partition(" ")
            out[pt] = enc.strip()
        return out


@dataclass
class Sdp:
    """A session description with its session-level lines and media sections."""

    text: str
    session: list[Line] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    def attrs(self, name: str) -> list[Line]:
        return self._index.get(name, [])

    @cached_property
    def _index(self) -> dict[str, list[Line]]:
        return _index(self.session)

    def attr(self, name: str) -> str | None:
        found = self.attrs(name)
        return found[0][1] if found else None

    def media_attr(self, m: Media, name: str) -> str | None:
        """A media-level attribute, falling back to the session level."""
        return m.attr(name) or self.attr(name)

    @property
    def ice_ufrags(self) -> list[str]:
        return _unique([self.media_attr(m, "ice-ufrag") for m in self.media] or [None])

    @property
    def fingerprints(self) -> list[str]:
        """'sha-256 AB:CD...' values, media level first."""
        return _unique([self.media_attr(m, "fingerprint") for m in self.media] or [None])

    @property
    def candidates(self) -> list[dict[str, str | int]]:
        """a=candidate lines decoded (RFC 8839 section 5.1)."""
        out: list[dict[str, str | int]] = []
        for m in self.media:
            for _, v in m.attrs("candidate"):
                f = v.split()
                if len(f) >= 8 and f[6] == "typ" and f[5].isdigit():
                    out.append(
                        {
                            "transport": f[2].lower(),
                            "address": f[4],
                            "port": int(f[5]),
                            "type": f[7],
                        }
                    )
        return out

    @property
    def connection(self) -> str | None:
        for _, v in self.session:
            if v.startswith("c="):
                return v[2:]
        return None


def _index(lines: list[Line]) -> dict[str, list[Line]]:
    """a=name[:value] lines by name, as (line number, value)."""
    out: dict[str, list[Line]] = {}
    for no, text in lines:
        if text.startswith("a="):
            name, _, value = text[2:].partition(":")
            out.setdefault(name, []).append((no, value))
    return out


def _unique(values: list[str | None]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return out


def parse(text: str) -> Sdp:
    """Parse SDP text; tolerant of LF line ends and junk lines (lint reports them)."""
    sdp = Sdp(text)
    raw = text.replace("\r\n", "\n").split("\n")
    if "\r" in text:  # a lone CR can be left at a line's end
        raw = [line.rstrip("\r") for line in raw]
    lines = sdp.session
    for no, line in enumerate(raw, start=1):
        if not line:
            continue
        if line[:2] == "m=":
            f = line[2:].split()
            port = int(f[1].split("/")[0]) if len(f) > 1 and f[1].split("/")[0].isdigit() else -1
            m = Media(f[0] if f else "", port, f[2] if len(f) > 2 else "", f[3:], (no, line))
            sdp.media.append(m)
            lines = m.lines
        else:
            lines.append((no, line))
    return sdp


def looks_like_sdp(text: str) -> bool:
    return text.lstrip().startswith("v=0")
