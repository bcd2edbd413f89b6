"""The data channel parsers never raise on bad input: DTLS decryption, SCTP, DCEP.

Settings from tests/fuzzing.py (HARNESS_FUZZ_SCALE for a long hunt, fixed
examples in CI). Besides "never a traceback", the SCTP reassembly keeps its bounds
and rebuilds any message from its fragments in any order, with repeats.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import dcep, dtls13, sctp, tlsdecrypt
from harness.analysis.analyzer import analyze_bytes
from harness.analysis.dtlsdecrypt import DtlsAssociation, split_records
from tests.fuzzing import FAST, SLOW

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
KEYS = PCAPS / "aiortc-datachannel.keys"
KEYLOG = tlsdecrypt.read_keylog(KEYS)


def chunk(ctype: int, flags: int, value: bytes) -> bytes:
    n = 4 + len(value)
    return bytes([ctype, flags]) + n.to_bytes(2, "big") + value + bytes(-n % 4)


def data_chunk(tsn: int, stream: int, flags: int, payload: bytes, ppid: int = 51) -> bytes:
    head = tsn.to_bytes(4, "big") + stream.to_bytes(2, "big") + bytes(2) + ppid.to_bytes(4, "big")
    return chunk(0, flags, head + payload)


@FAST
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(
            st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)),
            max_size=6,
        ).map(lambda cs: bytes(12) + b"".join(chunk(*c) for c in cs)),
    )
)
def test_sctp_never_raises(p: bytes) -> None:
    pkt = sctp.parse(p)
    reasm = sctp.Reassembler()
    for c in pkt.chunks if pkt else []:
        assert c.name
        d = sctp.data(c)
        if d is not None:
            reasm.add(d)
    assert len(reasm.held) <= sctp.MAX_FRAGMENTS


@FAST
@given(
    st.binary(min_size=1, max_size=3000),
    st.integers(1, 7),
    st.integers(0, 0xFFFFFFFF),
    st.randoms(use_true_random=False),
)
def test_fragments_in_any_order(message: bytes, parts: int, tsn0: int, rnd: random.Random) -> None:
    """A message cut in `parts` DATA chunks, shuffled, some sent twice: rebuilt once, whole."""
    size = -(-len(message) // parts)
    pieces = [message[i : i + size] for i in range(0, len(message), size)]
    chunks = []
    for i, piece in enumerate(pieces):
        flags = (2 if i == 0 else 0) | (1 if i == len(pieces) - 1 else 0)
        raw = data_chunk((tsn0 + i) & 0xFFFFFFFF, 3, flags, piece)
        chunks.append(sctp.Chunk(0, flags, raw[4 : 4 + 12 + len(piece)]))
    order = chunks + chunks[: len(chunks) // 2]  # repeats, as retransmissions
    rnd.shuffle(order)
    reasm = sctp.Reassembler()
    done = [r for c in order if (d := sctp.data(c)) and (r := reasm.add(d))]
    assert [m for _, m in done] == [message]
    assert not reasm.held and reasm.held_bytes == 0


def idata_chunk(
    tsn: int, stream: int, mid: int, fsn: int, flags: int, payload: bytes
) -> sctp.Chunk:
    word = 51 if flags & 2 else fsn  # PPID in the first fragment, FSN in the others
    head = tsn.to_bytes(4, "big") + stream.to_bytes(2, "big") + bytes(2)
    return sctp.Chunk(64, flags, head + mid.to_bytes(4, "big") + word.to_bytes(4, "big") + payload)


@FAST
@given(
    st.lists(st.binary(min_size=1, max_size=500), min_size=1, max_size=3),
    st.integers(1, 5),
    st.randoms(use_true_random=False),
)
def test_idata_interleaved(messages: list[bytes], parts: int, rnd: random.Random) -> None:
    """I-DATA (RFC 8260): fragments of messages on several streams, interleaved, shuffled,
    some twice: each message rebuilt once, whole."""
    chunks, tsn = [], 7
    for n, message in enumerate(messages):
        size = -(-len(message) // parts)
        pieces = [message[i : i + size] for i in range(0, len(message), size)]
        for fsn, piece in enumerate(pieces):
            flags = (2 if fsn == 0 else 0) | (1 if fsn == len(pieces) - 1 else 0)
            chunks.append(idata_chunk(tsn, n, 100 + n, fsn, flags, piece))
            tsn += 1
    order = chunks + chunks[: len(chunks) // 2]
    rnd.shuffle(order)
    reasm = sctp.Reassembler()
    done = [r for c in order if (d := sctp.data(c)) and (r := reasm.add(d))]
    assert sorted(m for _, m in done) == sorted(messages)
    assert all(
        first.ppid == 51 and first.mid is not None and first.stream == first.mid - 100
        for first, _ in done
    )
    assert not reasm.messages and reasm.held_bytes == 0


def test_reassembly_is_bounded() -> None:
    """Beginnings that never end: the oldest fragments go, memory stays bounded."""
    reasm = sctp.Reassembler()
    for tsn in range(0, 4 * sctp.MAX_FRAGMENTS, 2):
        reasm.add(sctp.Data(tsn, 0, 0, 51, False, True, False, bytes(100)))
    assert len(reasm.held) == sctp.MAX_FRAGMENTS and reasm.dropped == sctp.MAX_FRAGMENTS
    assert len(reasm.seen) <= sctp.MAX_SEEN
    ireasm = sctp.Reassembler()  # I-DATA: first fragments of messages that never end
    for mid in range(2 * sctp.MAX_FRAGMENTS):
        ireasm.add(sctp.Data(mid, 0, 0, 51, False, True, False, bytes(100), mid, 0))
    assert len(ireasm.messages) == sctp.MAX_FRAGMENTS
    assert ireasm.held_bytes == 100 * sctp.MAX_FRAGMENTS


@FAST
@given(
    st.one_of(
        st.binary(max_size=80),
        st.tuples(st.binary(max_size=20), st.binary(max_size=20), st.integers(0, 40)).map(
            lambda t: (
                bytes([3, 0, 0, 0])
                + bytes(4)
                + t[2].to_bytes(2, "big")
                + len(t[1]).to_bytes(2, "big")
                + t[0]
                + t[1]
            )
        ),  # fmt: skip
    )
)
def test_dcep_never_raises(p: bytes) -> None:
    msg = dcep.parse(p)
    assert msg is None or msg == "ack" or isinstance(msg, dcep.Open)
    assert isinstance(dcep.excerpt(51, p), str) and isinstance(dcep.excerpt(53, p), str)


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from([20, 21, 22, 23]), st.integers(0, 2), st.binary(max_size=80)),
        max_size=6,
    )
)
def test_dtls_records_never_raise(records: list[tuple[int, int, bytes]]) -> None:
    """Random records (Hello-shaped when the fuzzer gets there) with real keys loaded."""
    assoc = DtlsAssociation(KEYLOG)
    p = b"".join(
        bytes([t, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + bytes(6)
        + len(body).to_bytes(2, "big") + body
        for t, epoch, body in records
    )  # fmt: skip
    for key in (b"client", b"server"):
        assert all(isinstance(x, bytes) for x in assoc.plaintexts(key, p))
        split_records(p[: len(p) // 2])
    assoc.adopt([assoc], b"client", b"server", p)


@SLOW
@given(st.data(), st.sampled_from(["aiortc-datachannel", "firefox-datachannel-dtls13"]))
def test_damaged_datachannel_capture_with_keys(data: st.DataObject, name: str) -> None:
    """DTLS 1.2 (aiortc) and DTLS 1.3 with I-DATA (Firefox), bytes flipped anywhere."""
    buf = bytearray((PCAPS / f"{name}.pcap").read_bytes())
    for _ in range(data.draw(st.integers(1, 30))):
        buf[data.draw(st.integers(24, len(buf) - 1))] = data.draw(st.integers(0, 255))
    a = analyze_bytes(bytes(buf), keylog=PCAPS / f"{name}.keys")
    assert not [k for k in a.malformed if k.startswith("crash:")], a.malformed


R13 = bytes(range(32))
KEYLOG13 = {
    (f"{side}_{which}", R13): bytes([n]) * 32
    for n, (side, which) in enumerate(
        (s, w) for s in ("CLIENT", "SERVER") for w in dtls13.SECRETS.values()
    )
}


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0x20, 0x3F), st.binary(max_size=60)),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([0x1301, 0x1302, 0x1303, 0xC02B]),
)
def test_dtls13_records_never_raise(records: list[tuple[int, bytes]], suite: int) -> None:
    """Unified-header records (any flags, cut anywhere) against keys of every suite."""
    assoc = DtlsAssociation(KEYLOG13, client=b"client", client_random=R13, suite=suite)
    assoc.v13 = dtls13.Dtls13(KEYLOG13, R13, suite)
    p = b"".join(bytes([b]) + body for b, body in records)
    for key in (b"client", b"server"):
        assert all(isinstance(x, bytes) for x in assoc.plaintexts(key, p))
