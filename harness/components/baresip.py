"""baresip as a SIP extension: registers, auto-answers, sends a tone, records what it hears.

The tone comes from the ausine module (it only runs at 48 kHz stereo); the sndfile
module writes every call's received audio to dump-<time>-dec.wav, which tests read
back to prove media arrived.
"""

from __future__ import annotations

import math
import signal
import sys
import time
import wave
from array import array
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from harness.components.baresip_ctrl import BaresipControl
from harness.components.base import Component, ComponentOptions, register
from harness.components.ports import (
    WILDCARD,
    Endpoint,
    PortRange,
    is_bound,
    parse_range,
    port_range,
)
from harness.errors import ComponentError

if TYPE_CHECKING:
    from harness.lab.lab import Lab

MODULES = "/usr/lib/baresip/modules"


@dataclass(frozen=True)
class Recording:
    """One call's received audio as baresip wrote it: first channel, 16-bit samples."""

    path: Path
    rate: int
    samples: array[int] = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> Recording:
        with wave.open(str(path)) as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit audio, expected 16-bit")
            rate, channels = w.getframerate(), w.getnchannels()
            samples = array("h", w.readframes(w.getnframes()))[::channels]
        if sys.byteorder == "big":
            samples.byteswap()
        return cls(path, rate, samples)

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    @property
    def rms(self) -> float:
        """Root mean square in 16-bit sample units: ~0 for silence, ~11600 for a half-scale sine."""
        n = len(self.samples)
        return math.sqrt(sum(x * x for x in self.samples) / n) if n else 0.0


class BaresipOptions(ComponentOptions):
    user: str = "baresip"
    password: str | None = None
    registrar: str | None = None
    """Registrar host[:port] (e.g. kamailio's address); None: no registration."""
    domain: str | None = None
    """Domain of the account's AOR (default: the registrar's host, else our address)."""
    address: IPv4Address | None = None
    sip_port: int = Field(5060, ge=1, le=65535)
    rtp_ports: PortRange = "40000-40099"
    answer: Literal["auto", "manual"] = "auto"
    tone_hz: int = Field(440, ge=10, le=20000)
    codecs: list[Literal["PCMU", "PCMA", "opus", "G722"]] = ["PCMU", "PCMA"]
    record: bool = True
    dial: str | None = None
    """A SIP URI to call once started (then baresip is a UAC)."""
    quit_after: int | None = Field(None, ge=1, le=3600)
    """Hang up, un-register and exit after this many seconds."""
    register_interval: int = Field(600, ge=10)
    control_port: int | None = Field(None, ge=1, le=65535)
    """Open baresip's ctrl_tcp interface on this port (steps then dial, send DTMF, ...)."""


@register
class Baresip(Component):
    kind = "baresip"
    Options = BaresipOptions
    binary = "baresip"
    options: BaresipOptions

    def listen_address(self) -> str:
        return str(self.options.address) if self.options.address else self.address

    def ports(self) -> list[Endpoint]:
        addr = str(self.options.address or WILDCARD)
        return [
            ("udp", addr, self.options.sip_port),
            ("tcp", addr, self.options.sip_port),
            *port_range("udp", addr, *parse_range(self.options.rtp_ports)),
            *([("tcp", addr, self.options.control_port)] if self.options.control_port else []),
        ]

    @property
    def aor(self) -> str:
        o = self.options
        domain = o.domain or (o.registrar.split(":")[0] if o.registrar else self.listen_address())
        return f"sip:{o.user}@{domain}"

    @property
    def recordings(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "recordings"

    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        o = self.options
        confdir = workdir / "conf"
        confdir.mkdir(exist_ok=True)
        self.recordings.mkdir(exist_ok=True)
        modules = ["g711", "ausine", "alsa", *(["sndfile"] if o.record else [])]
        if "opus" in o.codecs:
            modules.append("opus")
        if "G722" in o.codecs:
            modules.append("g722")
        if o.control_port:
            modules.append("ctrl_tcp")
        lines = [
            "poll_method epoll",
            f"sip_listen {self.listen_address()}:{o.sip_port}",
            f"rtp_ports {o.rtp_ports}",
            f"audio_source ausine,{o.tone_hz}",
            "audio_player alsa,null",
            "audio_alert alsa,null",
            "ausrc_srate 48000",
            "auplay_srate 48000",
            "ausrc_channels 2",
            "auplay_channels 2",
            "video_source none",
            # relative to the work directory (its cwd): baresip builds each file name in a
            # 128-byte buffer, and deep run directories cut `.wav` off (seen under pytest)
            f"snd_path {self.recordings.relative_to(self.workdir)}",  # type: ignore[arg-type]
            *(
                [f"ctrl_tcp_listen {self.listen_address()}:{o.control_port}"]
                if o.control_port
                else []
            ),
            f"module_path {MODULES}",
            *(f"module {m}.so" for m in modules),
            "module_app account.so",
            "module_app menu.so",
        ]
        (confdir / "config").write_text("\n".join(lines) + "\n")
        params = [
            f"answermode={o.answer}",
            f"audio_codecs={','.join(o.codecs)}",
        ]
        if o.registrar:
            params.append(f"regint={o.register_interval}")
            params.append(f'outbound="sip:{o.registrar}"')
        else:
            params.append("regint=0")
        if o.password:
            params.append(f"auth_pass={o.password}")
        (confdir / "accounts").write_text(f"<{self.aor}>;{';'.join(params)}\n")
        (confdir / "contacts").write_text("")
        argv = [self.binary, "-f", str(confdir)]
        if o.dial:
            argv += ["-e", f"/dial {o.dial}"]
        if o.quit_after:
            argv += ["-t", str(o.quit_after)]
        return argv

    def is_ready(self) -> bool:
        assert self.proc is not None
        if self.options.quit_after and self.proc.returncode == 0:
            return True  # it did its job and quit before the first check
        o, addr = self.options, self.listen_address()
        return is_bound(self.proc.pid, "udp", o.sip_port, addr) and (
            o.control_port is None or is_bound(self.proc.pid, "tcp", o.control_port, addr)
        )

    def control(self) -> BaresipControl:
        """The ctrl_tcp client for this extension (needs `control_port`)."""
        if self.options.control_port is None or self.lab is None:
            raise ComponentError(self.name, "no control interface (set control_port)")
        return BaresipControl(
            self.lab.netns(self.node), self.listen_address(), self.options.control_port
        )

    def registered(self) -> bool:
        """baresip logged a successful registration ("200 OK ... binding")."""
        return any("200 OK" in line and "binding" in line for line in self._log_lines())

    def wait_registered(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.registered():
            self.check_alive()
            if time.monotonic() > deadline:
                raise ComponentError(
                    self.name, f"not registered after {timeout:.0f} s", self.log_tail(20)
                )
            time.sleep(0.05)

    def received_recordings(self) -> list[Recording]:
        """What this extension heard, one WAV per call, oldest first."""
        return [Recording.read(p) for p in sorted(self.recordings.glob("dump-*-dec.wav"))]

    def stop(self) -> None:
        """baresip spends the first SIGTERM un-registering: give it a moment, then insist."""
        if self.proc is None or not self.proc.alive():
            return super().stop()
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 1.5
        while self.proc.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.proc.stop(timeout=2.0)

    def _log_lines(self) -> list[str]:
        return self.log_tail(400).splitlines()
