"""`--json` text: json.dumps(indent=1, default=str), written by C when the extension is built.

Python 3.11's json module encodes with its pure-Python encoder whenever `indent` is
set; on a handshake-heavy capture that is a sixth of a whole `harness analyze` run. The
extension writes the same bytes in one pass for a tenth of it (`_jsonindent.dumps`), and
answers None for what it does not take on exactly; json.dumps then prints that.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from harness.analysis import _jsonindent  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built (no compiler at install time): the pure-Python encoder
    _jsonindent = None


def dumps(obj: Any, indent: int = 1) -> str:
    """json.dumps(obj, indent=indent, default=str), byte for byte."""
    if _jsonindent is not None:
        text = _jsonindent.dumps(obj, indent)
        if text is not None:
            return text
    return json.dumps(obj, indent=indent, default=str)
