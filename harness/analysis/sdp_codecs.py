"""What an m= section's codec lines say, worked out once per distinct set of them.

A section's formats, a=rtpmap, a=fmtp and a=rtcp-fb lines decide its codec map, the
codecs it offers by name, its dynamic payload types without an rtpmap and the
payload-types rule's findings (RFC 8866 6.6, 6.15; RFC 4585 4.2; RFC 4588 8.6). A
capture of many calls repeats those lines call after call, line numbers and all, while
ufrags, fingerprints and o= lines differ: they are read once per distinct set (and
lint, the rules and an answer's check against its offer share what was read).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from harness.analysis.memo import Memo

Line = tuple[int, str]

#: static payload types by number (RFC 3551)
STATIC = {"0": "pcmu", "8": "pcma", "9": "g722", "18": "g729", "13": "cn", "3": "gsm"}
_NAMED_PTS = (("rtpmap", "RFC 8866 6.6"), ("fmtp", "RFC 8866 6.15"), ("rtcp-fb", "RFC 4585 4.2"))
_NONE: tuple[Line, ...] = ()


class Codecs(NamedTuple):
    """A section's codec lines, read (shared between sections and captures: read-only)."""

    codec_map: Mapping[str, str]
    """payload type -> 'opus/48000/2' from a=rtpmap, static types named by number."""
    names: frozenset[str]
    """The codecs by name: 'opus/48000/2' -> 'opus'; static '0' -> 'pcmu'."""
    unmapped: tuple[str, ...]
    """The m= line's dynamic payload types (96 and up) without an a=rtpmap, in its order."""
    stray: tuple[tuple[Line, str, str], ...]
    """payload-types findings as (line, message, RFC): an rtpmap, fmtp or rtcp-fb naming a
    format the m= line lacks, an rtx whose apt names no codec of the line."""


Key = tuple[tuple[str, ...], tuple[Line, ...], tuple[Line, ...], tuple[Line, ...]]


def codecs(formats: list[str], index: Mapping[str, list[Line]]) -> Codecs:
    """The section's codec lines read (`formats` of its m= line, `index` its attributes);
    keyed by everything the result depends on: the formats and those lines as numbered."""
    get = index.get
    return _memo[
        tuple(formats),
        tuple(get("rtpmap", _NONE)),
        tuple(get("fmtp", _NONE)),
        tuple(get("rtcp-fb", _NONE)),
    ]


def _read(key: Key) -> Codecs:
    formats, rtpmaps, fmtps, feedback = key
    codec_map = {pt: pt for pt in formats}
    mapped: set[str] = set()
    for _, v in rtpmaps:
        pt, _, enc = v.partition(" ")
        codec_map[pt] = enc.strip()
        mapped.add(pt)
    names = frozenset(STATIC.get(v) or v.partition("/")[0].lower() for v in codec_map.values())
    unmapped = tuple(
        pt for pt in formats if pt.isascii() and pt.isdigit() and int(pt) >= 96 and pt not in mapped
    )
    on_line = set(formats)
    stray: list[tuple[Line, str, str]] = []
    for (attr, rfc), lines in zip(_NAMED_PTS, (rtpmaps, fmtps, feedback), strict=True):
        for no, v in lines:
            pt = v.partition(" ")[0]
            if pt not in on_line and not (attr == "rtcp-fb" and pt == "*"):
                stray.append(
                    ((no, f"a={attr}:{v}"), f"payload type {pt} is not on the m= line", rfc)
                )
    for no, v in fmtps:
        pt, _, params = v.partition(" ")
        codec = codec_map.get(pt)
        if codec is None or not codec.lower().startswith("rtx/"):
            continue
        apt = dict(p.strip().partition("=")[::2] for p in params.split(";")).get("apt")
        target = codec_map.get(apt or "", "")
        if apt is None or apt not in on_line or target.lower().startswith("rtx/"):
            message = f"rtx apt={apt} does not name a codec of this m= line"
            stray.append(((no, f"a=fmtp:{v}"), message, "RFC 4588 8.6"))
    return Codecs(MappingProxyType(codec_map), names, unmapped, tuple(stray))


_memo: Memo[Key, Codecs] = Memo(_read)
