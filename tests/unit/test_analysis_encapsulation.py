"""The same call captured on another link layer or carried by IPv6 reads the same, and as
fast; a pcapng's own TLS key log decrypts as --keylog.

`tcpdump -i any` on a gateway writes Linux cooked headers, a trunk port VLAN tags, a tun
device raw IP: the analysis of each must equal the Ethernet capture's (tests/relink.py
rewrites only the link header), and its RTP must be taken by the fast path (a frame the
fast path leaves goes through the per-frame walk: the same answer, ~4x slower). A call
over IPv6 must read as the per-frame walk reads it, the fast path taking its media too.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import analyzer, fastpath, net, pcapio
from harness.analysis.analyzer import analyze_bytes
from harness.analysis.fastpath import FastPath, FlowCounts, RtpBatch
from harness.analysis.pcapio import FrameIndex, ReadStats
from harness.analysis.report import summary
from harness.analysis.session import build
from tests.fuzzing import FAST
from tests.relink import LINKS, TUNNELS, ipv6, relinked, tunneled

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
#: plain RTP with HTTP signalling over TCP, and RTP in TURN ChannelData with STUN and DTLS
CALLS = ("aiortc-long.pcap", "aiortc-relayed.pcap")
KINDS = sorted(set(LINKS) - {"ether"})


def analysed(image: bytes) -> dict[str, Any]:
    """The summary `harness analyze --json` prints, less what names the file and link."""
    out = summary(build(analyze_bytes(image)))
    del out["file"], out["link_types"]
    return json.loads(json.dumps(out))


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("kind", KINDS)
def test_same_analysis_on_every_link(call: str, kind: str) -> None:
    image = (PCAPS / call).read_bytes()
    carried = kind not in ("raw", "loop", "null")  # these carry IP only: ARP is left out
    want = analysed(relinked(image, "ether", ip_only=not carried))
    got = analysed(relinked(image, kind))
    assert want["packets"] > 300 and want["rtp"]
    for key in want:
        assert got[key] == want[key], key


@pytest.mark.parametrize("kind", KINDS)
def test_the_fast_path_takes_the_media(kind: str) -> None:
    """Compiled or not, every RTP frame the fast path takes from Ethernet it takes here."""
    for call in CALLS:
        ether = relinked((PCAPS / call).read_bytes(), "ether", ip_only=True)
        other = relinked((PCAPS / call).read_bytes(), kind)
        a, b = (
            fastpath.find_media(img, pcapio.index_frames(img, ReadStats()))
            for img in (ether, other)
        )
        taken = len(a.rtp.frames) + len(a.relayed.frames)
        assert taken > 200
        assert len(b.rtp.frames) + len(b.relayed.frames) == taken
        assert len(b.acks.frames) == len(a.acks.frames)


@pytest.mark.skipif(net._netdecode is None, reason="harness/analysis/_netdecode.c is not built")
@pytest.mark.parametrize("kind", KINDS)
def test_the_bulk_decode_answers_every_link(kind: str) -> None:
    """The frames the fast path leaves are decoded in bulk on every link, as on Ethernet."""
    image = relinked((PCAPS / "aiortc-long.pcap").read_bytes(), kind)
    idx = pcapio.index_frames(image, ReadStats())
    todo = fastpath.find_media(image, idx).rest
    answers = net.segments(image, idx, todo)
    decoded = [net.decode(int(idx.links[i]), image[idx.offsets[i] :][: idx.lengths[i]])
               for i in todo]  # fmt: skip
    segments = sum(type(d) is tuple for d in decoded)
    assert segments > 100
    assert sum(a is not None for a in answers) == segments


def nothing_taken(data: bytes, idx: FrameIndex) -> FastPath:
    """A fast path that takes no frame: every frame goes through the per-frame walk."""
    none = memoryview(array("q"))
    fast = FastPath(RtpBatch(none), RtpBatch(none), FlowCounts(none), none)
    t0 = float(idx.times[0])
    fast.rest = memoryview(array("q", range(len(idx))))
    fast.rest_times = memoryview(array("d", [float(t) - t0 for t in idx.times]))
    return fast


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("kind", ["ether", "ipv6", "sll-ipv6", "raw-ipv6", "vlan-ipv6"])
def test_the_fast_path_reads_as_the_walk(
    call: str, kind: str, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IPv4 and IPv6, on Ethernet and other links: the fast path's media and ACKs give
    the analysis the per-frame walk gives them, and it takes them all (the C scan and
    its numpy reference alike)."""
    if compiled and fastpath._fastpath is None:
        pytest.skip("harness/analysis/_fastpath.c is not built")
    if not compiled:
        monkeypatch.setattr(fastpath, "_fastpath", None)
    image = (PCAPS / call).read_bytes()
    if "ipv6" in kind:
        image = ipv6(image)
    if kind != "ether" and kind != "ipv6":
        image = relinked(image, kind.split("-")[0])
    fast = fastpath.find_media(image, pcapio.index_frames(image, ReadStats()))
    assert len(fast.rtp.frames) + len(fast.relayed.frames) > 200
    want = analysed(image)
    with monkeypatch.context() as m:
        m.setattr(analyzer.fastpath, "find_media", nothing_taken)
        assert analysed(image) == want
    if "ipv6" in kind:
        assert all(":" in f["src"] for f in want["flows"])


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("kind", TUNNELS)
def test_a_tunnel_reads_as_the_call_it_carries(call: str, kind: str, tmp_path: Path) -> None:
    """IP in IP, GRE, ERSPAN and VXLAN (tests/relink.py): the call inside reads as the
    capture without the tunnel, and tshark finds the same RTP, STUN and DTLS in the direct
    call (the relayed one's TURN is compared with tshark in test_analysis_corpus.py)."""
    image = (PCAPS / call).read_bytes()
    inside = tunneled(image, kind)
    want, got = analysed(image), analysed(inside)
    assert got == want and want["rtp"]
    if not shutil.which("tshark") or call != "aiortc-long.pcap":
        return
    path = tmp_path / f"{kind}.pcap"
    path.write_bytes(inside)
    argv = ["tshark", "-n", "-r", str(path), "--enable-heuristic", "rtp_udp"]
    argv += ["-T", "fields", "-E", "occurrence=l", "-e", "rtp.ssrc", "-e", "stun.type"]
    argv += ["-e", "dtls.record.content_type"]
    rows = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    theirs = Counter[tuple[str, str]]()
    for line in rows.stdout.splitlines():
        for what, cell in zip(("rtp", "stun", "dtls"), line.split("\t"), strict=False):
            theirs.update([(what, cell if what == "rtp" else "")] if cell else [])
    ours = Counter[tuple[str, str]]()
    for s in got["rtp"]:
        ours[("rtp", f"0x{int(s['ssrc'], 16):08x}")] += s["packets"]
    ours[("stun", "")] = sum(got["stun"].values())
    ours[("dtls", "")] = sum(f["kinds"].get("dtls", 0) for f in got["flows"])
    assert ours == theirs


