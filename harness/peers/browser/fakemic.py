"""The WAV file Chromium's fake microphone plays in a loop: a known tone.

A whole number of cycles fits in the file, so the loop has no click that would
smear the spectrum the far side measures.
"""

from __future__ import annotations

import wave
from pathlib import Path

from harness.peers.tonemath import SAMPLE_RATE, sine


def write_tone_wav(path: Path, hz: float, seconds: float = 1.0) -> Path:
    """Write a mono 16-bit 48 kHz sine of `hz` to `path`, for --use-file-for-fake-audio-capture."""
    if not 20.0 <= hz <= SAMPLE_RATE / 2 - 1000:
        raise ValueError(f"tone_hz {hz} is outside 20..{SAMPLE_RATE // 2 - 1000} Hz")
    cycles = max(1, round(hz * seconds))
    pcm = sine(hz, round(cycles * SAMPLE_RATE / hz))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return path
