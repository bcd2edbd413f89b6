"""Analyzer.run's per-frame loop in C (`_walkloop.walk`) against the Python loop.

The C loop hands a STUN datagram of a known UDP flow to `_stunparse.datagram` itself and
calls the same Python methods as the Python loop for everything else (the fallback when
the module is not built). Each capture is analysed both ways, as shipped and damaged:
the whole summary, the events and the counters (crashes included) must be equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import analyzer, jsonout, pcapio
from harness.analysis.analyzer import Analyzer, analyze_bytes
from harness.analysis.model import Analysis
from harness.analysis.pcapio import ReadStats
from harness.analysis.report import summary
from harness.analysis.session import build
from tests.fuzzing import SLOW, damaged_frames, pcap_image, sip_call_pcap
from tests.unit.test_analysis_stun_walk import turn_sessions

pytestmark = pytest.mark.skipif(
    analyzer._walkloop is None or analyzer._datagram is None,
    reason="harness/analysis/_walkloop.c or _stunparse.c is not built (pip install -e .)",
)

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURES = sorted((DATA / "pcaps").glob("*.pcap*")) + sorted((DATA / "thirdparty").glob("*.pcap*"))
#: STUN/TURN, SIP over TCP and fragmented UDP, IPv6, Linux cooked, VLAN HTTP
DAMAGED = [
    "pcaps/aiortc-relayed.pcap",
    "pcaps/aiortc-datachannel-turn.pcap",
    "pcaps/sipp-tcp.pcap",
    "pcaps/sipp-udp-fragmented.pcap",
    "thirdparty/ndpi-teams-turn.pcap",
    "thirdparty/ndpi-stun.pcap",
    "thirdparty/zeek-ipv6.pcap",
    "thirdparty/zeek-http-vlan-0.pcap",
]


@contextmanager
def python_loop() -> Iterator[None]:
    """run() without the compiled loop (as on a machine without it)."""
    kept = analyzer._walkloop
    analyzer._walkloop = None
    try:
        yield
    finally:
        analyzer._walkloop = kept


def snapshot(a: Analysis) -> str:
    """The summary as printed, and what the walk recorded, as text that tells types apart."""
    flows = [(f.to_dict(), f.turn_client, f.srtp, f.key, sorted(f.streams)) for f in a.flows]
    walked = repr((flows, a.stun, a.malformed, a.skipped, len(a.dtls), len(a.sip), a.packets))
    return jsonout.dumps(summary(build(a))) + walked


def both(data: bytes) -> tuple[str, str]:
    compiled = snapshot(analyze_bytes(data))
    with python_loop():
        python = snapshot(analyze_bytes(data))
    return compiled, python


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_same_walk_on_real_captures(path: Path) -> None:
    compiled, python = both(path.read_bytes())
    assert compiled == python


@cache
def image(name: str) -> tuple[bytes, pcapio.FrameIndex]:
    data = (DATA / name).read_bytes()
    return data, pcapio.index_frames(data, ReadStats()).numpy()


@SLOW
@given(st.sampled_from(DAMAGED), st.data())
def test_same_walk_on_damaged_captures(name: str, data: st.DataObject) -> None:
    """Bytes of the link, IP, UDP/TCP headers and the payloads' first bytes damaged, some
    frames cut short: frames the bulk decoder leaves (None), crashes, new and known flows."""
    raw, idx = image(name)
    values = [0, 1, 3, 4, 6, 17, 0x12, 0x21, 0x40, 0x42, 0x80, 0xA4, 0xFF]
    link = int(idx.links[0])
    damaged, lengths, _ = damaged_frames(data, raw, idx, 140, values, [link])
    offsets = idx.offsets.tolist()
    frames = [(link, damaged[o : o + n]) for o, n in zip(offsets, lengths.tolist(), strict=True)]
    compiled, python = both(pcap_image(frames))
    assert compiled == python


def test_the_compiled_loop_walks_the_captures() -> None:
    """walk() really does the loop (else the comparisons compare the Python loop twice)."""
    answers = []
    walk = analyzer._walkloop.walk

    class Spy:
        @staticmethod
        def walk(*args: object) -> object:
            answers.append(walk(*args))
            return answers[-1]

    analyzer._walkloop = Spy
    try:
        a = analyze_bytes((DATA / "pcaps/aiortc-relayed.pcap").read_bytes())
    finally:
        analyzer._walkloop = walk.__self__
    assert answers == [None] and a.stun


@pytest.mark.parametrize("method", ["_tcp", "_udp", "_recorded", "_frame"])
def test_a_frame_that_raises_is_counted_as_in_python(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any Exception out of a frame is a crash of that frame, counted by its type's name,
    and the walk goes on; the methods are called as often, with the same arguments."""
    real = getattr(Analyzer, method)

    def run(calls: list[tuple[object, ...]]) -> str:
        def flaky(self: Analyzer, *args: object) -> object:
            calls.append(tuple(x for x in args if type(x) in (int, float, bytes)))
            if len(calls) % 3 == 0:  # the 3rd, 9th... a LookupError, 6th, 12th... not
                raise (LookupError if len(calls) % 2 else ZeroDivisionError)("flaky")
            return real(self, *args)

        monkeypatch.setattr(Analyzer, method, flaky)
        # and mirrored traffic in GRE (ERSPAN): frames the bulk decode leaves to _frame
        files = ["pcaps/aiortc-relayed.pcap", "pcaps/sipp-tcp.pcap", "pcaps/sipp-udp-fragmented.pcap",
                 "thirdparty/tcpdump-erspan-type-i-4.pcap"]  # fmt: skip
        images = [(DATA / f).read_bytes() for f in files] + [turn_sessions()]  # _recorded's
        out = "".join(snapshot(analyze_bytes(image)) for image in images)
        monkeypatch.setattr(Analyzer, method, real)
        return out

    compiled_calls: list[tuple[object, ...]] = []
    python_calls: list[tuple[object, ...]] = []
    compiled = run(compiled_calls)
    with python_loop():
        python = run(python_calls)
    assert compiled == python and compiled_calls == python_calls
    assert "crash:LookupError" in compiled
    assert "crash:ZeroDivisionError" in compiled or len(compiled_calls) < 6


