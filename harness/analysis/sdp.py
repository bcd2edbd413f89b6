"""SDP (RFC 8866) parsed just enough for ICE, DTLS and codec analysis.

Every line keeps its number so lint findings and assertion evidence can quote it.
Parsing reads each line once and files it where the rules look (attributes by name
per section, the o= and c= lines, lines that are no <type>=<value>): the rules of a
capture's SDPs then look things up instead of walking every line again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from harness.analysis.sdp_codecs import Codecs, codecs

try:
    from harness.analysis import _sdpscan  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # built without the C extension (optional in pyproject.toml)
    _sdpscan = None

Line = tuple[int, str]
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
intern = sys.intern
T = TypeVar("T")


class cached_property(Generic[T]):  # noqa: N801 - functools' name: used the same way
    """functools.cached_property without its lock (Python 3.11 takes one on every first
    read, a cost when thousands of SDPs each read a few parts once); no thread shares an
    Sdp while it is read."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func, self.name, self.__doc__ = func, func.__name__, func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached_property[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)  # read from there from now on
        return value


@dataclass
class Media:
    """One m= section."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    line: Line
    _text: str = field(default="", repr=False, compare=False)
    """The SDP's text: its lines (`split`) from `line` up to `_end` are this section's."""
    _end: int = field(default=0, repr=False, compare=False)
    _session: dict[str, list[Line]] = field(default_factory=dict, repr=False, compare=False)
    """The SDP's session-level attributes, where a media-level one falls back to."""

    @cached_property
    def transport(self) -> tuple[str | None, str | None, str | None, str | None]:
        """(ice-ufrag, ice-pwd, fingerprint, setup) as `Sdp.media_attr` reads each, once
        for lint, the rules and the session model."""
        index, session = self._index, self._session
        return (
            _level(index, session, "ice-ufrag"),
            _level(index, session, "ice-pwd"),
            _level(index, session, "fingerprint"),
            _level(index, session, "setup"),
        )

    @cached_property
    def direction(self) -> str:
        """The section's direction: its own attribute, else the session's, else sendrecv."""
        for d in DIRECTIONS:
            if d in self._index:
                return d
        for d in DIRECTIONS:
            if self._session.get(d):
                return d
        return "sendrecv"

    @cached_property
    def lines(self) -> list[Line]:
        """(line number, text) of the section's lines after its m= line (split from the
        text when asked: the analysis reads the attributes, filed by `_parse`)."""
        no = self.line[0]
        raw = split(self._text)[no : self._end]
        return [(i, t) for i, t in enumerate(raw, start=no + 1) if t]

    def attrs(self, name: str) -> list[Line]:
        """(line number, value) of every a=name[:value] in this section."""
        found = self._index.get(name)
        return [] if found is None else found

    @cached_property
    def _index(self) -> dict[str, list[Line]]:
        return _index(self.lines)  # `_parse` fills it in as it reads

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
        return dict(self.codec_lines.codec_map)

    @cached_property
    def codec_lines(self) -> Codecs:
        """The section's formats and codec lines read (`sdp_codecs`: once per distinct set
        in a process), for lint and the rules to share (not to be changed)."""
        return codecs(self.formats, self._index)