@pytest.mark.parametrize("port", [4789, 6081, 4754, 6635, 2152])
def test_a_datagram_to_a_tunnel_port_stays_itself(port: int) -> None:
    """The call's STUN, DTLS and RTP sent to a tunnel's port (VXLAN, Geneve, GRE, MPLS,
    GTP-U): no header test of those takes them (STUN's first byte is Geneve's version 0),
    so each reads as the datagram it is."""
    image = (PCAPS / "aiortc-long.pcap").read_bytes()
    frames = list(pcapio.read_frames(image, ReadStats()))
    seen = 0
    for _, _, link, f in frames:
        seg = net.decode(link, f)
        if type(seg) is not tuple or seg[0] != net.UDP:
            continue
        moved = bytearray(f)
        moved[36:38] = port.to_bytes(2, "big")  # the UDP destination port after IPv4's 20
        again = net.decode(link, bytes(moved))
        assert type(again) is tuple and again[2] == seg[2] and again[1][-2:] == moved[36:38]
        seen += 1
    assert seen > 2000


@FAST
@given(
    st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x2001, 0xDB8, 0xABC]), min_size=8, max_size=8)
)
def test_ipv6_text_is_ipaddress_text(words: list[int]) -> None:
    """inet_ntop where it agrees with `ipaddress` (RFC 5952), `ipaddress` where not."""
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    assert net.ipv6_text(raw) == str(ipaddress.IPv6Address(raw))


@pytest.mark.parametrize("name", ["sip-tls12", "sip-tls13"])
def test_key_logs_the_file_carries_decrypt_as_keylog(name: str, tmp_path: Path) -> None:
    """A pcapng with the TLS key log embedded (`editcap --inject-secrets tls,KEYS`, what
    Wireshark's "export with secrets" writes) reads as the capture with --keylog KEYS."""
    keys = PCAPS / f"{name}.keys"
    packed = tmp_path / f"{name}.pcapng"
    subprocess.run(["editcap", "--inject-secrets", f"tls,{keys}", str(PCAPS / f"{name}.pcap"),
                    str(packed)], check=True, timeout=30)  # fmt: skip
    embedded = summary(build(analyze_bytes(packed.read_bytes())))
    given = summary(build(analyze_bytes((PCAPS / f"{name}.pcap").read_bytes(), keylog=keys)))
    plain = summary(build(analyze_bytes((PCAPS / f"{name}.pcap").read_bytes())))
    assert embedded["sip"] and not plain["sip"]  # read only with the keys
    for key in ("sip", "sdp", "flows", "packets"):  # times: pcapng counts ns ticks, pcap s+ns
        assert rounded(embedded[key]) == rounded(given[key]), key


def rounded(value: Any) -> Any:
    """A summary's part with its floats to the microsecond."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value
