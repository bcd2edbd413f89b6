"""`harness bisect` on three real rtpengine images (Debian bookworm, trixie, sid): the
first release whose DTLS answer carries RFC 8842's a=tls-id is 12.5 (trixie).

Needs the images (`harness images build rtpengine`, ~6 min); CI does not build them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.scenario.bisect import bisect

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
IMAGES = [f"rtc-harness/rtpengine:{s}" for s in ("bookworm", "trixie", "sid")]


def test_first_rtpengine_with_tls_id_is_trixies() -> None:
    from harness.config.scenario import load_scenario
    from harness.errors import UnsupportedError
    from harness.runtime import engine
    from harness.scenario.runner import run_scenario

    try:
        client = engine.client()
    except UnsupportedError as exc:
        pytest.skip(str(exc))
    missing = [i for i in IMAGES if not client.images.list(name=i)]
    if missing:
        pytest.skip(f"images not built here: {missing} (harness images build rtpengine)")
    scenario = load_scenario(ROOT / "scenarios" / "gateway" / "rtpengine-dtls-answer.yaml")
    b = asyncio.run(bisect(scenario, IMAGES, lambda sc, seed: run_scenario(sc, seed=seed)))
    assert b.first_changed == "rtc-harness/rtpengine:trixie", b.summary()
    versions = {i: p.version("rtpengine") for i, p in b.probes.items()}
    assert "rtpengine 10.5." in versions[IMAGES[0]] and "rtpengine 12.5." in versions[IMAGES[1]]
    assert "rtpengine 26." in versions[IMAGES[2]]
    assert [b.probes[i].verdict for i in IMAGES] == ["fail", "pass", "pass"]
