"""IPv4 fragments (as Firefox's ClientHello through TURN makes them) become whole datagrams:
scapy's `fragment()` is the independent writer, the original packet the oracle."""

from __future__ import annotations

import random

from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.l2 import Ether

from harness.analysis.ipfrag import Fragment, Reassembler
from harness.analysis.net import LINK_ETHERNET, decode, transport
from harness.analysis.net import UDP as UDP_PROTO


def add(r: Reassembler, frame: bytes) -> bytes | None:
    """Feed one fragment frame; the whole transport payload (UDP header on) once complete."""
    frag = decode(LINK_ETHERNET, frame)
    assert isinstance(frag, Fragment)
    return r.feed(frag, 0.0)


def datagram(whole: bytes) -> tuple[int, bytes]:
    seg = transport(UDP_PROTO, bytes(8), whole)
    assert type(seg) is tuple, seg  # not a reason the datagram could not be read
    proto, _key, data, _seq, _flags = seg
    return proto, data


def frames(payload: bytes, size: int, ident: int = 7) -> list[bytes]:
    pkt = IP(src="198.18.0.12", dst="198.18.0.10", id=ident) / UDP(sport=3478, dport=5000) / payload
    return [bytes(Ether() / f) for f in fragment(pkt, fragsize=size)]


def test_fragments_in_any_order_make_the_datagram() -> None:
    payload = bytes(random.Random(1).randrange(256) for _ in range(1900))
    parts = frames(payload, 1480)
    assert len(parts) == 2 and all(isinstance(decode(LINK_ETHERNET, f), Fragment) for f in parts)
    for order in (parts, parts[::-1]):
        r = Reassembler()
        out = [add(r, f) for f in order]
        assert out[0] is None and out[1] is not None
        assert datagram(out[1]) == (UDP_PROTO, payload)


def test_interleaved_datagrams_and_a_missing_fragment() -> None:
    a, b = frames(b"a" * 3000, 1000, ident=1), frames(b"b" * 3000, 1000, ident=2)
    r = Reassembler()
    done = [x for pair in zip(a, b, strict=True) for x in [add(r, pair[0]), add(r, pair[1])] if x]
    assert [datagram(d)[1] for d in done] == [b"a" * 3000, b"b" * 3000]
    lost = Reassembler()
    assert all(add(lost, f) is None for f in frames(b"c" * 3000, 1000)[1:])
    lost.finish()
    assert lost.dropped == {"incomplete": 1}
