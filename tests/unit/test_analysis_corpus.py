"""Third-party captures (tests/data/thirdparty/, sources and licences in SOURCES.md) read
as tshark reads them: SIP messages, STUN by method and class (classic RFC 3489 STUN on its
own, and STUN inside TURN per frame), RTP packets per stream and direction, the packets of
each RTCP compound, DTLS handshake messages, frames per UDP and TCP flow (through any
tunnel), frames; and each gets its HTML report.

tshark runs once per file with every field we compare (-T fields, one row per frame).
A difference that is not ours to fix is listed in KNOWN with the reason beside it, and the
test checks the difference is exactly that, so a change on either side shows up.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import TypeVar

import pytest

from harness.analysis import analyzer, fastpath, stun
from harness.analysis.analyzer import analyze_bytes, analyze_file
from harness.analysis.cli import main
from harness.analysis.dtls import HANDSHAKE_TYPES
from harness.analysis.model import Analysis, fmt_addr
from harness.analysis.rtp import RTCP_TYPES
from tests.unit.test_analysis_encapsulation import nothing_taken

CORPUS = Path(__file__).resolve().parents[1] / "data" / "thirdparty"
FILES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".pcap", ".pcapng"))
HEURISTICS = ["--enable-heuristic", "rtp_udp", "--enable-heuristic", "rtp_stun"]
HEURISTICS += ["--enable-heuristic", "dtls_stun"]
HEURISTICS += ["--enable-heuristic", "rtcp_udp", "--enable-heuristic", "rtcp_stun"]
FIELDS = [
    "frame.number",
    "sip.Method",
    "sip.Status-Code",
    "stun.type",
    "classicstun.type",
    "rtp.ssrc",
    "dtls.handshake.type",
    "stun.channel",
    "ip.src",
    "ipv6.src",
    "udp.srcport",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "udp.dstport",
    "tcp.dstport",
    "frame.protocols",
    "rtcp.pt",
    "data.data",
]
#: tshark options a file needs to see what a user would point it at
DECODE_AS = {
    # RTP over TCP with RFC 4571 framing on port 5000: tshark needs to be told; we find
    # it from the bytes (the capture starts mid-connection).
    "ndpi-rtp.pcapng": ["-d", "tcp.port==5000,rtp"],
}
#: file -> {frame: tshark's RTCP types} where tshark reads more of a compound than we do:
#: each second "packet" is the ciphertext of an SRTCP compound (google meet's flow had its
#: DTLS-SRTP handshake captured) or of one whose handshake was not, whose length field
#: runs far past the datagram (1974 words in a 52-byte one; signal's 58642 and 34458 in
#: 36-byte ones).
RTCP_KNOWN = {
    "ndpi-stun_google_meet.pcapng": {105: [201, 206]},
    "ndpi-stun_signal.pcapng": {191: [201, 208], 379: [201, 204]},
}
#: tshark's names of the tunnels net.decode unwraps, in frame.protocols
TUNNEL_LAYERS = {"vxlan", "geneve", "gre", "erspan", "gtp"}
#: (file, protocol) -> (only ours, only tshark): differences explained, not fixed
KNOWN: dict[tuple[str, str], tuple[dict[object, int], dict[object, int]]] = {
    # STUN (classic too) quoted inside ICMP destination-unreachable errors (port unreachable,
    # Zoom's: host prohibited), which tshark dissects: failed deliveries, not messages on
    # the wire, so we do not count them.
    ("ndpi-stun_signal.pcapng", "stun"): ({}, {0x001: 31, 0x003: 16, 0x104: 6}),
    ("ndpi-stun.pcap", "stun"): ({}, {0x104: 1}),
    ("ndpi-telegram_videocall-p2p.pcapng", "stun"): ({}, {0x104: 6}),
    ("ndpi-zoom_p2p-stun.pcapng", "classic"): ({}, {0x001: 13}),
    # SRTP packets with the padding bit set: the padding count (the last byte) is
    # encrypted, so it often exceeds the payload and tshark's RTP heuristic rejects the
    # packet as "data". We classify by RFC 7983's first byte, as the receiver does.
    ("ndpi-stun_signal.pcapng", "rtp"): (
        {(2013, "18.195.131.143:61498 > 192.168.12.169:47767"): 1},
        {},
    ),
    ("ndpi-stun_google_meet.pcapng", "rtp"): (
        {
            (0, "142.250.82.76:19305 > 192.168.12.156:38152"): 6,
            (0, "[2001:4860:4864:6::81]:19305 > [2001:b07:a3d:c112:48a1:1094:1227:281e]:45572"): 11,
        },
        {},
    ),
    # Telegram's own encrypted datagrams: those in RTP's first-byte range whose CSRC list
    # or header extension overruns them are malformed RTP for both of us (rtp.header_fits),
    # but these two have the padding bit set and a CSRC list that fits, so only tshark's
    # padding test rejects them (the padding count, as above, is not ours to read).
    ("ndpi-telegram_videocall-p2p.pcapng", "rtp"): (
        {
            (702453022, "93.36.13.115:35393 > 192.168.12.169:42405"): 1,
            (1773894545, "93.36.13.115:35393 > 192.168.12.169:42405"): 1,
        },
        {},
    ),
    # Teams' server wraps two Binding answers in [MS-TURN]'s multiplexed channel 0xFF10:
    # its first byte, 0xFF, is outside RFC 7983's ranges, and we count the datagrams as
    # "other" on their flow rather than guess which relayed flow they belong to.
    ("ndpi-teams-turn.pcap", "stun-in-turn"): ({}, {195: 1, 198: 1}),
    # Frame 3 sends offset 0 again, longer, over the hole between frames 1 and 2: we keep
    # a fragment's first copy (a retransmission's bytes are the same), tshark the longer
    # one, which completes its datagram (Linux drops datagrams whose fragments overlap).
    ("zeek-fragmented-1.pcap", "flows"): ({}, {("udp", "164.1.123.163:123 > 164.1.123.61:137"): 1}),
    # Frames the capture cut short (snaplen 176) of what their IP headers say: we count them
    # as truncated, tshark reads the headers that are there.
    ("zeek-geneve-vxlan-dns-truncated.pcap", "flows"): (
        {},
        {
            ("udp", "172.16.11.201:36872 > 1.1.1.1:53"): 1,
            ("udp", "1.1.1.1:53 > 172.16.11.201:36872"): 1,
        },
    ),
    # BIG TCP over IPv6 as newer Linux hands it to tcpdump: payload length 0 and no jumbo
    # option; we read the segment to the frame's end (tcpdump too), tshark 4.0 gives up.
    ("tcpdump-bigtcp-ipv6.pcap", "flows"): (
        {("tcp", "[2604:1380:4091:ce00::b]:43267 > [2604:1380:4091:ce00::d]:41219"): 1},
        {},
    ),
    # PPTP's GRE (version 1) carries PPP, and Teredo (UDP 3544) IPv6: two retired VPN and
    # transition tunnels we do not unwrap (the Teredo datagrams stay UDP on 3544).
    ("zeek-gre-pptp.pcap", "flows"): (
        {},
        {
            ("udp", "172.16.44.3:40768 > 8.8.8.8:53"): 1,
            ("udp", "8.8.8.8:53 > 172.16.44.3:40768"): 1,
        },
    ),
    ("zeek-Teredo.pcap", "flows"): (
        {
            ("udp", "192.168.2.16:3797 > 65.55.158.80:3544"): 2,
            ("udp", "65.55.158.81:3544 > 192.168.2.16:3797"): 1,
            ("udp", "65.55.158.80:3544 > 192.168.2.16:3797"): 1,
        },
        {
            (
                "udp",
                "[fe80::708d:fe83:4114:a512]:3544 > [2001:0:4137:9e50:8000:f12a:b9c8:2815]:3797",
            ): 1
        },
    ),
    # tshark follows the re-INVITE's m=image (T.38) and labels the rest of this stream
    # T.38, but its bytes stay RTP: version 2, PT 8 (PCMA), sequence numbers continuing.
    ("ndpi-FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", "rtp"): (
        {(246353583, "10.35.60.100:15580 > 10.23.1.52:16756"): 27},
        {},
    ),
}

pytestmark = pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")


@cache
def tshark(path: Path) -> list[dict[str, list[str]]]:
    argv = ["tshark", "-n", "-r", str(path), *HEURISTICS, *DECODE_AS.get(path.name, [])]
    argv += ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    rows = []
    for line in out.splitlines():
        cells = line.split("\t")
        rows.append({f: (c.split(",") if c else []) for f, c in zip(FIELDS, cells, strict=False)})
    return rows


@cache
def ours(path: Path) -> Analysis:
    return analyze_file(path)


K = TypeVar("K")  # what a comparison counts: SIP methods, STUN types, payload types, ...


def compare(path: Path, what: str, mine: Counter[K], theirs: Counter[K]) -> None:
    only_ours, only_theirs = dict(mine - theirs), dict(theirs - mine)
    expected = KNOWN.get((path.name, what), ({}, {}))
    assert (only_ours, only_theirs) == expected, (
        f"{path.name} {what}: only ours {only_ours}, only tshark {only_theirs}"
    )


def test_corpus_is_small_and_sourced() -> None:
    listed = (CORPUS / "SOURCES.md").read_text()
    assert len(FILES) >= 25
    assert all(f"`{p.name}`" in listed for p in FILES)
    assert sum(p.stat().st_size for p in FILES) < 3_000_000


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_frames(path: Path) -> None:
    a = ours(path)
    assert a.packets == len(tshark(path)) and not a.read.errors


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_sip_messages(path: Path) -> None:
    theirs: Counter[str] = Counter()
    for r in tshark(path):
        theirs.update(r["sip.Method"] if r["sip.Method"] and not r["sip.Status-Code"] else [])
        theirs.update(r["sip.Status-Code"])
    mine = Counter(e.msg.method if e.msg.is_request else str(e.msg.status) for e in ours(path).sip)
    compare(path, "sip", mine, theirs)


def _stun_type(method: str, cls: str, classic: bool = False) -> int:
    names = stun.CLASSIC_METHODS if classic else stun.METHODS
    m = next((k for k, v in names.items() if v == method), None)
    m = int(method, 16) if m is None else m
    c = stun.CLASSES.index(cls)
    return (m & 0xF) | (m & 0x70) << 1 | (m & 0xF80) << 2 | (c & 1) << 4 | (c & 2) << 7


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_stun_by_method_and_class(path: Path) -> None:
    """Top-level STUN (RFC 8489 and [MS-TURN]), TURN over UDP and TCP included."""
    theirs = Counter(int(t, 16) for r in tshark(path) for t in r["stun.type"])
    events = [e for e in ours(path).stun if not e.relayed and not e.msg.classic]
    compare(path, "stun", Counter(_stun_type(e.msg.method, e.msg.cls) for e in events), theirs)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_stun_inside_turn(path: Path) -> None:
    """STUN relayed by TURN (ICE checks to and from a relayed candidate), per frame: tshark
    leaves the data of a ChannelData message or a Send or Data indication undissected, so
    the data that starts as an RFC 8489 message does (its type's top bits 0, the cookie)."""
    theirs: Counter[int] = Counter()
    for r in tshark(path):
        turn = r["stun.channel"] or {"0x0016", "0x0017", "0x0115"} & set(r["stun.type"])
        for data in r["data.data"] if turn else []:
            if data[:1] in "0123" and data[8:16] == "2112a442":
                theirs[int(r["frame.number"][0])] += 1
    mine = Counter(e.frame for e in ours(path).stun if e.relayed and not e.msg.classic)
    compare(path, "stun-in-turn", mine, theirs)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_classic_stun(path: Path) -> None:
    theirs = Counter(int(t, 16) for r in tshark(path) for t in r["classicstun.type"])
    events = [e for e in ours(path).stun if e.msg.classic]
    mine = Counter(_stun_type(e.msg.method, e.msg.cls, classic=True) for e in events)
    compare(path, "classic", mine, theirs)


def _addr(r: dict[str, list[str]], side: str) -> str:
    """A frame's innermost address and port on `side` (a tunnel's packet: the carried one)."""
    layers = r["frame.protocols"][0].split(":") if r["frame.protocols"] else []
    inner = max((i for i, p in enumerate(layers) if p in ("ip", "ipv6")), default=-1)
    family = "ipv6" if inner >= 0 and layers[inner] == "ipv6" else "ip"
    ip = (r[f"{family}.{side}"] or r[f"ip.{side}"] or r[f"ipv6.{side}"])[-1]
    transport = next((p for p in reversed(layers) if p in ("udp", "tcp")), "udp")
    port = (r[f"{transport}.{side}port"] or r[f"udp.{side}port"] or r[f"tcp.{side}port"])[-1]
    return fmt_addr((ip, int(port)))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_udp_and_tcp_flows(path: Path) -> None:
    """Frames per innermost UDP or TCP flow and direction: IP and its tunnels, fragments
    (a datagram is its last fragment's frame, as tshark shows it), every link. ICMP errors
    quote a datagram without being one of its flow's, and a tunnel's datagram that carries
    no UDP or TCP (ARP, ICMP) is none of the tunnel's; relayed flows are TURN's, below."""
    theirs: Counter[tuple[str, str]] = Counter()
    for r in tshark(path):
        layers = r["frame.protocols"][0].split(":") if r["frame.protocols"] else []
        at = max((i for i, p in enumerate(layers) if p in ("udp", "tcp")), default=-1)
        tunnel = any(p in TUNNEL_LAYERS for p in layers[at + 1 :])
        ported = at >= 0 and r[f"{layers[at]}.srcport"]  # not a header tshark gave up on
        if ported and not tunnel and "icmp" not in layers and "icmpv6" not in layers:
            theirs[(layers[at], f"{_addr(r, 'src')} > {_addr(r, 'dst')}")] += 1
    mine: Counter[tuple[str, str]] = Counter()
    for f in ours(path).flows:
        if f.via is None:
            mine[(f.proto, f"{fmt_addr(f.src)} > {fmt_addr(f.dst)}")] += f.packets
    compare(path, "flows", mine, theirs)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_rtp_per_stream_and_direction(path: Path) -> None:
    """(SSRC, direction on the wire): RTP relayed inside TURN counts on its TURN flow."""
    theirs: Counter[tuple[int, str]] = Counter()
    for r in tshark(path):
        for s in r["rtp.ssrc"]:
            theirs[(int(s, 16), f"{_addr(r, 'src')} > {_addr(r, 'dst')}")] += 1
    mine: Counter[tuple[int, str]] = Counter()
    for f in ours(path).flows:
        for st in f.streams.values():
            outer = f.via.split(" ", 1)[1] if f.via else f"{fmt_addr(f.src)} > {fmt_addr(f.dst)}"
            mine[(st.ssrc, outer)] += st.packets
    compare(path, "rtp", mine, theirs)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dtls_handshake_messages(path: Path) -> None:
    # a type we have no name for stays its number as a string (and then differs from tshark's)
    theirs: Counter[int | str] = Counter(
        int(t) for r in tshark(path) for t in r["dtls.handshake.type"]
    )
    code = {v: k for k, v in HANDSHAKE_TYPES.items()}
    mine: Counter[int | str] = Counter(
        code.get(hs.type, hs.type)
        for e in ours(path).dtls
        for rec in e.records
        if not rec.encrypted
        for hs in rec.handshakes
    )
    compare(path, "dtls", mine, theirs)


#: datagrams in RTP's first-byte range whose header overruns them (rtp.header_fits)
OVERRUN = {"ndpi-discord.pcap": 3, "ndpi-telegram_videocall-p2p.pcapng": 10}


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("name", sorted(OVERRUN))
def test_an_rtp_header_that_overruns_is_malformed_on_every_path(
    name: str, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path (C or numpy) leaves such a datagram to the per-frame walk, which
    counts it as malformed RTP: the streams are those of a walk without the fast path."""
    if compiled and fastpath._fastpath is None:
        pytest.skip("harness/analysis/_fastpath.c is not built")
    if not compiled:
        monkeypatch.setattr(fastpath, "_fastpath", None)
    image = (CORPUS / name).read_bytes()
    fast = analyze_bytes(image)
    with monkeypatch.context() as m:
        m.setattr(analyzer.fastpath, "find_media", nothing_taken)
        walked = analyze_bytes(image)
    assert fast.malformed["rtp"] == walked.malformed["rtp"] == OVERRUN[name]
    streams = [
        {(s.ssrc, f.label): (s.packets, s.first_frame) for f in a.flows for s in f.streams.values()}
        for a in (fast, walked)
    ]
    assert streams[0] == streams[1] and streams[0]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_rtcp_compounds(path: Path) -> None:
    """Each datagram both read as RTCP holds the same packet types, in order (SRTCP: the
    first, in the clear; a compound ends where its next packet is none). Which datagrams
    are RTCP is not compared: tshark finds RTCP by heuristics that want a report first
    and no STUN port, we by RFC 7983's first byte, as a receiver does; but no packet of
    ours is ever of a type outside RTCP's range."""
    theirs = {int(r["frame.number"][0]): [int(t) for t in r["rtcp.pt"]] for r in tshark(path)}
    code = {v: k for k, v in RTCP_TYPES.items()}
    mine = {e.frame: [code.get(p.type) or int(p.type) for p in e.packets] for e in ours(path).rtcp}
    assert all(192 <= t <= 223 for types in mine.values() for t in types)
    both = {no for no, types in theirs.items() if types and no in mine}
    differ = {no: theirs[no] for no in both if mine[no] != theirs[no]}
    assert differ == RTCP_KNOWN.get(path.name, {})


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_capture_gets_its_report(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`harness analyze FILE --html DIR` on a capture made elsewhere: the page, its
    ladder and media timeline, whatever the file holds (tunnels, odd links, no call)."""
    out = tmp_path / "report"
    assert main(["analyze", str(path), "--html", str(out)]) == 0
    assert path.name in capsys.readouterr().out
    assert path.name in (out / "index.html").read_text()
    for drawing in ("ladder.svg", "timeline.svg"):
        assert (out / "runs" / "capture" / drawing).read_text().startswith("<svg")
