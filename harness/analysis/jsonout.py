"""`--json` text: json.dumps(indent=1), made by the C encoder when the extension is built.

Python 3.11's json module encodes with its pure-Python encoder whenever `indent` is
set; on a handshake-heavy capture that is 7% of a whole `harness analyze` run. The C
encoder's compact text, indented by `_jsonindent`, is the same bytes for a tenth of it.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from harness.analysis import _jsonindent
except ImportError:  # not built (no compiler at install time): the pure-Python encoder
    _jsonindent = None  # type: ignore[assignment]


def dumps(obj: Any, indent: int = 1) -> str:
    """json.dumps(obj, indent=indent, default=str), byte for byte."""
    if _jsonindent is not None:
        compact = json.dumps(obj, separators=(",", ":"), default=str)
        text = _jsonindent.indent(compact, indent)
        if text is not None:
            return text
    return json.dumps(obj, indent=indent, default=str)
