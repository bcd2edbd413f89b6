"""The DTLS scans (`_dtlsscan.c`, dtls.scan_py) against dtls.parse, on real and damaged datagrams.

The datagrams are every DTLS datagram in the repo's captures (DTLS 1.0 and 1.2, relayed in
TURN ChannelData and Send/Data indications, certificates in fragments), damaged where the
scan decides things: record and handshake headers and lengths, the Client/ServerHello
fields before the extensions, extension types and lengths, use_srtp's list. Both scans
must give the `dtls.Scan` of parse's records, value and type of every item (repr: True is
not 1).
"""

from __future__ import annotations

import hashlib
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import dtls, stun
from harness.analysis.memo import Bounded
from harness.analysis.model import DtlsEvent
from harness.analysis.report import summarize_file, summary
from harness.analysis.session import build
from tests.fuzzing import examples, mutate_packet, segment_payloads

DATA = Path(__file__).resolve().parents[1] / "data"
compiled = pytest.mark.skipif(
    dtls._dtlsscan is None,
    reason="harness/analysis/_dtlsscan.c is not built (pip install -e . builds it)",
)


@cache
def real_datagrams() -> list[bytes]:
    """Every distinct DTLS datagram of the captures, as the analyser is given them."""
    found: dict[bytes, None] = {}
    for p in segment_payloads():
        m = stun.parse_py(p)
        for c in (p, p[4:], m.data if m and m.data else b""):  # UDP, ChannelData, Send
            if dtls.is_dtls(c):
                found[c] = None
    return list(found)


def same(p: bytes) -> None:
    """Both scans read what parse reads (the compiled one when it is built)."""
    want = dtls.summarize(dtls.parse(p))
    for scan in (dtls.scan_py, dtls.scan):
        got = scan(p)
        assert repr(got) == repr(want), (scan, p.hex())
        assert got == want


