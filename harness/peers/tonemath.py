"""Tone arithmetic with numpy only: the sine a peer plays, the frequency and level
of what it heard. Browser agents (and their images, which have no aiortc) use this;
harness/peers/tone.py adds aiortc's sending track and meter on top.
"""

from __future__ import annotations

import math

import numpy as np

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
    peak = float(k)
    # Parabolic interpolation on the log magnitude: sub-bin accuracy.
    if 1 <= k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        denom = a - 2 * b + c
        peak += 0.5 * (a - c) / denom if denom else 0.0
    return float(peak * rate / len(x))


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level relative to int16 full scale, in dB (SILENCE_DBFS for digital silence)."""
    if len(samples) == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2))) / 32768
    return max(SILENCE_DBFS, 20 * math.log10(rms)) if rms > 0 else SILENCE_DBFS
