"""sipp as a SIP test endpoint: a UAS that echoes RTP, or a UAC that streams a tone.

Both use the harness's own scenarios (templates/sipp_*.xml) rather than sipp's
built-ins: the built-in uas drops Record-Route from its 200 OK, so the BYE's 200 OK
goes astray behind a proxy; the built-in uac sends no media.
"""

from __future__ import annotations

import math
import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from harness.components.base import Component, ComponentOptions, register
from harness.components.ports import WILDCARD, Endpoint, is_bound
from harness.components.templates import render
from harness.errors import ComponentError

if TYPE_CHECKING:
    from harness.lab.lab import Lab


class SippOptions(ComponentOptions):
    role: Literal["uac", "uas"]
    target: str | None = None
    """host[:port] the UAC sends its INVITE to (the proxy)."""
    service: str = "service"
    """User part of the UAC's request URI: whom it calls."""
    address: IPv4Address | None = None
    sip_port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"
    media_port: int = Field(6000, ge=1024, le=65000)
    rtp_echo: bool = True
    """UAS: echo RTP received on media_port back to its sender."""
    calls: int = Field(1, ge=1, le=1000)
    rate: float = Field(1.0, gt=0, le=100)
    """UAC: new calls per second."""
    hold_ms: int = Field(3000, ge=0, le=600_000)
    """UAC: how long each call streams audio before hanging up."""
    tone_hz: int = Field(1000, ge=50, le=3900)
    """UAC: frequency of the PCMU tone it streams."""
    timeout_s: int = Field(60, ge=1, le=3600)
    """sipp quits (and fails) after this long whatever happens: every run is bounded."""

    @model_validator(mode="after")
    def _uac_needs_target(self) -> SippOptions:
        if self.role == "uac" and not self.target:
            raise ValueError("a uac needs a target (host[:port] of the proxy or UAS)")
        return self


def ulaw_tone(freq: int, seconds: float = 1.0, rate: int = 8000, level: float = 0.5) -> bytes:
    """A sine as G.711 mu-law bytes (ITU-T G.711 segment encoding), looping seamlessly."""
    out = bytearray()
    for n in range(int(rate * seconds)):
        sample = int(level * 32767 * math.sin(2 * math.pi * freq * n / rate))
        sign = 0x80 if sample < 0 else 0
        magnitude = min(abs(sample), 32635) + 0x84
        exponent = max(0, magnitude.bit_length() - 8)
        mantissa = (magnitude >> (exponent + 3)) & 0x0F
        out.append(~(sign | (exponent << 4) | mantissa) & 0xFF)
    return bytes(out)


@register
class Sipp(Component):
    kind = "sipp"
    Options = SippOptions
    binary = "sipp"
    options: SippOptions

    def listen_address(self) -> str:
        return str(self.options.address) if self.options.address else self.address

    def ports(self) -> list[Endpoint]:
        o = self.options
        addr = str(o.address or WILDCARD)
        media = [("udp", addr, o.media_port + i) for i in range(4)]
        return [(o.transport, addr, o.sip_port), *media]

    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        o = self.options
        scenario = workdir / f"sipp_{o.role}.xml"
        if o.role == "uac":
            audio = workdir / f"tone-{o.tone_hz}hz.pcmu"
            audio.write_bytes(ulaw_tone(o.tone_hz))
            scenario.write_text(
                render("sipp_uac_tone.xml", audio_file=str(audio), hold_ms=o.hold_ms)
            )
        else:
            scenario.write_text(render("sipp_uas_echo.xml"))
        argv = [
            self.binary,
            *("-sf", str(scenario)),
            *("-i", self.listen_address(), "-p", str(o.sip_port)),
            *("-mi", self.listen_address(), "-mp", str(o.media_port)),
            *("-t", "u1" if o.transport == "udp" else "t1"),
            *("-timeout", f"{o.timeout_s}s", "-timeout_error"),
            *("-nostdin", "-trace_err", "-trace_msg", "-trace_stat", "-fd", "1"),
        ]
        if o.role == "uac":
            argv += ["-s", o.service, "-m", str(o.calls), "-r", str(o.rate), o.target or ""]
        elif o.rtp_echo:
            argv.append("-rtp_echo")
        return argv

    def is_ready(self) -> bool:
        assert self.proc is not None
        if self.options.role == "uac" and self.proc.returncode == 0:
            return True  # a short call may be over before the first check
        proto = self.options.transport
        return is_bound(self.proc.pid, proto, self.options.sip_port, self.listen_address())

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a UAC to finish its calls; raise with the log tail unless all succeeded."""
        assert self.proc is not None
        limit = timeout if timeout is not None else self.options.timeout_s + 5
        try:
            status = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ComponentError(
                self.name, f"still running after {limit:.0f} s", self.errors()
            ) from None
        if status != 0:
            raise ComponentError(
                self.name, f"exited with status {status}: calls failed", self.errors()
            )

    def errors(self, lines: int = 30) -> str:
        """sipp's error log (unexpected messages, timeouts), else its output's tail."""
        assert self.workdir is not None
        logs = sorted(self.workdir.glob("*_errors.log"), key=lambda p: p.stat().st_mtime)
        text = logs[-1].read_text(errors="replace") if logs else ""
        return "\n".join(text.splitlines()[-lines:]) or self.log_tail(lines)

    def messages(self) -> str:
        """Every SIP message sipp sent and received (its -trace_msg log)."""
        assert self.workdir is not None
        logs = sorted(self.workdir.glob("*_messages.log"), key=lambda p: p.stat().st_mtime)
        return logs[-1].read_text(errors="replace") if logs else ""