@dataclass
class Sdp:
    """A session description with its session-level lines and media sections.

    The text is parsed on first use: the analyzer keeps an SDP's text during its walk
    (`rtp_clocks` is all it reads there) and the SDPs of a capture are parsed after
    it, one after another, instead of each among thousands of packets.
    """

    text: str

    @cached_property
    def session(self) -> list[Line]:
        """(line number, text) of the lines before the first m= line."""
        return [(i, t) for i, t in enumerate(self._raw[: self._first], start=1) if t]

    @cached_property
    def media(self) -> list[Media]:
        return self._parsed("media")

    @cached_property
    def _index(self) -> dict[str, list[Line]]:
        return self._parsed("_index")

    @cached_property
    def origin(self) -> Line | None:
        """The first session-level o= line."""
        return self._parsed("origin")

    @cached_property
    def connection(self) -> str | None:
        """The value of the first session-level c= line."""
        return self._parsed("connection")

    @cached_property
    def types(self) -> frozenset[str]:
        """The '<type>=' of every session-level line ('v=', 'o=', ...)."""
        return self._parsed("types")

    @cached_property
    def malformed(self) -> list[Line]:
        """Lines of the m= sections that are no <type>=<value> line, in order."""
        return self._parsed("malformed")

    @cached_property
    def body(self) -> str:
        """Every line but o=: equal bodies are an unchanged SDP (RFC 3264 8)."""
        raw, first = self._raw, self._first
        body = "\n".join([t for t in raw[:first] if t and t[:2] != "o="])
        return body + "\n".join([t for t in raw[first:] if t])

    @cached_property
    def unversioned(self) -> str:
        """The text without the first session-level o= line's value (its 'o=' stays, so
        every line keeps its number): what lint and the rules read, which the o= line's
        session id and version are not. Successive SDPs of one call differ only there.
        The whole text when that line is the first (a finding quotes line 1)."""
        origin = self.origin
        text = self.text
        if origin is None or origin[0] == 1:
            return text
        no, line = origin
        start = -1
        for _ in range(no - 1):  # `split`'s lines end at each '\n'
            start = text.find("\n", start + 1)
        start += 1
        end = start + len(line)
        if start == 0 or text[start:end] != line:  # not where it was read: the whole text
            return text
        return text[: start + 2] + text[end:]

    @cached_property
    def _first(self) -> int:
        """Where the first m= section starts in `_raw`."""
        return self._parsed("_first")

    @cached_property
    def _raw(self) -> list[str]:
        """The lines (`split`), when asked (the body of an unchanged version, `session`)."""
        return split(self.text)

    def _parsed(self, name: str) -> Any:
        d = self.__dict__
        if "_first" not in d:
            _parse(self, d)
        return d[name]

    def attrs(self, name: str) -> list[Line]:
        found = self._index.get(name)
        return [] if found is None else found

    def attr(self, name: str) -> str | None:
        found = self._index.get(name)
        return found[0][1] if found else None

    def media_attr(self, m: Media, name: str) -> str | None:
        """A media-level attribute, falling back to the session level."""
        return _level(m._index, self._index, name)

    @property
    def ice_ufrags(self) -> list[str]:
        return list(self._ufrags)

    @cached_property
    def _ufrags(self) -> tuple[str, ...]:
        return tuple(_unique([m.transport[0] for m in self.media] or [None]))

    @property
    def fingerprints(self) -> list[str]:
        """'sha-256 AB:CD...' values, media level first."""
        return list(self._fingerprints)

    @cached_property
    def _fingerprints(self) -> tuple[str, ...]:
        return tuple(_unique([m.transport[2] for m in self.media] or [None]))

    @property
    def candidates(self) -> list[dict[str, str | int]]:
        """a=candidate lines decoded (RFC 8839 section 5.1)."""
        return [
            {"transport": transport, "address": address, "port": port, "type": kind}
            for transport, address, port, kind in self.ice_candidates
        ]

    @property
    def ice_candidates(self) -> list[tuple[str, str, int, str]]:
        """(transport, address, port, type) of each a=candidate line that decodes."""
        out = []
        for m in self.media:
            for _, v in m.attrs("candidate"):
                f = v.split()
                if len(f) >= 8 and f[6] == "typ" and f[5].isascii() and f[5].isdigit():
                    out.append((f[2].lower(), f[4], int(f[5]), f[7]))
        return out

    @cached_property
    def bundle(self) -> tuple[Line | None, list[str]]:
        """(the first a=group:BUNDLE line, its mids), or (None, []): lint, the rules and an
        answer's check against its offer ask (not to be changed)."""
        for no, v in self.attrs("group"):
            if v.startswith("BUNDLE"):
                return (no, f"a=group:{v}"), v.split()[1:]
        return None, []


def _level(
    media: Mapping[str, list[Line]], session: Mapping[str, list[Line]], name: str
) -> str | None:
    """A media-level attribute's first value unless empty, else the session level's."""
    found = media.get(name)
    if found and found[0][1]:
        return found[0][1]
    found = session.get(name)
    return found[0][1] if found else None


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


def split(text: str) -> list[str]:
    """The lines of an SDP text without their ends; blank ones are kept (they are numbered)."""
    raw = text.replace("\r\n", "\n").split("\n")
    if "\r" in text:  # a lone CR can be left at a line's end
        raw = [line.rstrip("\r") for line in raw]
    return raw


def parse(text: str) -> Sdp:
    """SDP text as an Sdp (parsed on first use); tolerant of LF line ends and junk lines
    (lint reports them). Raises ValueError, as reading it would, for an m= line's port
    of digits other than 0-9."""
    if not text.isascii():  # str.isdigit() is true for more than int() takes
        for line in split(text):
            if line[:2] == "m=":
                _port(line[2:].split())
    return Sdp(text)


