"""The walk's STUN datagrams in C (`_stunparse.record`, `.datagram`) against the Python path.

`record` counts a datagram on its flow, parses it and appends its StunEvent in one call,
`datagram` does it for a wire datagram and for the STUN in a ChannelData message of a
known channel; TurnRelay._stun_py and _channel_data are the same in Python (the fallback
when the module is not built).
Each capture is analysed both ways, as shipped and with frames damaged where the STUN
headers and attributes are: flows, counters, events (repr: True is not 1) must be equal.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import analyzer, net, pcapio, stun, turnrelay
from harness.analysis.model import Analysis, Flow, StunEvent
from harness.analysis.pcapio import ReadStats
from harness.analysis.stun import MAGIC_BYTES
from tests.fuzzing import SLOW, damaged_frames, pcap_image
from tests.unit.test_analysis_synthetic import (
    PEER,
    C,
    S,
    binding,
    channel_data,
    stun_msg,
    udp,
    write_pcap,
    xor_addr,
)

pytestmark = pytest.mark.skipif(
    stun._stunparse is None,
    reason="harness/analysis/_stunparse.c is not built (pip install -e . builds it)",
)

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURES = sorted((DATA / "pcaps").glob("*.pcap*")) + sorted((DATA / "thirdparty").glob("*.pcap*"))
#: TURN allocations whose relayed flows exist before they are kept (written here)
TURN_SESSIONS = "turn_sessions()"
#: captures with STUN or TURN in them, for the damaged runs
STUN_CAPTURES = [
    "pcaps/aiortc-relayed.pcap",
    "pcaps/aiortc-datachannel-turn.pcap",
    "pcaps/aiortc-direct.pcap",
    "thirdparty/ndpi-teams-turn.pcap",
    "thirdparty/ndpi-stun_classic.pcap",
    "thirdparty/ndpi-stun.pcap",  # Send and Data indications
    TURN_SESSIONS,
]


@contextmanager
def python_walk() -> Iterator[None]:
    """The walk without `record` (as on a machine without the compiled module)."""
    kept = turnrelay._record, analyzer._datagram
    turnrelay._record = analyzer._datagram = None
    try:
        yield
    finally:
        turnrelay._record, analyzer._datagram = kept


def snapshot(a: Analysis) -> str:
    """Everything the STUN side of the walk writes, as text that tells types apart."""
    flows = [(f.to_dict(), f.turn_client, f.srtp, f.key, sorted(f.streams)) for f in a.flows]
    return repr((flows, a.stun, a.malformed, a.skipped, len(a.dtls), len(a.sip), a.packets))


def both(data: bytes) -> tuple[str, str]:
    compiled = snapshot(analyzer.analyze_bytes(data))
    with python_walk():
        python = snapshot(analyzer.analyze_bytes(data))
    return compiled, python


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_same_walk_on_real_captures(path: Path) -> None:
    compiled, python = both(path.read_bytes())
    assert compiled == python


def test_the_real_captures_take_the_compiled_path() -> None:
    """record() really handles the captures' STUN (else the comparisons compare nothing)."""
    calls: list[tuple[int, object]] = []
    record, datagram = turnrelay._record, analyzer._datagram
    assert record is not None and datagram is not None  # built: the module's skipif

    def counting(f: Callable[..., object], at: int) -> Callable[..., object]:
        def call(*args: object) -> object:
            r = f(*args)
            calls.append((args[at][0], r))  # type: ignore[index]  # args[at]: the datagram's bytes
            return r

        return call

    turnrelay._record, analyzer._datagram = counting(record, 1), counting(datagram, 3)
    try:
        a = analyzer.analyze_bytes((DATA / "pcaps/aiortc-relayed.pcap").read_bytes())
    finally:
        turnrelay._record, analyzer._datagram = record, datagram
    assert a.stun
    assert any(b < 4 and r is True for b, r in calls)  # Binding checks, done in C
    assert not any(type(r) is stun.StunMessage for b, r in calls)  # its TURN: all in C
    assert any(0x40 <= b <= 0x4F and r is True for b, r in calls)  # STUN in ChannelData
    assert any(0x40 <= b <= 0x4F and r is None for b, r in calls)  # left to _channel_data


