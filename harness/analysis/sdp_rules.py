"""SDP rules one description shows on its own, beyond sdplint: placeholders of a
trickle/JSEP SDP (RFC 8829 5.2.1, 5.3.1; RFC 8839), payload types named by rtpmap,
fmtp, rtcp-fb and rtx (RFC 8866, RFC 4585, RFC 4588), direction and msid
(RFC 8866 6.7, RFC 8830). Each finding names its rule first ("rule: message").
"""

from __future__ import annotations

import re

from harness.analysis.sdp import DIRECTIONS, Media, Sdp
from harness.analysis.sdplint import Finding

MSID = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,64}( [!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,64})?$")


def finding(rule: str, sev: str, line: tuple[int, str] | None, msg: str, rfc: str) -> Finding:
    no, text = line if line else (None, "")
    return Finding(sev, no, text, f"{rule}: {msg}", rfc)


def single(sdp: Sdp, role: str, profile: str) -> list[Finding]:
    """Every rule of this module on every m= section of `sdp`."""
    out: list[Finding] = []
    for m in sdp.media:
        out += payload_types(m)
        index = m._index
        dirs = [(no, v) for v in DIRECTIONS if v in index for no, _ in index[v]]
        if len(dirs) > 1:
            no = sorted(dirs)[1][0]
            out.append(
                finding(
                    "direction",
                    "error",
                    (no, f"a={sorted(dirs)[1][1]}"),
                    "more than one direction attribute",
                    "RFC 8866 6.7",
                )
            )
        msids = m.attrs("msid")
        # the section's own direction is the first of `dirs` (`direction` looks in that order)
        own = (dirs[0][1] if dirs else m.direction) if msids else ""
        for no, v in msids:
            if not MSID.match(v):
                out.append(
                    finding(
                        "msid",
                        "error",
                        (no, f"a=msid:{v}"),
                        "msid is '<id> [<appdata>]', 1-64 token chars each",
                        "RFC 8830 2",
                    )
                )
            if own in ("recvonly", "inactive"):
                out.append(
                    finding(
                        "msid",
                        "warning",
                        (no, f"a=msid:{v}"),
                        f"a=msid in a {own} section: it names a track that is not sent",
                        "RFC 8829 5.2.1",
                    )
                )
        if profile == "webrtc":
            out += placeholders(sdp, m, role)
    return out


def payload_types(m: Media) -> list[Finding]:
    """rtpmap, fmtp and rtcp-fb name formats of the m= line; rtx's apt names a real codec
    (read once per distinct set of a section's codec lines: `sdp_codecs`)."""
    if m.kind not in ("audio", "video") or m.port == 0:
        return []
    return [finding("payload-types", "error", *f) for f in m.codec_lines.stray]


def placeholders(sdp: Sdp, m: Media, role: str) -> list[Finding]:
    """RFC 8829 5.2.1/5.3.1: without candidates, port 9 (0 if bundle-only) and c=IN IP4 0.0.0.0;
    with candidates, c= and port are a candidate's (the default candidate, RFC 8839 4.2.1.2)."""
    if m.port == 0:
        return []
    out: list[Finding] = []
    cands = [v.split() for _, v in m.attrs("candidate")]
    cline = m.cline
    conn = (cline[1][2:] if cline else sdp.connection) or ""
    addr = conn.split()[-1] if conn else ""
    if m.has("bundle-only") and role == "offer":
        out.append(
            finding(
                "placeholder",
                "error",
                m.line,
                "a bundle-only section in an offer has port 0",
                "RFC 8843 6, 7.2.1",
            )
        )
    _, group = sdp.bundle
    if m.attr("mid") in group[1:] and not cands:
        return out  # bundled, not the tagged section: its transport is the tagged one's
    if not cands:
        if m.port != 9:
            out.append(
                finding(
                    "placeholder",
                    "error",
                    m.line,
                    f"no candidates, so the port is the placeholder 9, not {m.port}",
                    "RFC 8829 5.2.1, 5.3.1",
                )
            )
        if addr not in ("0.0.0.0", "::"):
            out.append(
                finding(
                    "placeholder",
                    "error",
                    cline or m.line,
                    f"no candidates, so c= is IN IP4 0.0.0.0, not {addr}",
                    "RFC 8829 5.2.1, 5.3.1",
                )
            )
        return out
    default = {(c[4], c[5]) for c in cands if len(c) > 5}
    if (addr, str(m.port)) not in default and not (m.port == 9 and addr in ("0.0.0.0", "::")):
        out.append(
            finding(
                "placeholder",
                "warning",
                m.line,
                f"c={addr} port {m.port} is no candidate of this section (the default candidate goes there)",
                "RFC 8839 4.2.1.2",
            )
        )
    return out