def header_offsets(p: bytes) -> list[tuple[str, int]]:
    """Where the records', handshake messages' and hello extensions' headers are."""
    out, off = [], 0
    while off + 13 <= len(p):
        out.append(("record", off))
        ln = p[off + 11] << 8 | p[off + 12]
        if p[off] == 22:
            frag, at = p[off + 13 : off + 13 + ln], 0
            while at + 12 <= len(frag):
                out.append(("handshake", off + 13 + at))
                if frag[at] in (1, 2):
                    out.append(("hello", off + 13 + at + 12))
                at += 12 + int.from_bytes(frag[at + 9 : at + 12], "big")
        off += 13 + ln
    return out


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    p = bytearray(draw(st.sampled_from(real_datagrams())))
    for _ in range(draw(st.integers(1, 6))):
        kind, at = draw(st.sampled_from(header_offsets(bytes(p)) or [("record", 0)]))
        how = draw(st.integers(0, 4))
        if how == 0:  # another length: the record's, the message's length or fragment's
            field = {"record": [11], "handshake": [1, 4, 6, 9], "hello": [34, 35]}[kind]
            i = at + draw(st.sampled_from(field))
            if i + 2 <= len(p):
                p[i : i + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        elif how == 1:  # another type: content type, handshake type, epoch
            i = at + (3 if kind == "record" and draw(st.booleans()) else 0)
            if i < len(p):
                p[i] = draw(st.sampled_from([0, 1, 2, 11, 14, 19, 20, 21, 22, 23, 24, 25, 26, 255]))
        elif how == 2:  # a use_srtp or extended_master_secret extension, whole or cut
            ext = draw(
                st.sampled_from(
                    [
                        b"\x00\x17\x00\x00",
                        b"\x00\x0e\x00\x05\x00\x02\x00\x01\x00",
                        b"\x00\x0e\x00\x07\x00\x04\x00\x07\x00\x63\x00",
                        b"\x00\x0e\x00\x01\x00",
                        b"\x00\x0e\x00\x03\x00\x09\x00",
                    ]  # fmt: skip
                )
            )
            i = draw(st.integers(at, len(p)))
            p[i:i] = ext[: draw(st.integers(0, len(ext)))]
        elif how == 3:  # any byte of a hello's fields (session id, cookie, suites...)
            i = at + draw(st.integers(0, 120))
            if i < len(p):
                p[i] = draw(st.integers(0, 255))
        else:  # anything: a flip, a cut, an insertion
            edits = draw(
                st.lists(
                    st.tuples(st.integers(0, 4), st.floats(0, 1), st.integers(0, 2**16)),
                    max_size=3,
                )
            )
            p = bytearray(mutate_packet(bytes(p), edits))
    return bytes(p)


@examples(1000)
@given(damaged())
def test_scans_match_parse(p: bytes) -> None:
    same(p)


def test_every_real_datagram() -> None:
    datagrams = real_datagrams()
    assert len(datagrams) > 40  # DTLS 1.0, 1.2, fragments, relayed
    kinds = set()
    for p in datagrams:
        scanned = dtls.scan_py(p)
        if scanned:
            kinds |= {hs[0] for step in scanned[2] for hs in step[2]}
        same(p)
        for cut in range(len(p)):
            same(p[:cut])
    assert {"ClientHello", "ServerHello", "Certificate", "Finished"} <= kinds


@compiled
def test_takes_any_buffer() -> None:
    p = real_datagrams()[0]
    # the C scanner takes any buffer; scan's type is what the walk hands it (bytes)
    assert dtls.scan(bytearray(p)) == dtls.scan(memoryview(p)) == dtls.scan_py(p)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        dtls.scan("not bytes")  # type: ignore[arg-type]  # the wrong type on purpose


def test_steps_are_the_records() -> None:
    """The steps are the records as the session reads them."""
    for p in real_datagrams():
        records = dtls.parse(p)
        scanned = dtls.scan_py(p)
        if scanned and not scanned[0]:
            assert scanned[2] == dtls.steps(records)
            assert [r.alert for r in records] == [step[1] for step in scanned[2]]


def test_records_are_parsed_when_read() -> None:
    p = next(p for p in real_datagrams() if dtls.scan_py(p) and p[0] == 22)
    ev = DtlsEvent(1, 0.0, ("a", 1), ("b", 2), "a->b", False, datagram=p)
    assert "_records" not in vars(ev) or vars(ev)["_records"] is None
    assert ev.records == dtls.parse(p)
    assert ev.records is ev.records  # parsed once
    given_records = dtls.parse(p)[:1]
    assert DtlsEvent(1, 0.0, ("a", 1), ("b", 2), "", False, given_records).records is given_records


def old_fingerprint(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_fingerprint_as_written_before() -> None:
    for der in (b"", b"\x30\x82", bytes(range(256)) * 3):
        assert dtls.sha256_fingerprint(der) == old_fingerprint(der)


#: fragment edges: where a header or a leaf of up to 300 bytes ends, anywhere
EDGES = st.sampled_from([0, 3, 6, 40, 64, 128, 200, 306, 400]) | st.integers(0, 400)


@examples(300)
@given(
    st.binary(max_size=300),
    st.integers(0, 40),
    st.lists(st.tuples(st.integers(0, 2), EDGES, EDGES), max_size=8),
    st.data(),
)
def test_certificate_fragments_joined_by_what_they_cover(
    leaf: bytes, extra: int, frags: list, data: st.DataObject
) -> None:
    """A flight cut in fragments, some lost, sent again cut elsewhere (RFC 9147 4.4: a
    smaller MTU after a timeout) and some of those lost too (the receiver joins what it
    has and answers: no third copy comes), then fragments of any place, repeated: the
    leaf's fingerprint exactly when the bytes received so far cover its message from the
    start (counted byte by byte here), and only then."""
    body = (len(leaf) + 3 + extra).to_bytes(3, "big") + len(leaf).to_bytes(3, "big")
    body += leaf + bytes(extra)

    def flight() -> list[tuple[int, int, int]]:
        cuts = {c for c in data.draw(st.lists(EDGES, max_size=6)) if 0 < c < len(body)}
        return [(1, a, b) for a, b in pairwise([0, *sorted(cuts), len(body)])]

    first = [f for f in flight() if data.draw(st.booleans())]  # the others lost
    resent = data.draw(st.permutations([f for f in flight() if data.draw(st.booleans())]))
    asm = dtls.CertificateAssembler()
    covered: dict[int, set[int]] = {}
    for msg_seq, a, b in [*first, *resent, *frags]:
        have = covered.setdefault(msg_seq, set())
        have.update(range(a, min(b, len(body))))
        whole = set(range(6 + len(leaf))) <= have
        got = asm.add_fragment(msg_seq, a, body[a:b])
        assert got == (old_fingerprint(leaf) if whole else None)
        if whole:
            del covered[msg_seq]


def hello(ht: int, extensions: bytes, ext_len: int | None = None, cut: int | None = None) -> bytes:
    """A datagram of one Client (1) or Server (2) Hello with these extensions."""
    body = b"\xfe\xfd" + bytes(range(32)) + b"\x00"  # version, random, empty session id
    body += b"\x00\x00\x02\xc0\x2b\x01\x00" if ht == 1 else b"\xc0\x2b\x00"  # cookie, suites
    body += (len(extensions) if ext_len is None else ext_len).to_bytes(2, "big") + extensions
    body = body[:cut]
    hs = bytes([ht]) + len(body).to_bytes(3, "big") + b"\x00\x00" + bytes(3)
    hs += len(body).to_bytes(3, "big") + body
    return b"\x16\xfe\xfd" + bytes(8) + len(hs).to_bytes(2, "big") + hs


def ext(kind: int, value: bytes) -> bytes:
    return kind.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value


USE_SRTP = [
    b"\x00\x02\x00\x01\x00",  # one profile
    b"\x00\x04\x00\x07\x00\x63\x00",  # two, the second unknown
    b"\x00\x01\x00",  # a list one byte long: no profile
    b"\x00\x09\x00\x08",  # a list longer than the value: what is there
    b"\x00\x09\x00",  # ... not even one whole profile
    b"\x00",  # too short for a list length
    b"",
]


@pytest.mark.parametrize("ht", [1, 2])
def test_hello_extensions(ht: int) -> None:
    """use_srtp and extended_master_secret in every shape _hello_extensions reads."""
    cases = [ext(14, v) for v in USE_SRTP] + [ext(23, b""), ext(23, b"\x01"), ext(99, b"xx")]
    for a in cases:
        for b in cases:
            exts = a + b
            for ext_len in (None, 0, 3, 4, len(exts) - 1, len(exts) + 5):
                same(hello(ht, exts, ext_len))
            for cut in range(60):
                same(hello(ht, exts, cut=cut))
    scanned = dtls.scan(hello(ht, ext(23, b"") + ext(14, USE_SRTP[1])))
    assert scanned is not None
    kind, offset, random, ems, profile = scanned[2][0][2][0]
    assert (ems, profile, scanned[1]) == (True, "SRTP_AEAD_AES_128_GCM", ht == 2)
    assert random == (bytes(range(32)) if ht == 1 else None)


#: DTLS 1.0 and 1.2, certificates in fragments, relayed, with a key log (alerts decrypted)
CAPTURES = [
    "thirdparty/zeek-dtls1_0.pcap",
    "thirdparty/zeek-dtls1_2.pcap",
    "thirdparty/ndpi-dtls.pcap",
    "thirdparty/ndpi-dtls_certificate_fragments.pcap",
    "thirdparty/ndpi-stun_dtls_rtp.pcapng",
    "pcaps/aiortc-relayed.pcap",
    "pcaps/aiortc-datachannel-turn.pcap",
    "pcaps/firefox-aiortc-datachannel.pcap",
]


@pytest.mark.parametrize("name", CAPTURES)
def test_summary_from_steps_as_from_records(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report read from the scan's steps is the one read from parsed records."""
    path = DATA / name
    keys = path.with_suffix(".keys")
    _, fast = summarize_file(path, keys if keys.is_file() else None)
    assert fast["dtls"], "the capture holds a DTLS handshake"
    monkeypatch.setattr(dtls, "scan", dtls.scan_py)
    session, pure = summarize_file(path, keys if keys.is_file() else None)
    assert pure == fast
    for ev in session.analysis.dtls:  # and with no steps, the session reads the records
        ev.records = ev.records
        ev.steps = None
    assert summary(build(session.analysis))["dtls"] == fast["dtls"]


@compiled
def test_a_resent_handshake_datagram_is_read_once() -> None:
    """A copy of a handshake datagram (equal bytes, another object) gets the first one's
    scan, the same object; forgetting them all past the bound (more distinct datagrams
    than it keeps) changes no answer."""
    datagrams = real_datagrams()
    for p in datagrams:
        first, again = dtls.scan(bytes(bytearray(p))), dtls.scan(bytes(bytearray(p)))
        assert repr(first) == repr(again) == repr(dtls.scan_py(p))
        assert first is again or p[0] == 23, p.hex()
    variants = [p + bytes([n % 251]) * (n // 251 + 1) for n in range(5000) for p in datagrams[:1]]
    for p in variants + variants[:100] + datagrams:
        assert repr(dtls.scan(p)) == repr(dtls.scan_py(p))


def test_a_resent_leaf_is_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal first fragments holding the whole leaf share one fingerprint (hashed once),
    in any assembler; leaves of equal length do not; the kept ones are forgotten all at
    once past their limit, and answers do not change."""
    hashed: list[bytes] = []
    real = dtls.sha256_fingerprint

    def counted(der: bytes) -> str:
        hashed.append(der)
        return real(der)

    monkeypatch.setattr(dtls, "sha256_fingerprint", counted)
    monkeypatch.setattr(dtls, "_LEAVES", Bounded(3))

    def first_fragment(leaf: bytes) -> bytes:
        return (len(leaf) + 3).to_bytes(3, "big") + len(leaf).to_bytes(3, "big") + leaf

    leaves = [bytes([n]) * 40 for n in range(5)]
    for leaf in leaves + leaves[::-1]:
        for asm in (dtls.CertificateAssembler(), dtls.CertificateAssembler()):
            assert asm.add_fragment(1, 0, bytes(first_fragment(leaf))) == old_fingerprint(leaf)
    # five; back down: the two still kept, then three again (forgotten past three)
    assert len(hashed) == 8
    assert dtls.CertificateAssembler().add_fragment(1, 0, first_fragment(leaves[0])[:-1]) is None
    assert len(dtls._LEAVES) <= 3
