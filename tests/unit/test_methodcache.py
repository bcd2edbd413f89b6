"""harness.methodcache: dataclass methods compiled once, kept, and the same as compiled."""

from __future__ import annotations

import dataclasses
import marshal
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from harness import methodcache

CLASS = """
from dataclasses import dataclass, field

@dataclass
class Point:
    x: int
    y: int = 2
    tags: list[str] = field(default_factory=list)
"""


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache of this test's own, written where this test says."""
    path = tmp_path / "methods.marshal"
    monkeypatch.setattr(methodcache, "_codes", {})
    monkeypatch.setattr(methodcache, "_used", set())
    monkeypatch.setattr(methodcache, "_changed", False)
    monkeypatch.setattr(methodcache, "_path", str(path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return path


def make(monkeypatch: pytest.MonkeyPatch, module: str) -> Any:
    """The dataclass of CLASS, made in a module named `module`."""
    mod = types.ModuleType(module)
    monkeypatch.setitem(sys.modules, module, mod)
    exec(CLASS, mod.__dict__)
    return mod.Point


def test_a_harness_dataclass_is_compiled_once_then_read_back(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = make(monkeypatch, "harness.fake_records")
    assert point(1) == point(1, 2, [])
    assert repr(point(3, 4, ["a"])) == "Point(x=3, y=4, tags=['a'])"
    assert point(1).tags is not point(1).tags
    assert methodcache._changed and methodcache._codes
    assert methodcache.save() and cache.is_file()
    # another process: the cache read back, nothing compiled
    monkeypatch.setattr(methodcache, "_codes", methodcache._load(str(cache)))
    monkeypatch.setattr(methodcache, "_changed", False)

    def no_compile(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"compiled again: {args[0]!r:.80}")

    monkeypatch.setattr(methodcache, "compile", no_compile, raising=False)
    again = make(monkeypatch, "harness.fake_records")
    assert again(5) == again(5, 2, []) and repr(again(5)) == "Point(x=5, y=2, tags=[])"
    assert not methodcache._changed and not methodcache.save()


def test_other_modules_classes_are_compiled_as_before(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = make(monkeypatch, "somebody_elses")
    assert point(1) == point(1, 2, [])
    # __init__ annotated with the fields' types, as dataclasses' own exec makes it (the
    # shim's __future__ flags would make them the names of its locals: '_type_x')
    declared = {f.name: f.type for f in dataclasses.fields(point)}
    assert point.__init__.__annotations__ == {**declared, "return": None}
    assert not methodcache._codes and not methodcache._changed
    assert not methodcache.save() and not cache.exists()


def test_a_damaged_or_foreign_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "methods.marshal"
    path.write_bytes(b"\x00garbage")
    assert methodcache._load(str(path)) == {}
    path.write_bytes(marshal.dumps(["not", "a", "dict"]))
    assert methodcache._load(str(path)) == {}
    code = compile("x = 1", "<string>", "exec")
    path.write_bytes(marshal.dumps({"x = 1": code, "y = 2": "not code", 3: code}))
    assert methodcache._load(str(path)) == {"x = 1": code}
    assert methodcache._load(str(tmp_path / "missing")) == {}


def test_nothing_is_written_where_bytecode_is_not(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(monkeypatch, "harness.fake_records")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert not methodcache.save() and not cache.exists()
    blocked = cache.parent / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(methodcache, "_path", str(blocked / "methods.marshal"))
    assert not methodcache.save()  # its folder cannot be made: no error, nothing kept
    assert list(cache.parent.iterdir()) == [blocked]


def test_the_harness_dataclasses_go_through_it() -> None:
    import dataclasses

    from harness.analysis import model  # noqa: F401  (made its dataclasses)

    assert dataclasses.exec is methodcache._exec  # type: ignore[attr-defined]
    assert any(
        "StunEvent" in text or "certificate_fingerprint" in text for text in methodcache._used
    )


def run_fresh(code: str) -> str:
    """`code` in a new interpreter (pytest imported inspect in this one), its stdout."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    return done.stdout.strip()


def test_the_analyser_never_loads_inspect() -> None:
    # dataclasses' one use of it is a missing docstring: the analyser's classes have theirs
    loaded = run_fresh(
        "import sys, harness.analysis.cli, harness.analysis.report, harness.analysis.analyzer\n"
        "print(sorted({'ast', 'dis', 'tokenize'} & set(sys.modules)),"
        " type(sys.modules['inspect']).__name__)"
    )
    assert loaded == "[] _Deferred"


def test_inspect_deferred_is_inspect_on_first_use() -> None:
    out = run_fresh(
        "import harness, dataclasses, sys\n"
        "from dataclasses import dataclass\n"
        "stand_in = dataclasses.inspect\n"
        "@dataclass\n"
        "class P:\n"
        "    x: int\n"  # no docstring: dataclasses asks inspect for the signature
        "import inspect\n"
        "from inspect import Parameter\n"
        "print(P.__doc__, inspect is sys.modules['inspect'], type(inspect).__name__,"
        " stand_in.signature is inspect.signature, Parameter is inspect.Parameter,"
        " 'signature' in vars(stand_in))"  # read directly from then on
    )
    assert out == "P(x: int) True module True True True"
