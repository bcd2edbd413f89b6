"""Known tones out, measured tones in: how a test proves audio crossed the call.

A peer sends a sine of a chosen frequency; the other side finds the dominant
frequency of what it decoded. A codec, jitter buffer or a wrong stream cannot
produce the right frequency by accident, so it is a stronger check than a byte
counter.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque

import numpy as np
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack
from av import AudioFrame

# Re-exported: the numpy-only half lives in tonemath.py (no aiortc import there).
from harness.peers.tonemath import (  # noqa: E402
    SAMPLE_RATE,
    SILENCE_DBFS,
    dominant_frequency,
    rms_dbfs,
    sine,
)

__all__ = [
    "SAMPLE_RATE",
    "SILENCE_DBFS",
    "ToneMeter",
    "ToneTrack",
    "dominant_frequency",
    "rms_dbfs",
    "sine",
]


class ToneTrack(MediaStreamTrack):
    """An audio source that plays one sine, paced in real time like a microphone."""

    kind = "audio"

    def __init__(self, hz: float, rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.hz = hz
        self.rate = rate
        self._start: float | None = None
        self._timestamp = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = int(AUDIO_PTIME * self.rate)
        if self._start is None:
            self._start = time.time()
        else:
            self._timestamp += samples
            await asyncio.sleep(self._start + self._timestamp / self.rate - time.time())
        pcm = sine(self.hz, samples, self.rate, start=self._timestamp)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.pts = self._timestamp
        frame.sample_rate = self.rate
        frame.time_base = fractions.Fraction(1, self.rate)
        return frame


class ToneMeter:
    """Keeps the last second of received audio (mono) to measure its tone and level."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self.rate = SAMPLE_RATE
        self._chunks: deque[np.ndarray] = deque()
        self._held = 0

    def feed(self, frame: AudioFrame) -> None:
        pcm = frame.to_ndarray()
        channels = len(frame.layout.channels)
        mono = pcm[0] if frame.format.is_planar else pcm.reshape(-1, channels)[:, 0]
        self.rate = frame.sample_rate
        self._chunks.append(mono.astype(np.int16))
        self._held += len(mono)
        while self._chunks and self._held - len(self._chunks[0]) >= self.seconds * self.rate:
            self._held -= len(self._chunks.popleft())

    def window(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def tone_hz(self) -> float | None:
        return dominant_frequency(self.window(), self.rate)

    def level(self) -> float | None:
        return rms_dbfs(self.window()) if self._chunks else None

    async def consume(self, track: MediaStreamTrack) -> None:
        """Read `track` until it ends, measuring every frame."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.feed(frame)  # type: ignore[arg-type]  # an audio track's: AudioFrames
