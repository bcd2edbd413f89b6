"""Shared by the container tests: images built once per session, a clear skip without
an engine (the runtime reports that case as unsupported; tests/integration checks it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UnsupportedError

SUITE = "bookworm"
ROOT = Path(__file__).resolve().parents[2]
_built: set[str] = set()  # checked by `harness images build` in this session


def image(kind: str) -> str:
    return f"rtc-harness/{kind}:{SUITE}"


def need_images(*kinds: str) -> list[str]:
    """Build what a test runs, once per session (incremental: an up-to-date image costs
    a label check)."""
    from harness.runtime import engine

    try:
        engine.client()
    except UnsupportedError as exc:
        pytest.skip(f"unsupported here: {exc}")
    missing = [k for k in kinds if k not in _built]
    if missing:
        r = subprocess.run(
            [sys.executable, "-m", "harness", "images", "build", *missing, "--suite", SUITE],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, f"harness images build failed:\n{r.stdout[-3000:]}{r.stderr}"
        _built.update(missing)
    return [image(k) for k in kinds]
