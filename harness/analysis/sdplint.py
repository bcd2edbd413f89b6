"""SDP lint: what WebRTC requires, and what a plain SIP endpoint can accept.

One finding per problem, each with the line it is about and the RFC behind it,
so a report can quote the SDP the way a reviewer would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.analysis.memo import Memo
from harness.analysis.sdp import Media, Sdp

ICE_CHAR = re.compile(r"^[A-Za-z0-9+/]+$")
FINGERPRINT = re.compile(
    r"^(sha-1|sha-224|sha-256|sha-384|sha-512|md5|md2) ([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+)$"
)
WEBRTC_RTP_PROTO = "UDP/TLS/RTP/SAVPF"
WEBRTC_DATA_PROTO = "UDP/DTLS/SCTP"
SIP_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
#: formats that carry no media of their own: no codec in common if only these are
_NOT_CODECS = frozenset({"telephone-event", "red", "rtx", "ulpfec", "cn"})
#: the session-level lines every SDP has, with their RFC 8866 section
_SESSION_LINES = (("v=", "5.1"), ("o=", "5.2"), ("s=", "5.3"), ("t=", "5.9"))
_REQUIRED = frozenset(field for field, _ in _SESSION_LINES)
SIP_COMMON_CODECS = {"pcmu", "pcma", "g722", "g729", "opus", "telephone-event"}


@dataclass
class Finding:
    """One problem: severity, the SDP line (number, text) and the rule it breaks."""

    severity: str
    line_no: int | None
    line: str
    message: str
    rfc: str

    def __str__(self) -> str:
        where = f"line {self.line_no}: {self.line!r}" if self.line_no else "(missing line)"
        return f"{self.severity}: {where}: {self.message} [{self.rfc}]"

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "line_no": self.line_no,
            "line": self.line,
            "message": self.message,
            "rfc": self.rfc,
        }


def lint(sdp: Sdp, role: str, profile: str = "webrtc", offer: Sdp | None = None) -> list[Finding]:
    """Check `sdp` as an 'offer' or 'answer' for the 'webrtc' or 'sip' profile.

    With `offer` given (for an answer), codecs are checked against the offer.
    """
    out = _basics(sdp)
    active = [m for m in sdp.media if m.port != 0]
    if profile == "webrtc":
        out += _webrtc(sdp, active, role)
    else:
        out += _sip(sdp, active)
    out += _codecs(sdp, active, offer)
    return out


def _basics(sdp: Sdp) -> list[Finding]:
    out: list[Finding] = []
    first = sdp.types
    if not first >= _REQUIRED:
        for field, rfc in _SESSION_LINES:
            if field not in first:
                out.append(
                    Finding("error", None, "", f"session has no {field} line", f"RFC 8866 {rfc}")
                )
    if sdp.text and "\r\n" not in sdp.text:
        out.append(
            Finding(
                "warning", 1, sdp.text.split("\n", 1)[0], "lines end in LF, not CRLF", "RFC 8866 5"
            )
        )
    for no, text in sdp.malformed:
        out.append(Finding("error", no, text, "not a <type>=<value> line", "RFC 8866 5"))
    if not sdp.connection and None in [m.cline for m in sdp.media]:
        out.append(
            Finding(
                "error",
                None,
                "",
                "no c= line at session level or in every m= section",
                "RFC 8866 5.7",
            )
        )
    mids: dict[str, int] = {}
    for m in sdp.media:
        for no, mid in m.attrs("mid"):
            if mid in mids:
                out.append(Finding("error", no, f"a=mid:{mid}", "duplicate mid", "RFC 5888 4"))
            mids[mid] = no
    return out


def _webrtc(sdp: Sdp, active: list[Media], role: str) -> list[Finding]:
    out: list[Finding] = []
    mids = {mid for m in sdp.media for _, mid in m.attrs("mid")}
    bundles = sdp.attrs("group")
    bundle = [(no, v) for no, v in bundles if v.startswith("BUNDLE")]
    if not bundle:
        out.append(Finding("warning", None, "", "no a=group:BUNDLE", "RFC 8829 5.2.1, RFC 9143"))
    for no, v in bundle:
        for mid in v.split()[1:]:
            if mid not in mids:
                out.append(
                    Finding(
                        "error",
                        no,
                        f"a=group:{v}",
                        f"BUNDLE names unknown mid {mid!r}",
                        "RFC 9143 7.2",
                    )
                )
    for m in active:
        no, text = m.line
        want = WEBRTC_DATA_PROTO if m.kind == "application" else WEBRTC_RTP_PROTO
        if m.proto != want and not (m.kind == "application" and m.proto == "DTLS/SCTP"):
            out.append(
                Finding(
                    "error",
                    no,
                    text,
                    f"profile {m.proto}, WebRTC needs {want}",
                    "RFC 8829 5.2.1, RFC 5764",
                )
            )
        if not m.has("mid"):
            out.append(Finding("error", no, text, "m= section without a=mid", "RFC 8829 5.2.1"))
        ufrag, pwd, fp, setup = m.transport
        if not ufrag:
            out.append(Finding("error", no, text, "no a=ice-ufrag", "RFC 8839 5.4"))
        elif not 4 <= len(ufrag) <= 256 or not ICE_CHAR.match(ufrag):
            out.append(
                Finding(
                    "error",
                    _line(sdp, m, "ice-ufrag"),
                    f"a=ice-ufrag:{ufrag}",
                    "ice-ufrag must be 4-256 ice-chars",
                    "RFC 8839 5.4",
                )
            )
        if not pwd:
            out.append(Finding("error", no, text, "no a=ice-pwd", "RFC 8839 5.4"))
        elif not 22 <= len(pwd) <= 256 or not ICE_CHAR.match(pwd):
            out.append(
                Finding(
                    "error",
                    _line(sdp, m, "ice-pwd"),
                    f"a=ice-pwd:{pwd}",
                    "ice-pwd must be 22-256 ice-chars",
                    "RFC 8839 5.4",
                )
            )
        if not fp:
            out.append(Finding("error", no, text, "no a=fingerprint", "RFC 8827 6.5, RFC 8122 5"))
        elif not _fingerprint_ok[fp]:
            out.append(
                Finding(
                    "error",
                    _line(sdp, m, "fingerprint"),
                    f"a=fingerprint:{fp}",
                    "malformed fingerprint",
                    "RFC 8122 5",
                )
            )
        if not setup:
            out.append(Finding("error", no, text, "no a=setup", "RFC 8842 5.1"))
        elif role == "offer" and setup != "actpass":
            out.append(
                Finding(
                    "error",
                    _line(sdp, m, "setup"),
                    f"a=setup:{setup}",
                    "an offer must use actpass",
                    "RFC 8842 5.2",
                )
            )
        elif role == "answer" and setup not in ("active", "passive"):
            out.append(
                Finding(
                    "error",
                    _line(sdp, m, "setup"),
                    f"a=setup:{setup}",
                    "an answer must use active or passive",
                    "RFC 8842 5.3",
                )
            )
        if m.kind != "application" and not m.has("rtcp-mux"):
            out.append(Finding("error", no, text, "no a=rtcp-mux", "RFC 8829 5.2.1, RFC 5761"))
    return out


def _sip(sdp: Sdp, active: list[Media]) -> list[Finding]:
    out: list[Finding] = []
    if sdp.attrs("group"):
        no, v = sdp.attrs("group")[0]
        out.append(
            Finding(
                "warning",
                no,
                f"a=group:{v}",
                "BUNDLE is unknown to most SIP endpoints: each m= needs its own port",
                "RFC 9143 7.5",
            )
        )
    for m in active:
        no, text = m.line
        if m.proto not in SIP_PROTOS:
            out.append(
                Finding(
                    "error",
                    no,
                    text,
                    f"profile {m.proto}: plain SIP endpoints take RTP/AVP",
                    "RFC 3551, RFC 3264 5.1",
                )
            )
        elif m.proto != "RTP/AVP":
            out.append(
                Finding(
                    "warning",
                    no,
                    text,
                    f"profile {m.proto} needs SRTP/AVPF support; RTP/AVP is the safe choice",
                    "RFC 3551",
                )
            )
        if m.transport[2]:
            out.append(
                Finding(
                    "warning",
                    _line(sdp, m, "fingerprint"),
                    "a=fingerprint",
                    "DTLS-SRTP: a plain SIP endpoint ignores or rejects it",
                    "RFC 5763",
                )
            )
    return out


def _codecs(sdp: Sdp, active: list[Media], offer: Sdp | None) -> list[Finding]:
    out: list[Finding] = []
    for i, m in enumerate(active):
        no, text = m.line
        if m.kind not in ("audio", "video"):
            continue
        for pt in m.codec_lines.unmapped:
            out.append(
                Finding(
                    "error",
                    no,
                    text,
                    f"dynamic payload type {pt} has no a=rtpmap",
                    "RFC 8866 6.6",
                )
            )
        if not m.formats:
            out.append(Finding("error", no, text, "m= line lists no formats", "RFC 8866 5.14"))
        if offer is None:
            continue
        if i < len(offer.media) and offer.media[i].kind == m.kind:
            other: Media | None = offer.media[i]
        else:
            other = next((o for o in offer.media if o.kind == m.kind), None)
        if other is None:
            continue
        if m.codec_lines.names & other.codec_lines.names <= _NOT_CODECS:
            out.append(
                Finding("error", no, text, "no codec in common with the offer", "RFC 3264 6.1")
            )
    return out


#: whether an a=fingerprint value is well formed, by value (an endpoint keeps its certificate)
_fingerprint_ok: Memo[str, bool] = Memo(lambda fp: FINGERPRINT.match(fp) is not None)


def _line(sdp: Sdp, m: Media, name: str) -> int | None:
    found = m.attrs(name) or sdp.attrs(name)
    return found[0][0] if found else None
