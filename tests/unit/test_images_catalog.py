"""Image names, build targets and the source hash that makes builds incremental."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.images.build import context_hash
from harness.images.catalog import IMAGES_DIR, KINDS, SUITES, ImageError, image_name, targets


def test_every_kind_has_a_dockerfile_taking_the_suite() -> None:
    for kind in KINDS.values():
        text = (kind.context / "Dockerfile").read_text()
        assert "ARG SUITE" in text and "rtc-harness/base:${SUITE}" in text, kind.name


def test_targets_expand_kinds_and_suites_in_order() -> None:
    assert targets(["kamailio"], None) == [("kamailio", s) for s in SUITES]
    assert targets(["janus"], None) == [("janus", "bookworm"), ("janus", "sid")]
    assert targets(["asterisk"], None) == [("asterisk", "sid")]
    assert ("asterisk", "bookworm") not in targets(None, ["bookworm"])
    assert image_name("janus", "sid") == "rtc-harness/janus:sid"


@pytest.mark.parametrize(
    ("kinds", "suites", "message"),
    [
        (["januz"], None, "unknown image kind 'januz'"),
        (["janus"], ["jessie"], "unknown suite 'jessie'"),
        (["asterisk"], ["bookworm"], "asterisk is only built for sid"),
    ],
)
def test_bad_targets_are_named(kinds: list[str], suites: list[str] | None, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        targets(kinds, suites)


def test_context_hash_follows_content_and_suite(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    first = context_hash(tmp_path, "bookworm", "sha256:base")
    assert context_hash(tmp_path, "bookworm", "sha256:base") == first
    assert context_hash(tmp_path, "sid", "sha256:base") != first
    assert context_hash(tmp_path, "bookworm", "sha256:other") != first
    (tmp_path / "extra.conf").write_text("x")
    assert context_hash(tmp_path, "bookworm", "sha256:base") != first


def test_images_dir_is_in_the_repository() -> None:
    assert IMAGES_DIR.is_dir() and (IMAGES_DIR.parent / "setup.sh").is_file()