@cache
def image(name: str) -> tuple[bytes, pcapio.FrameIndex]:
    data = turn_sessions() if name == TURN_SESSIONS else (DATA / name).read_bytes()
    return data, pcapio.index_frames(data, ReadStats()).numpy()


@SLOW
@given(st.sampled_from(STUN_CAPTURES), st.data())
def test_same_walk_on_damaged_captures(name: str, data: st.DataObject) -> None:
    """Bytes of the IP/UDP headers and the STUN header and first attributes damaged."""
    raw, idx = image(name)
    values = [0, 1, 3, 4, 0x12, 0x21, 0x42, 0x80, 0xA4, 0xFF]
    link = int(idx.links[0])
    damaged, lengths, _ = damaged_frames(data, raw, idx, 140, values, [link])
    offsets = idx.offsets.tolist()
    frames = [(link, damaged[o : o + n]) for o, n in zip(offsets, lengths.tolist(), strict=True)]
    compiled, python = both(pcap_image(frames))
    assert compiled == python


def flow() -> Flow:
    f = Flow("udp", ("10.0.0.1", 1), ("10.0.0.2", 2), None)
    f.key = b"k"
    return f


def test_record_hands_back_what_it_does_not_take() -> None:
    record = stun._stunparse.record
    events: list[StunEvent] = []
    binding = bytes.fromhex("000100002112a442") + bytes(12)
    for f, p in [
        (flow(), bytearray(binding)),
        (flow(), b""),
        (flow(), b"\x04" + binding[1:]),
        (object(), binding),
    ]:
        assert record(f, p, 1.0, 1, events, True) is NotImplemented
    assert events == []
    f = flow()
    assert record(f, binding[:19], 1.5, 7, events, True) is None  # counted, not parsed
    assert (f.packets, f.bytes, f.last_t, f.kinds) == (1, 19, 1.5, {})
    assert record(f, binding, 2.5, 8, events, False) is True  # a Binding: all done
    assert (f.packets, f.bytes, f.kinds) == (1, 19, {"stun": 1})
    parsed = stun.parse_py(binding)
    assert parsed is not None
    want = StunEvent(8, 2.5, f.src, f.dst, f.label, False, parsed, b"")
    assert repr(events) == repr([want])
    allocate = bytes.fromhex("000300002112a442") + bytes(12)
    relayed = flow()
    relayed.via = "udp 1.2.3.4:5 > 6.7.8.9:10"
    assert record(relayed, allocate, 3.0, 9, events, True) is True  # relayed: no TURN
    msg = record(f, allocate, 3.0, 9, events, True)
    assert type(msg) is stun.StunMessage and msg.method == "Allocate"
    assert events[-1].relayed is False and events[-2].relayed is True
    assert f.kinds == {"stun": 2} and f.packets == 2
    refresh = bytes.fromhex("000400002112a442") + bytes(12)
    assert record(f, refresh, 3.5, 10, events, True) is True  # nothing for TURN to do
    assert f.kinds == {"stun": 3} and len(events) == 4
    with pytest.raises(TypeError):
        record(f, binding, 1.0, 1, events)


