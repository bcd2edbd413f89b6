"""Known tones out, measured tones in: how a test proves audio crossed the call.

A peer sends a sine of a chosen frequency; the other side finds the dominant
frequency of what it decoded. A codec, jitter buffer or a wrong stream cannot
produce the right frequency by accident, so it is a stronger check than a byte
counter.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections import deque

import numpy as np
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack
from av import AudioFrame

SAMPLE_RATE = 48000
SILENCE_DBFS = -120.0


def sine(
    hz: float, samples: int, rate: int = SAMPLE_RATE, start: int = 0, amplitude: float = 0.3
) -> np.ndarray:
    """`samples` int16 samples of a sine, starting at sample index `start` (keeps phase)."""
    t = (np.arange(samples) + start) / rate
    return (amplitude * 32767 * np.sin(2 * math.pi * hz * t)).astype(np.int16)


def dominant_frequency(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float | None:
    """Frequency (Hz) of the strongest spectral peak; None for silence or too few samples."""
    if len(samples) < 256:
        return None
    x = samples.astype(np.float64)
    x -= x.mean()
    if not np.any(x):
        return None
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:])) + 1
    # Parabolic interpolation on the log magnitude: sub-bin accuracy.
    if 1 <= k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        denom = a - 2 * b + c
        k += 0.5 * (a - c) / denom if denom else 0.0
    return float(k * rate / len(x))


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level relative to int16 full scale, in dB (SILENCE_DBFS for digital silence)."""
    if len(samples) == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2))) / 32768
    return max(SILENCE_DBFS, 20 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


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
            self.feed(frame)
