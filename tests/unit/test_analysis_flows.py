"""A walk's Flow made in C (`_flows.new_flow`) against `Analyzer._new_flow_py`.

Every slot of the flow, its label and printed ends included (the C side makes them with
the flow, the property when first read), compared with repr (types told apart), for
IPv4 and IPv6 keys, TURN-relayed flows (`via`, any text) and odd values; the captures'
walks are compared whole in test_analysis_pure_python.py.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import analyzer
from harness.analysis.analyzer import Analyzer
from harness.analysis.model import Analysis, Flow
from harness.analysis.net import endpoints
from harness.analysis.pcapio import ReadStats

pytestmark = pytest.mark.skipif(
    analyzer._flows is None, reason="harness/analysis/_flows.c is not built (pip install -e .)"
)


def slots(flow: Flow) -> str:
    assert flow.label  # the Python flow's label and ends, made when first read
    return repr([(name, getattr(flow, name)) for name in Flow.__slots__])


def both(raw: bytes, proto: str, via: str | None, t: float, no: int) -> tuple[str, str]:
    key = raw + b"T" if via else raw
    made, py = (Analyzer(Analysis(Path(name), ReadStats())) for name in "cp")
    flow = analyzer._flows.new_flow(made.flows, key, raw, proto, via, t, no)
    assert made.flows == {key: flow} and type(flow.kinds) is Counter
    return slots(flow), slots(py._new_flow_py(key, raw, proto, via, t, no))


ports = st.integers(0, 65535).map(lambda p: struct.pack("!H", p))
ipv4 = st.tuples(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4))
ipv6 = st.tuples(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16))
vias = st.none() | st.just("") | st.text(max_size=40) | st.text(min_size=500, max_size=600)


@given(
    st.one_of(ipv4, ipv6),
    ports,
    ports,
    st.sampled_from(["udp", "tcp"]),
    vias,
    st.floats(allow_nan=False),
    st.integers(0, 2**40),
)
def test_the_flow_is_the_one_python_makes(
    addrs: tuple[bytes, bytes], sp: bytes, dp: bytes, proto: str, via: str | None, t: float, no: int
) -> None:
    made, py = both(addrs[0] + addrs[1] + sp + dp, proto, via, t, no)
    assert made == py


def test_ipv4_names_stay_right_when_hosts_share_a_place() -> None:
    # more hosts than the name table's places: a taken place is made anew, never misread
    for i in range(2000):
        raw = struct.pack("!IIHH", 0xC6120000 + i * 7919, 0x0A000000 + i, 1000 + i, 2000)
        made, py = both(raw, "udp", None, 1.5, i)
        assert made == py
        assert made.count("'") and endpoints(raw)[0] in made


def test_odd_keys_fail_as_python_does() -> None:
    with pytest.raises(ValueError):
        both(bytes(20), "udp", None, 0.0, 1)  # 8-byte addresses: neither IPv4 nor IPv6


def test_setup_refuses_a_flow_whose_slots_differ() -> None:
    class Extra(Flow):
        __slots__ = ("more",)

    class Short:
        __slots__ = Flow.__slots__[:-1]

    for cls in (Short, Extra):
        with pytest.raises(TypeError, match="update FIELDS"):
            analyzer._flows.setup(cls, Counter, endpoints)
    test_ipv4_names_stay_right_when_hosts_share_a_place()  # setup kept what it had
