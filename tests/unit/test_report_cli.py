"""`harness report` on what is not a run's results: a message naming the path (exit 2),
before any report is drawn, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli import main


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d / "missing", "missing: no such file or directory"),
        (lambda d: _write(d / "notes.txt", "hello"), "notes.txt: not a run's result.json"),
        (lambda d: _write(d / "run" / "result.json", '{"a": 1}'), "not a run's result.json"),
    ],
    ids=["missing", "not-json", "not-a-result"],
)
def test_not_results(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], Path],
    says: str,
) -> None:
    target = make(tmp_path)
    arg = target.parent.parent if target.name == "result.json" else target
    assert main(["report", str(arg), "--out", str(tmp_path / "out")]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = _write(tmp_path / "out", "mine")
    assert main(["report", str(tmp_path), "--out", str(taken)]) == 2
    assert f"--out {taken}: not a directory" in capsys.readouterr().err
    assert taken.read_text() == "mine"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
