"""`harness analyze --json` text: the C encoder (`_jsonindent.dumps`) against json.dumps(indent=).

The compiled path must print the very bytes the pure-Python encoder does, for any value
the summary can hold: nested empties, escapes and non-ASCII text, brackets and colons
inside strings, floats, non-string dict keys, int and str subclasses, non-JSON objects
turned into text by `default=str`. What it does not take on (None) goes to json.dumps,
so `jsonout.dumps` answers, or raises, as json.dumps does.
"""

from __future__ import annotations

import enum
import json
import math
import random
import struct
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.analysis import jsonout
from harness.analysis.report import summarize_file

pytestmark = pytest.mark.skipif(
    jsonout._jsonindent is None,
    reason="harness/analysis/_jsonindent.c is not built (pip install -e . builds it)",
)

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
TEXT = st.text(alphabet=st.characters() | st.sampled_from('{}[],:"\\\x7f'))
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT | st.just(Path("/x"))
KEYS = TEXT | st.integers() | st.floats() | st.booleans() | st.none()
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(KEYS, inner, max_size=5)
    ),
    max_leaves=40,
)


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    def __str__(self) -> str:
        return "not this"


class Big(int):
    def __repr__(self) -> str:
        return "not this"


class Odd:
    def __str__(self) -> str:
        return 'odd \u00e9 "q" \n'


def reference(value: object, width: int = 1) -> str:
    return json.dumps(value, indent=width, default=str)


def compiled(value: object, width: int = 1) -> str:
    text = jsonout._jsonindent.dumps(value, width)
    assert text is not None, "the summary's values must take the C path"
    return text


@settings(max_examples=500, deadline=None, derandomize=True)
@given(VALUES, st.integers(0, 4))
def test_compiled_matches_json_dumps(value: object, width: int) -> None:
    assert jsonout.dumps(value, width) == reference(value, width)


NASTY = {
    "controls": "".join(map(chr, range(0x80))) + "\x7f\u0080\u00ff",
    "unicode": "caf\u00e9 \u20ac \ufeff \uffff \U0001f600 \U0010ffff",
    "surrogates": "\ud800 \udfff \udbff\udc00 x\ud83d",
    "escapes": '"\\/\b\f\n\r\t',
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**63, -(2**64) - 1, 10**300, True, False],
    "floats": [0.0, -0.0, 1e300, -1e-300, 5e-324, 1e16, 1e-5, 0.1, float("nan")],
    "infinities": [float("inf"), float("-inf")],
    "empties": [[], {}, (), [[]], [{}], {"a": []}, {"b": {}}, ((),)],
    "tuple": (1, "two", (3.0, None)),
    "default": [Path("/tmp/x"), Odd(), b"\x00\xff", {1, 2}, 3j, object],
    3: "int key",
    -5: "negative int key",
    2.5: "float key",
    float("nan"): "nan key",
    float("inf"): "inf key",
    None: "null key",
    10**40: "big int key",
    "bool keys": {True: "t", False: "f"},  # True == 1: in a dict of their own
    "enum key": {Color.RED: Color.RED},
    "enum": [Color.RED, {"c": Color.RED}],
    "subclasses": [Name("n\u00e9"), Big(7), {Name("k"): Big(-3)}],
    "ordered": OrderedDict([("z", 1), ("a", 2)]),
    "defaultdict": defaultdict(list, {"x": [1]}),
    "": None,
}


@pytest.mark.parametrize("width", [0, 1, 2, 4])
def test_nasty_values(width: int) -> None:
    assert compiled(NASTY, width) == reference(NASTY, width)
    for key, value in NASTY.items():
        assert compiled(value, width) == reference(value, width), key
        assert compiled({key: value}, width) == reference({key: value}, width), key


def test_escape_at_every_position() -> None:
    """ASCII text is scanned eight characters at a time: each escape, anywhere in it."""
    for special in '"\\\x00\n\x1f\x7f~ \u00e9\U0001f600':
        for n in range(20):
            for i in range(n):
                text = "abcdefghijklmnopqrstuvwxyz"[:n]
                text = text[:i] + special + text[i + 1 :]
                assert compiled([text, {text: text}]) == reference([text, {text: text}])


