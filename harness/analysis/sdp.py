"""SDP (RFC 8866) parsed just enough for ICE, DTLS and codec analysis.

Every line keeps its number so lint findings and assertion evidence can quote it.
`parse` reads each line once and files it where the rules look (attributes by name
per section, the o= and c= lines, lines that are no <type>=<value>): the rules of a
capture's SDPs then look things up instead of walking every line again.
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
        return _index(self.lines)  # `parse` fills it in as it reads

    @cached_property
    def cline(self) -> Line | None:
        """The section's first c= line."""
        return next(((no, t) for no, t in self.lines if t.startswith("c=")), None)

    def attr(self, name: str) -> str | None:
        found = self._index.get(name)
        return found[0][1] if found else None

    def has(self, name: str) -> bool:
        return name in self._index

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
        return _index(self.session)  # `parse` fills it in as it reads

    def attr(self, name: str) -> str | None:
        found = self._index.get(name)
        return found[0][1] if found else None

    def media_attr(self, m: Media, name: str) -> str | None:
        """A media-level attribute, falling back to the session level."""
        found = m._index.get(name)
        if found and found[0][1]:
            return found[0][1]
        found = self._index.get(name)
        return found[0][1] if found else None

    @property
    def ice_ufrags(self) -> list[str]:
        return list(self._ufrags)

    @cached_property
    def _ufrags(self) -> tuple[str, ...]:
        return tuple(_unique([self.media_attr(m, "ice-ufrag") for m in self.media] or [None]))

    @property
    def fingerprints(self) -> list[str]:
        """'sha-256 AB:CD...' values, media level first."""
        return list(self._fingerprints)

    @cached_property
    def _fingerprints(self) -> tuple[str, ...]:
        return tuple(_unique([self.media_attr(m, "fingerprint") for m in self.media] or [None]))

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

    @cached_property
    def connection(self) -> str | None:
        """The value of the first session-level c= line."""
        for _, v in self.session:
            if v.startswith("c="):
                return v[2:]
        return None

    @cached_property
    def origin(self) -> Line | None:
        """The first session-level o= line."""
        return next(((no, t) for no, t in self.session if t.startswith("o=")), None)

    @cached_property
    def types(self) -> frozenset[str]:
        """The '<type>=' of every session-level line ('v=', 'o=', ...)."""
        return frozenset(text[:2] for _, text in self.session)

    @cached_property
    def malformed(self) -> list[Line]:
        """Lines of the m= sections that are no <type>=<value> line, in order."""
        return [
            (no, text)
            for m in self.media
            for no, text in (m.line, *m.lines)
            if not _well_formed(text)
        ]


def _well_formed(text: str) -> bool:
    return len(text) >= 2 and text[1] == "=" and text[0].islower()


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
    session_index: dict[str, list[Line]] = {}
    index = session_index
    types: set[str] = set()
    origin: Line | None = None
    connection: str | None = None
    cline: Line | None = None
    malformed: list[Line] = []
    m: Media | None = None
    for no, line in enumerate(raw, start=1):
        if not line:
            continue
        head = line[:2]
        if head == "a=":
            name, _, value = line[2:].partition(":")
            found = index.get(name)
            if found is None:
                index[name] = [(no, value)]
            else:
                found.append((no, value))
        elif head == "m=":
            if m is not None:
                m.__dict__["cline"] = cline
            f = line[2:].split()
            port = int(f[1].split("/")[0]) if len(f) > 1 and f[1].split("/")[0].isdigit() else -1
            m = Media(f[0] if f else "", port, f[2] if len(f) > 2 else "", f[3:], (no, line))
            sdp.media.append(m)
            lines = m.lines
            index = m.__dict__["_index"] = {}
            cline = None
            continue
        elif m is None:
            types.add(head)
            if head == "o=":
                origin = origin or (no, line)
            elif head == "c=" and connection is None:
                connection = line[2:]
        elif head == "c=":
            cline = cline or (no, line)
        elif not _well_formed(line):
            malformed.append((no, line))
        lines.append((no, line))
    if m is not None:
        m.__dict__["cline"] = cline
    if session_index:
        types.add("a=")
    d = sdp.__dict__
    d["_index"], d["types"] = session_index, frozenset(types)
    d["origin"], d["connection"], d["malformed"] = origin, connection, malformed
    return sdp


def looks_like_sdp(text: str) -> bool:
    return text.lstrip().startswith("v=0")
