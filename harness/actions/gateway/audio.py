"""`audio_heard`: a peer's stats or a baresip extension's recording hold the expected tone."""

from __future__ import annotations

import asyncio
import time
import wave
from typing import TYPE_CHECKING, Any

from harness.actions.gateway.common import component
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext


@action("audio_heard")
class AudioHeard(Action):
    """A peer (its stats) or a baresip extension (its recordings) heard a tone of `tone_hz`.

    For an extension the last call's recording is read, so put this after the hang-up.
    `min_seconds` of recording must hold the tone (default 1 s).
    """

    peer: str | None = None
    component: str | None = None
    tone_hz: float
    tolerance_hz: float = 10.0
    min_seconds: float = 1.0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        if (self.peer is None) == (self.component is None):
            raise StepError("audio_heard: give either `peer` or `component`")
        if self.peer is not None:
            stats = await ctx.peer(self.peer).call("stats")
            audio = stats.get("media", {}).get("audio", {})
            heard, detail = (
                audio.get("tone_hz"),
                {k: audio.get(k) for k in ("packets_received", "level", "tone_hz")},
            )
        else:
            heard, detail = await asyncio.to_thread(self._recording, ctx)
        if heard is None or abs(heard - self.tone_hz) > self.tolerance_hz:
            who = self.peer or self.component
            raise StepError(
                f"audio_heard: {who} heard {heard} Hz, expected {self.tone_hz} Hz: {detail}"
            )
        return detail

    def _recording(self, ctx: ScenarioContext) -> tuple[float | None, dict[str, Any]]:
        import numpy as np

        from harness.peers.tone import dominant_frequency

        ext = component(ctx, self.component or "", "baresip", "audio_heard")
        deadline = time.monotonic() + 3.0
        recs: list[Any] = []
        while True:  # baresip closes the WAV when the call ends, shortly after the BYE
            try:
                recs = ext.received_recordings()
            except (wave.Error, EOFError):  # caught while baresip writes its header
                recs = []
            if recs and recs[-1].seconds >= self.min_seconds or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not recs:
            return None, {"recordings": 0}
        rec = recs[-1]
        samples = np.frombuffer(rec.samples, dtype=np.int16)
        freq = dominant_frequency(samples, rec.rate) if rec.seconds >= self.min_seconds else None
        return freq, {
            "file": rec.path.name,
            "seconds": round(rec.seconds, 2),
            "rms": round(rec.rms),
            "tone_hz": freq,
        }