def random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(12 if depth < 6 else 8)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**70), 2**70) if rng.random() < 0.1 else rng.randint(-999, 99999)
    if kind == 2:
        return rng.choice([rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-30, 30)])
    if kind == 3:
        return rng.choice([float("nan"), float("inf"), -0.0, 0.0])
    if kind in (4, 5, 6):
        alphabet = rng.choice(["abc xyz", '\\"\n\t\x00\x1f\x7f', "\u00e9\u20ac\U0001f600\ud800"])
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind == 7:
        return rng.choice([Path("/p"), Color.RED, Name("s"), b"b"])
    if kind in (8, 9):
        items = [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
        return tuple(items) if rng.random() < 0.3 else items
    keys: list[object] = [
        rng.choice(["k", "\u00e9", '"', ""]) + str(i) for i in range(rng.randrange(5))
    ]
    keys += rng.sample([1, 2.5, True, None, -7], rng.randrange(3))
    return {k: random_value(rng, depth + 1) for k in keys}


def test_random_structures() -> None:
    rng = random.Random(15)
    for _ in range(2000):
        value = random_value(rng)
        width = rng.randrange(4)
        assert compiled(value, width) == reference(value, width)


#: doubles where a shortest-digits writer can go wrong: the smallest subnormals and
#: normals, the largest double, powers of ten about where repr turns to exponents (1e16,
#: 1e-5), integers past 2**53, halfway cases, the times of capture c
EDGES = [
    5e-324, 1e-323, 2.2250738585072009e-308, 2.2250738585072014e-308, 1.7976931348623157e308,
    1e15, 9999999999999998.0, 1e16, 1.0000000000000002e16, 1e17, 1e21, 1e22, 1e23,
    1e-4, 9.999999999999999e-05, 1e-5, 0.1, 0.2, 0.30000000000000004, 1 / 3, 2.0**53,
    2.0**53 + 2, 2.0**63, 2.0**-1074 * 3, 4.35, 0.5, 2.5, 1e300, 1e-300, 123456789012345680.0,
    9.922205924987793, 1800000000.3, 1e308,
]  # fmt: skip


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(EDGES))
def test_floats_are_written_as_repr_writes_them(x: float) -> None:
    """floatrepr.h (Ryu's shortest digits) against float.__repr__ (David Gay's dtoa)."""
    for v in (x, -x):
        assert compiled([v, {v: v}]) == reference([v, {v: v}])


def test_a_million_doubles_of_every_exponent_written_as_repr() -> None:
    """Random bit patterns (every exponent and mantissa alike), and times with microsecond
    steps as a capture holds them, in lists of 10,000."""
    rng = random.Random(12)
    unpack = struct.Struct("<d").unpack
    for _ in range(50):
        bits = [unpack(rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(10_000)]
        finite = [x for x in bits if math.isfinite(x)]
        times = [rng.randrange(10**15) / 1e6 - rng.randrange(10**9) / 1e3 for _ in range(10_000)]
        for values in (finite, times):
            assert compiled(values, 0) == reference(values, 0)


@pytest.mark.parametrize(
    "name", sorted(p.relative_to(PCAPS).as_posix() for p in PCAPS.rglob("*.pcap"))
)
def test_real_summaries_print_the_same(name: str) -> None:
    path = PCAPS / name
    keys = path.with_suffix(".keys")
    data = summarize_file(path, keys if keys.is_file() else None)[1]
    assert compiled(data) == reference(data)
    assert compiled([data, data]) == reference([data, data])  # several files: a list


class FloatKind(float):
    def __repr__(self) -> str:
        return "not this"


class Items(list):
    def __iter__(self) -> Iterator[str]:
        return iter(["from __iter__"])


class Reordered(dict):
    def items(self) -> list[tuple[str, object]]:  # type: ignore[override]  # not a view: json iterates it
        return [("b", Items([1])), ("a", 2)]


class Hollow(dict):
    """True, yet no items: json prints its brackets on two lines."""

    def __bool__(self) -> bool:
        return True


class Claims:
    """An object isinstance() takes for a str: json then fails to encode it."""

    @property  # type: ignore[misc]  # __class__ as a property is the trick under test
    def __class__(self) -> type[str]:  # type: ignore[override]  # see above
        return str


@pytest.mark.parametrize(
    "value",
    [
        FloatKind(1.5),
        [FloatKind("nan")],
        {FloatKind(2.0): 1},
        Items([1, 2]),
        Items(),
        {(1, 2): "tuple key"},
        10**5000,
        "x",
        [[[[[[[[[[]]]]]]]]]],
        Claims(),
        Reordered(x=1),
        Hollow(),
        [Reordered(), Hollow()],
    ],
    ids=lambda value: type(value).__name__,
)
def test_left_to_json_the_same(value: object) -> None:
    """Whatever the C path declines, jsonout.dumps answers or raises as json.dumps."""
    try:
        expected: object = reference(value)
    except (TypeError, ValueError) as e:
        expected = type(e)
    try:
        got: object = jsonout.dumps(value)
    except (TypeError, ValueError) as e:
        got = type(e)
    assert got == expected


def test_deep_and_circular_left_to_json() -> None:
    deep: list[object] = []
    for _ in range(500):
        deep = [deep]
    assert jsonout._jsonindent.dumps(deep, 1) is None
    assert jsonout.dumps(deep) == reference(deep)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonout.dumps(loop)