def test_datagram_takes_stun_and_known_channels_only() -> None:
    """SIP (even in ChannelData's range), short or overlong ChannelData, other first bytes:
    NotImplemented, nothing counted; an unknown channel: counted, None (_channel_data's)."""
    datagram = stun._stunparse.datagram
    events: list[StunEvent] = []

    class Walker:
        channel_flows: dict[bytes, tuple[int, Flow]] = {}
        turn_state = 0
        channels: dict[tuple[bytes, int], tuple[str, int]] = {}
        relayed_flows: dict[tuple[bytes, tuple[str, int]], tuple[object, Flow]] = {}
        relayed_addr: dict[bytes, tuple[str, int]] = {}
        flows: dict[bytes, Flow] = {}

    w, f = Walker(), flow()
    for p in [b"INVITE sip:x SIP/2.0\r\n", b"ACK ", b"\x40\x00\x00\x05abcd", b"\x40\x00", b"\x50"]:
        assert datagram(w, f, b"k", p, 1.0, 1, events) is NotImplemented
    assert datagram(w, object(), b"k", b"\x00", 1.0, 1, events) is NotImplemented
    assert (f.packets, f.kinds, events) == (0, {}, [])
    binding = bytes.fromhex("000100002112a442") + bytes(12)
    channel = b"\x40\x01" + len(binding).to_bytes(2, "big") + binding
    assert datagram(w, f, b"k", channel, 1.0, 1, events) is None
    assert (f.packets, f.bytes, f.kinds, events) == (1, 24, {"turn-channel": 1}, [])
    inner = flow()
    inner.via = f.label
    w.channel_flows[b"k\x40\x01"] = (1, inner)
    assert datagram(w, f, b"k", channel, 2.0, 2, events) is None  # kept for another state
    w.turn_state = 1
    assert datagram(w, f, b"k", channel, 3.0, 3, events) is True
    assert (inner.packets, inner.bytes, inner.kinds) == (1, 20, {"stun": 1})
    assert f.kinds == {"turn-channel": 3} and len(events) == 1 and events[0].relayed is True


@pytest.mark.parametrize(
    "key",
    [
        bytes([10, 0, 0, 1, 192, 168, 1, 200, 0x13, 0xC4, 0, 53]),
        bytes(4) + b"\xff" * 4 + b"\x00\x00\xff\xff",
        bytes(range(1, 9)) + b"\x01\x02\x03\x04",
        bytes(range(32)) + b"\x01\x02\x03\x04",  # IPv6
    ],
)
def test_endpoints_of_ipv4_keys_read_as_ipaddress_does(key: bytes) -> None:
    """net.endpoints writes IPv4 addresses with inet_ntoa: the text ipaddress gives."""
    n = (len(key) - 4) // 2
    slow = (
        str(ipaddress.ip_address(key[:n])),
        key[-4] << 8 | key[-3],
        str(ipaddress.ip_address(key[n : 2 * n])),
        key[-2] << 8 | key[-1],
    )
    assert repr(net.endpoints(key)) == repr(slow)