def test_what_is_no_exception_is_not_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt, SystemExit...: out of the walk, as out of the Python loop."""

    def interrupted(self: Analyzer, *args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Analyzer, "_tcp", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyze_bytes((DATA / "pcaps/sipp-tcp.pcap").read_bytes())


def test_an_sdp_crash_is_counted_by_the_compiled_loop() -> None:
    body = b"v=0\r\nm=audio \xc2\xb2 RTP/AVP 96\r\na=rtpmap:96 opus/48000\r\n"
    compiled, python = both(sip_call_pcap(body))
    assert compiled == python and "crash:ValueError" in compiled


def test_walk_declines_what_it_does_not_read() -> None:
    """Other buffers, lengths that differ, not a list: NotImplemented, nothing done."""
    walk = analyzer._walkloop.walk
    a = Analysis(Path("x"), ReadStats())
    w = Analyzer(a)

    def fails(*args: object) -> None:
        raise AssertionError("called")

    ints, floats = memoryview(bytes(16)).cast("q"), memoryview(bytes(16)).cast("d")
    for todo, times, segs in [
        (memoryview(bytes(16)).cast("i"), floats, [None, None]),
        (ints, memoryview(bytes(8)).cast("f"), [None, None]),
        (ints, floats, [None]),
        (ints, memoryview(bytes(8)).cast("d"), [None, None]),
        (ints, floats, (None, None)),
        ([0, 1], floats, [None, None]),
    ]:
        args = (w, todo, times, segs, fails, fails, fails, fails, w.udp_flows, a.stun, a)
        assert walk(*args) is NotImplemented
    assert not a.malformed
    with pytest.raises(TypeError):
        walk(w, ints, floats, [None, None])
