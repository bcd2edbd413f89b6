"""The same call captured on another link layer reads the same, and as fast.

`tcpdump -i any` on a gateway writes Linux cooked headers, a trunk port VLAN tags, a tun
device raw IP: the analysis of each must equal the Ethernet capture's (tests/relink.py
rewrites only the link header), and its RTP must be taken by the fast path (a frame the
fast path leaves goes through the per-frame walk: the same answer, ~4x slower).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.analysis import fastpath, net, pcapio
from harness.analysis.analyzer import analyze_bytes
from harness.analysis.pcapio import ReadStats
from harness.analysis.report import summary
from harness.analysis.session import build
from tests.relink import LINKS, relinked

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