def test_endpoints_names_stay_right_when_their_cache_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The IPv4 names net.endpoints keeps are cleared when full, and read again."""
    monkeypatch.setattr(net, "_IPV4_NAMES", 8)
    monkeypatch.setattr(net, "_ipv4_names", {})
    for i in range(40):
        a, b = bytes([10, 0, i % 5, i]), bytes([192, 168, i, 255 - i])
        want = (str(ipaddress.ip_address(a)), i, str(ipaddress.ip_address(b)), 7)
        assert net.endpoints(a + b + bytes([0, i, 0, 7])) == want
        assert len(net._ipv4_names) <= 8 + 1  # cleared at 8, then the two of a key


def test_send_and_data_indications_take_the_compiled_path() -> None:
    """A Send/Data indication of a kept relayed flow with STUN inside: all in C (True)."""
    calls: list[bool] = []
    datagram = analyzer._datagram
    assert datagram is not None  # built: the module's skipif

    def call(*args: object) -> object:
        r = datagram(*args)
        p = args[3]
        if p[:2] in (b"\x00\x16", b"\x00\x17"):  # type: ignore[index]  # args[3]: the datagram
            calls.append(r is True)
        return r

    analyzer._datagram = call
    try:
        analyzer.analyze_bytes((DATA / "thirdparty/ndpi-stun.pcap").read_bytes())
    finally:
        analyzer._datagram = datagram
    assert True in calls and False in calls  # taken, and left to Python (first of a flow)


# -- relayed flows found in C (TurnRelay._relayed_flow, _channel_flow) ---------------------

PEER6 = bytes.fromhex("20010db8000000000000000000000011")


def xor_addr6(ip: bytes, port: int, txid: bytes) -> bytes:
    mask = MAGIC_BYTES + txid
    return struct.pack("!BBH", 0, 2, port ^ 0x2112) + bytes(
        a ^ b for a, b in zip(ip, mask, strict=True)
    )


def turn_session(port: int, peer: bytes, tx: bytes) -> list[bytes]:
    """An allocation from client port `port` to the relayed address S:50000 (each session
    the same), a channel and indications to `peer` (4 bytes IPv4, else IPv6) and back."""
    up = lambda p: udp(C, port, S, 3478, p)  # noqa: E731
    down = lambda p: udp(S, 3478, C, port, p)  # noqa: E731
    to = xor_addr(peer, 6000) if len(peer) == 4 else xor_addr6(peer, 6000, tx)
    dtls = b"\x17\xfe\xfd" + bytes(20)
    return [
        up(stun_msg(0x0003, tx, [(0x19, b"\x11\x00\x00\x00")])),
        down(stun_msg(0x0103, tx, [(0x16, xor_addr(S, 50000))])),
        up(stun_msg(0x0016, tx, [(0x12, to), (0x13, binding(0x000, tx))])),
        down(stun_msg(0x0017, tx, [(0x12, to), (0x13, binding(0x100, tx))])),
        up(stun_msg(0x0009, tx, [(0x0C, struct.pack("!HH", 0x4000, 0)), (0x12, to)])),
        down(channel_data(0x4000, binding(0x100, tx))),
        up(channel_data(0x4000, binding(0x000, tx))),
        down(channel_data(0x4000, dtls)),
        up(channel_data(0x4001, binding(0x000, tx))),  # unbound
        up(stun_msg(0x0016, tx, [(0x12, to), (0x13, dtls)])),
    ]


def turn_sessions() -> bytes:
    """Allocations one after another (the relayed flows of the later ones exist already:
    what C finds), to an IPv4 peer and to an IPv6 one (make_key's Python path)."""
    frames = [
        f
        for i, peer in enumerate([PEER, PEER, PEER6, PEER6, PEER])
        for f in turn_session(5000 + i, peer, bytes([65 + i]) * 12)
    ]
    return write_pcap(1, [(i * 0.01, f) for i, f in enumerate(frames)])


def walked(data: bytes) -> tuple[str, tuple[object, object, object, object, int]]:
    """The walk's output and the TURN state it leaves (kept flows by label, turn_state)."""
    w = analyzer.Analyzer(Analysis(Path("x"), ReadStats()))
    a = w.run(data)
    relayed = {k: (v[0], v[1].label) for k, v in w.relayed_flows.items()}
    channel = {k: (v[0], v[1].label) for k, v in w.channel_flows.items()}
    return snapshot(a), (relayed, channel, w.relayed_addr, w.channels, w.turn_state)


def test_relayed_flows_found_in_c_are_the_ones_python_finds() -> None:
    """Send/Data indications and ChannelData whose relayed flow is not kept yet: C finds
    and keeps it when the flow exists (IPv4 ends), with the state Python leaves; what they
    carry that is no STUN goes to _udp from C, and Allocate and ChannelBind change the
    TURN state there."""
    found: list[int] = []
    taken: list[bytes] = []
    datagram = analyzer._datagram
    assert datagram is not None  # built: the module's skipif

    def call(w: analyzer.Analyzer, *args: object) -> object:
        kept = len(w.relayed_flows), len(w.channel_flows)
        r = datagram(w, *args)
        p: bytes = args[2]  # type: ignore[assignment]  # the datagram
        if r is True and kept != (len(w.relayed_flows), len(w.channel_flows)):
            found.append(p[0])
        if r is True:
            taken.append(p)
        return r

    data = turn_sessions()
    analyzer._datagram = call
    try:
        compiled = walked(data)
    finally:
        analyzer._datagram = datagram
    with python_walk():
        python = walked(data)
    assert compiled == python
    assert 0 in found and 0x40 in found  # a Send indication's and a ChannelData's
    dtls = [p for p in taken if b"\x17\xfe\xfd" in p]  # relayed: to _udp from C
    assert {p[:2] for p in dtls} == {b"\x40\x00", b"\x00\x16"}
    assert {p[:2] for p in taken} >= {b"\x00\x03", b"\x01\x03", b"\x00\x09"}  # TURN state
    assert python[1][4] > 0 and "turn-channel-unbound" in python[0]


PEER_ADDRESS = ("198.18.0.11", 6000)


@pytest.mark.parametrize(
    "peer",
    [
        PEER_ADDRESS,  # found in C
        ("198.18.0.99", 6000),  # no such flow yet: made in Python
        ("2001:db8::11", 6000),
        ("198.18.0.11\x00", 6000),
        ("198.18.0.011", 6000),
        ("198.18.0.11 ", 6000),
        ("\udcff", 6000),
        ("198.18.0.11", 70000),
        ("198.18.0.11", -1),
        ("198.18.0.11", True),
        ["198.18.0.11", 6000],
        ("198.18.0.11", 6000, 1),
    ],
    ids=repr,
)
def test_channel_data_to_odd_peers_is_what_python_makes_of_it(
    peer: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bound channel whose peer C does not read as two IPv4 ends is left to Python."""
    answers: list[object] = []

    def datagram(*args: object) -> object:
        answers.append(stun._stunparse.datagram(*args))
        return answers[-1]

    monkeypatch.setattr(analyzer, "_datagram", datagram)
    key = bytes(C + S) + struct.pack("!HH", 5000, 3478)
    p = channel_data(0x4000, binding(0x000, b"q" * 12))[:24]
    ends = []
    for compiled in (True, False):
        w = analyzer.Analyzer(Analysis(Path("x"), ReadStats()))
        w.relayed_addr[key] = ("198.18.0.12", 50000)
        w.channels[(key, 0x4000)] = peer  # type: ignore[assignment]  # odd on purpose
        for port in (6000, 70000 % 65536, 65535):  # and the flows of ports cut to 16 bits
            raw = net.make_key("198.18.0.12", 50000, "198.18.0.11", port)
            w._new_flow(raw + turnrelay.RELAYED, raw, "udp", "via", 0.0, 1)
        flow = w._new_flow(key, key, "udp", None, 0.0, 1)
        w.udp_flows[key] = flow
        seg = (17, key, p)
        raised = None  # the walk counts it (crash:<name>): the same either way
        with nullcontext() if compiled else python_walk():
            try:
                w._segment(2, 1.0, seg)  # type: ignore[arg-type]  # a Segment's first three
            except Exception as exc:
                raised = type(exc).__name__
        flows = [(f.to_dict(), f.key) for f in w.flows.values()]
        channel = {k: (v[0], v[1].key) for k, v in w.channel_flows.items()}
        ends.append(repr((flows, w.a.stun, w.a.malformed, channel, w.turn_state, raised)))
    assert ends[0] == ends[1]
    assert (answers == [True]) == (peer == PEER_ADDRESS)  # all in C: that peer's flow exists


def test_setup_walk_takes_only_an_event_whose_fields_are_slots() -> None:
    # record() fills StunEvent's slots by their offsets: a class with the same fields in a
    # __dict__, or with other fields, is refused, and the walk keeps the class it had
    from dataclasses import dataclass, fields

    setup = stun._stunparse.setup_walk
    names = [f.name for f in fields(StunEvent)]
    Plain: type = dataclass(type("Plain", (), {"__annotations__": dict.fromkeys(names, object)}))
    other = dict.fromkeys([*names[:-1], "payload"], object)
    Other: type = dataclass(slots=True)(type("Other", (), {"__annotations__": other}))
    for cls in (Plain, Other):
        with pytest.raises(TypeError, match="slots record"):
            setup(Flow, cls, analyzer.sip.STARTS, turnrelay.RELAYED)
    test_same_walk_on_real_captures(CAPTURES[0])  # still StunEvent's offsets
