"""The Firefox peer's fresh profile: fake microphone with the asked tone, real host
addresses, a running AudioContext, no background traffic; what it cannot do is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.peers.firefox_agent.browser import profile_prefs, write_profile


def test_profile_carries_the_tone_and_the_media_prefs(tmp_path: Path) -> None:
    prefs = profile_prefs({"tone_hz": 660})
    assert prefs["media.navigator.audio.fake_frequency"] == 660
    assert prefs["media.navigator.streams.fake"] and prefs["media.navigator.permission.disabled"]
    assert prefs["media.peerconnection.ice.obfuscate_host_addresses"] is False
    assert prefs["media.cubeb.force_mock_context"] is True
    user_js = (write_profile(tmp_path / "p", prefs) / "user.js").read_text()
    assert 'user_pref("media.navigator.audio.fake_frequency", 660);' in user_js
    assert 'user_pref("network.captive-portal-service.enabled", false);' in user_js
    # a fresh profile each launch: nothing of a previous one survives
    (tmp_path / "p" / "old").write_text("x")
    assert sorted(p.name for p in write_profile(tmp_path / "p", prefs).iterdir()) == ["user.js"]


@pytest.mark.parametrize(
    "audio, message",
    [
        ({"file": "/tmp/a.wav"}, "audio.file is not supported"),
        ({"tone_hz": 440.5}, "whole number of Hz"),
        ({"tone_hz": 5}, "whole number of Hz"),
    ],
)
def test_what_firefox_cannot_play_is_refused(audio: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profile_prefs(audio)
