"""`harness analyze --json` text: the C indenter (`_jsonindent`) against json.dumps(indent=).

The compiled path must print the very bytes the pure-Python encoder does, for any value
the summary can hold: nested empties, escapes and non-ASCII text, brackets and colons
inside strings, floats, non-JSON objects turned into text by `default=str`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.analysis import jsonout
from harness.analysis.report import summarize_file

pytestmark = pytest.mark.skipif(
    jsonout._jsonindent is None,
    reason="harness/analysis/_jsonindent.c is not built (pip install -e . builds it)",
)

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from('{}[],:"\\'))
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT | st.just(Path("/x"))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(VALUES, st.integers(0, 4))
def test_compiled_indent_matches_json_dumps(value: object, width: int) -> None:
    assert jsonout.dumps(value, width) == json.dumps(value, indent=width, default=str)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.text(alphabet='{}[],:"\\ ab1'))
def test_indenter_never_crashes_on_unbalanced_text(text: str) -> None:
    """Text json.dumps never makes: the indenter answers None or some text, never crashes."""
    out = jsonout._jsonindent.indent(text, 1)
    assert out is None or isinstance(out, str)


def test_not_ascii_falls_back() -> None:
    assert jsonout._jsonindent.indent('{"a":"\u00e9"}', 1) is None


def test_real_summary_prints_the_same() -> None:
    data = summarize_file(
        Path(__file__).resolve().parents[1] / "data" / "pcaps" / "aiortc-relayed.pcap"
    )[1]
    assert jsonout.dumps(data) == json.dumps(data, indent=1, default=str)