def rtp_clocks(text: str) -> list[tuple[int, int]]:
    """(payload type, clock rate) of the m= sections' a=rtpmap lines that give both in
    digits, in order, found in the text as it is (`_sdpscan.clocks` when built): the
    analyzer's walk reads no more of an SDP."""
    found = _sdpscan.clocks(text) if _sdpscan is not None else None
    return found if found is not None else clocks_python(text)


def clocks_python(text: str) -> list[tuple[int, int]]:
    """`rtp_clocks` in Python: the values of the rtpmap lines `Media.attrs("rtpmap")` gives
    (but for a bare 'a=rtpmap', which maps nothing), type and rate read off each."""
    out: list[tuple[int, int]] = []
    i = 0 if text.startswith("m=") else text.find("\nm=")  # the first m= line
    while i >= 0:
        i = text.find("\na=rtpmap:", i)
        if i < 0:
            break
        end = text.find("\n", i + 10)
        pt, _, enc = text[i + 10 : end if end >= 0 else len(text)].rstrip("\r").partition(" ")
        parts = enc.split("/")
        rate = parts[1] if len(parts) > 1 else ""
        # ASCII digits only: str.isdigit() is true for more than int() takes ("³")
        if (pt + rate).isascii() and pt.isdigit() and rate.isdigit() and int(rate):
            out.append((int(pt), int(rate)))
        i = end
    return out


def _port(f: list[str]) -> int:
    return int(f[1].split("/")[0]) if len(f) > 1 and f[1].split("/")[0].isdigit() else -1


Scan = tuple[
    int,  # how many lines (`split`) there are
    int,  # where the first m= section starts among them
    dict[str, list[Line]],  # session-level attributes by name
    frozenset[str],  # the '<type>=' of the session-level lines
    Line | None,  # the first session-level o= line
    str | None,  # the first session-level c= line's value
    list[Line],  # the m= sections' lines that are no <type>=<value>
    list[tuple[int, str, dict[str, list[Line]], Line | None, int]],  # per m= section:
    # its line's number and text, its attributes by name, its first c= line, its end
]


def _parse(sdp: Sdp, into: dict[str, Any]) -> None:
    """File every line where the rules look (`scan_python`, compiled as `_sdpscan.c` when
    built); sections keep the text to list their lines when asked."""
    done = _sdpscan.scan(sdp.text) if _sdpscan is not None else None
    _, first, index, types, origin, connection, malformed, sections = (
        done if done is not None else scan_python(sdp.text)
    )
    media: list[Media] = []
    text = sdp.text
    for no, line, found, cline, end in sections:
        f = line[2:].split()
        kind, proto = f[0] if f else "", f[2] if len(f) > 2 else ""
        m = Media(kind, _port(f), proto, f[3:], (no, line), text, end, index)
        d = m.__dict__
        d["_index"], d["cline"] = found, cline
        media.append(m)
    into["_first"], into["media"], into["_index"] = first, media, index
    into["types"], into["origin"], into["connection"] = types, origin, connection
    into["malformed"] = malformed


def scan_python(text: str) -> Scan:
    """Read every line once, filing it where the rules look: attributes by name per section,
    the o= and c= lines, lines that are no <type>=<value>."""
    sections: list[tuple[int, str, dict[str, list[Line]], Line | None, int]] = []
    session_index: dict[str, list[Line]] = {}
    index = session_index
    types: set[str] = set()
    origin: Line | None = None
    connection: str | None = None
    cline: Line | None = None
    malformed: list[Line] = []
    section: Line | None = None
    raw = split(text)
    first = len(raw)
    for no, line in enumerate(raw, start=1):
        if not line:
            continue
        head = line[:2]
        if head == "a=":
            name, _, value = line[2:].partition(":")
            found = index.get(name)
            if found is None:  # interned: the rules' look-ups match the key without reading it
                index[intern(name)] = [(no, value)]
            else:
                found.append((no, value))
        elif head == "m=":
            if section is not None:
                sections.append((*section, index, cline, no - 1))
            else:
                first = no - 1
            section, index, cline = (no, line), {}, None
        elif section is None:
            types.add(head)
            if head == "o=":
                origin = origin or (no, line)
            elif head == "c=" and connection is None:
                connection = line[2:]
        elif head == "c=":
            cline = cline or (no, line)
        elif not _well_formed(line):
            malformed.append((no, line))
    if section is not None:
        sections.append((*section, index, cline, len(raw)))
    if session_index:
        types.add("a=")
    return len(raw), first, session_index, frozenset(types), origin, connection, malformed, sections


def looks_like_sdp(text: str) -> bool:
    return text.lstrip().startswith("v=0")
