"""`harness images build` against the real Docker engine: incremental by source hash,
progress, and errors that name the Dockerfile; versions read from inside images."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.components.versions import image_version
from harness.errors import UnsupportedError
from harness.images.build import HASH_LABEL, Builder
from harness.images.catalog import ImageError, Kind, base_name

SUITE = "sid"  # the base CI builds anyway (for the Asterisk image)


@pytest.fixture
def builder() -> Iterator[Builder]:
    from harness.runtime import engine

    try:
        client = engine.client()
    except UnsupportedError as exc:
        pytest.skip(f"unsupported here: {exc}")
    lines: list[str] = []
    b = Builder(lines.append)
    b.lines = lines  # type: ignore[attr-defined]  # its progress lines, kept for the tests
    b.base(SUITE)  # a no-op when the base is up to date
    yield b
    for tag in ("rtc-harness/tiny-test:sid", "rtc-harness/broken-test:sid"):
        with contextlib.suppress(Exception):  # absent is fine
            client.images.remove(tag, force=True)


def test_unchanged_context_is_not_rebuilt_and_a_change_is(builder: Builder, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"ARG SUITE\nFROM {base_name(SUITE).split(':')[0]}:${{SUITE}}\nCOPY note.txt /note.txt\n"
    )
    (tmp_path / "note.txt").write_text("one\n")
    spec = Kind("tiny-test", suites=(SUITE,), folder=tmp_path)
    first = builder.kind("tiny-test", SUITE, spec)
    assert first.action == "built"
    assert any("Step 3/" in line for line in builder.lines)  # type: ignore[attr-defined]  # see builder()
    again = builder.kind("tiny-test", SUITE, spec)
    assert again.action == "up to date" and again.seconds == 0.0
    (tmp_path / "note.txt").write_text("two\n")
    third = builder.kind("tiny-test", SUITE, spec)
    assert third.action == "built"
    img = builder.client.images.get("rtc-harness/tiny-test:sid")
    assert img.labels[HASH_LABEL] != ""
    out = builder.client.containers.run(
        img.id, ["cat", "/note.txt"], remove=True, network_mode="none"
    )
    assert out == b"two\n"


def test_a_failing_step_names_the_dockerfile_and_shows_the_tail(
    builder: Builder, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        "ARG SUITE\nFROM rtc-harness/base:${SUITE}\nRUN echo about to fail && false\n"
    )
    spec = Kind("broken-test", suites=(SUITE,), folder=tmp_path)
    with pytest.raises(ImageError) as err:
        builder.kind("broken-test", SUITE, spec)
    text = str(err.value)
    assert str(tmp_path / "Dockerfile") in text and "returned a non-zero code: 1" in text
    assert "about to fail" in text


def test_versions_come_from_the_program_in_the_image(
    builder: Builder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.components import versions

    monkeypatch.setattr(versions, "CACHE", tmp_path / "versions.json")  # really ask
    # the base image's own dpkg, asked inside a container with no network
    from harness.components.versions import VersionProbe

    probe = VersionProbe(("dpkg", "--version"), r"program version (\S+)")
    got = image_version(probe, base_name(SUITE))
    # oracle: the package database of the same image, read through the docker CLI
    db = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            base_name(SUITE),
            "dpkg-query",
            "-W",
            "-f",
            "${Version}",
            "dpkg",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert got == db and got[0].isdigit()
    assert image_version(probe, base_name(SUITE)) == got  # now from the cache file
    assert got in (tmp_path / "versions.json").read_text()
