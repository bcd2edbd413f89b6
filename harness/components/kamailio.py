"""Kamailio as an in-memory registrar and record-routing proxy.

SIP over UDP and TCP, optionally WebSocket (xhttp + websocket modules), and
optionally rtpengine for WebRTC<->RTP media: an offer carrying RTP/SAVPF goes
out as plain RTP/AVP, an offer towards a WebSocket contact goes out as WebRTC.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from harness.components.base import Component, ComponentOptions, register
from harness.components.ports import WILDCARD, Endpoint, is_bound
from harness.components.templates import render
from harness.errors import ComponentError
from harness.lazy import lazy

pki = lazy("harness.components.pki")  # cryptography loads when a run issues a certificate

if TYPE_CHECKING:
    from harness.lab.lab import Lab


class KamailioOptions(ComponentOptions):
    address: IPv4Address | None = None
    """Address to listen on (default: the node's first interface)."""
    sip_port: int = Field(5060, ge=1, le=65535)
    udp: bool = True
    tcp: bool = True
    ws: bool = False
    ws_port: int = Field(8080, ge=1, le=65535)
    tls: bool = False
    """SIP over TLS on `tls_port` and, with `ws`, secure WebSocket on `wss_port`, with a
    certificate for the listen address from the run's own CA (harness/components/pki.py)."""
    tls_port: int = Field(5061, ge=1, le=65535)
    wss_port: int = Field(8443, ge=1, le=65535)
    certificate: Literal["trusted", "expired", "untrusted"] = "trusted"
    """Which certificate TLS presents: from the run's CA, expired, or from a CA no one trusts."""
    tls_method: Literal["TLSv1.2", "TLSv1.2+"] = "TLSv1.2"
    """TLS 1.2 keeps certificates and alerts readable on the wire (1.3 encrypts them)."""
    rtpengine: str | None = None
    """"IP:PORT" of an rtpengine ng socket; enables WebRTC<->RTP bridging."""
    domain: str | None = None
    """Extra domain served as local (default: only the listen address)."""
    users: dict[str, str] = {}
    """user -> password: digest authentication for REGISTER (401) and for INVITE, MESSAGE
    and REFER from these users (407); wrong credentials get 403. Empty: no authentication."""
    children: int = Field(2, ge=1, le=16)
    debug: int = Field(2, ge=-5, le=3)

    @field_validator("users")
    @classmethod
    def _plain_credentials(cls, v: dict[str, str]) -> dict[str, str]:
        # They are written into kamailio.cfg: letters, digits and . _ - only.
        for text in [*v, *v.values()]:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
                raise ValueError(f"{text!r}: use letters, digits and . _ - only")
        return v


@register
class Kamailio(Component):
    kind = "kamailio"
    Options = KamailioOptions
    binary = "kamailio"
    options: KamailioOptions

    def listen_address(self) -> str:
        return str(self.options.address) if self.options.address else self.address

    def ports(self) -> list[Endpoint]:
        addr = str(self.options.address or WILDCARD)
        o = self.options
        found: list[Endpoint] = []
        if o.udp:
            found.append(("udp", addr, o.sip_port))
        if o.tcp:
            found.append(("tcp", addr, o.sip_port))
        if o.ws:
            found.append(("tcp", addr, o.ws_port))
        if o.tls:
            found.append(("tcp", addr, o.tls_port))
            if o.ws:
                found.append(("tcp", addr, o.wss_port))
        return found

    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        o = self.options
        if not (o.udp or o.tcp or o.ws):
            raise ComponentError(self.name, "no transport enabled (udp, tcp and ws are all off)")
        (workdir / "kamailio.pid").unlink(missing_ok=True)  # kamailio refuses a live-looking one
        tls_config = workdir / "tls.cfg"
        if o.tls:
            cert = pki.issue(lab.run_dir, self.listen_address(), self.name, o.certificate)
            side = "verify_certificate = no\nrequire_certificate = no\n"
            tls_config.write_text(
                f"[server:default]\nmethod = {o.tls_method}\n{side}"
                f"private_key = {cert.key}\ncertificate = {cert.cert}\n\n"
                f"[client:default]\nmethod = {o.tls_method}\n{side}"
            )
        cfg = workdir / "kamailio.cfg"
        cfg.write_text(
            render(
                "kamailio.cfg",
                address=self.listen_address(),
                sip_port=o.sip_port,
                udp=o.udp,
                tcp=o.tcp,
                ws=o.ws,
                ws_port=o.ws_port,
                rtpengine=o.rtpengine,
                domain=o.domain,
                children=o.children,
                debug=o.debug,
                ctl_socket=self.ctl_socket,
                users=o.users,
                tls=o.tls,
                tls_port=o.tls_port,
                wss_port=o.wss_port,
                tls_config=tls_config,
                unknown_secret=secrets.token_hex(16),
            )
        )
        return [
            self.binary,
            *("-f", str(cfg), "-DD", "-E", "-m", "32", "-M", "4"),
            *("-P", str(workdir / "kamailio.pid"), "-Y", str(workdir)),
        ]

    @property
    def ctl_socket(self) -> Path:
        assert self.workdir is not None
        assert self.lab is not None
        return self.lab.socket_path(self.node, self.name, "kamailio_ctl")  # fits sun_path

    def is_ready(self) -> bool:
        assert self.proc is not None
        addr, o = self.listen_address(), self.options
        checks = [("udp", o.sip_port, o.udp), ("tcp", o.sip_port, o.tcp), ("tcp", o.ws_port, o.ws)]
        checks += [("tcp", o.tls_port, o.tls), ("tcp", o.wss_port, o.tls and o.ws)]
        return self.ctl_socket.exists() and all(
            is_bound(self.proc.pid, proto, port, addr) for proto, port, on in checks if on
        )

    @property
    def uri(self) -> str:
        """SIP URI of the proxy, for outbound_proxy / registrar settings of clients."""
        return f"sip:{self.listen_address()}:{self.options.sip_port}"

    @property
    def tls_uri(self) -> str:
        """SIP URI of the proxy's TLS listener."""
        return f"sip:{self.listen_address()}:{self.options.tls_port};transport=tls"

    def rpc(self, *command: str, timeout: float = 5.0) -> str:
        """Run a Kamailio RPC command (kamcmd over the ctl unix socket) and return its output."""
        proc = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.ctl_socket}", *command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise ComponentError(
                self.name, f"rpc {' '.join(command)} failed: {proc.stderr.strip() or proc.stdout}"
            )
        return proc.stdout

    def contacts(self, user: str) -> list[str]:
        """Contact URIs registered for `user` at this registrar (empty when none)."""
        aor = f"{user}@{self.listen_address()}"
        try:
            out = self.rpc("ul.lookup", "location", aor)
        except ComponentError as exc:
            if "Not Found" in str(exc) or "AOR not found" in str(exc):
                return []
            raise
        return [
            line.split(":", 1)[1].strip().strip("<>")
            for line in out.splitlines()
            if line.strip().startswith("Address:")
        ]
