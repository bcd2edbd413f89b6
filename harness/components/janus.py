"""Janus with the SIP plugin, the HTTP (and optionally WebSocket) API and the admin API.

Janus loads every .so in its plugin and transport folders, so each instance gets
folders holding links to only the wanted ones. Its SIP stack (sofia-sip) busy-loops
on an unreachable name server: the lab's spawn gives it its own resolv.conf, and
the SIP plugin is pinned to the node's address so it never needs DNS.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.components import janus_diag
from harness.components.base import Component, ComponentOptions, register
from harness.components.ports import (
    WILDCARD,
    Endpoint,
    PortRange,
    is_bound,
    parse_range,
    port_range,
)
from harness.lazy import lazy
from harness.logfinding import LogFinding

pki = lazy("harness.components.pki")  # cryptography loads when a run issues a certificate

if TYPE_CHECKING:
    from harness.lab.lab import Lab

LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")
ADMIN_SECRET = "janusoverlord"


class JanusOptions(ComponentOptions):
    address: IPv4Address | None = None
    """Address for the APIs, ICE and SIP (default: the node's first interface)."""
    interface: str | None = None
    """Only gather ICE candidates on this interface (default: the one holding `address`)."""
    http_port: int = Field(8088, ge=1, le=65535)
    admin_port: int = Field(7088, ge=1, le=65535)
    ws: bool = False
    ws_port: int = Field(8188, ge=1, le=65535)
    rtp_port_range: PortRange = "20000-20199"
    """WebRTC side media ports."""
    sip_rtp_port_range: PortRange = "21000-21199"
    """SIP side (plain RTP) media ports of the SIP plugin."""
    stun_server: str | None = None
    """host:port of a STUN server, for server-reflexive candidates behind NAT."""
    turn_server: str | None = None
    """host:port of a TURN server Janus relays through itself."""
    turn_type: Literal["udp", "tcp", "tls"] = "udp"
    turn_user: str | None = None
    turn_password: str | None = None
    nat_1_1: IPv4Address | None = None
    """Public address of a 1:1 NAT in front of Janus: put in its host candidates."""
    keep_private_host: bool = False
    """With `nat_1_1`, offer the private host candidate too (the public one comes first)."""
    full_trickle: bool = False
    ice_lite: bool = False
    dtls_cert: Path | None = None
    """PEM certificate for DTLS (default: Janus makes one at start)."""
    dtls_key: Path | None = None
    sips: bool = False
    """Give the SIP plugin's stack a TLS identity from the run's CA (sofia-sip's certificate
    folder: agent.pem, cafile.pem), so accounts registered with `sips` can use TLS."""
    session_timeout: int = Field(60, ge=0)
    debug_level: int = Field(4, ge=0, le=7)
    admin_secret: str = ADMIN_SECRET


def jcfg(sections: dict[str, dict[str, Any]]) -> str:
    """Render Janus's libconfig format: `section: { key = value }`."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = []
    for name, entries in sections.items():
        out.append(f"{name}: {{")
        out += [f"\t{k} = {value(v)}" for k, v in entries.items() if v is not None]
        out.append("}")
    return "\n".join(out) + "\n"


@register
class Janus(Component):
    kind = "janus"
    Options = JanusOptions
    binary = "janus"
    options: JanusOptions

    def listen_address(self) -> str:
        return str(self.options.address) if self.options.address else self.address

    def ports(self) -> list[Endpoint]:
        o = self.options
        addr = str(o.address or WILDCARD)
        found: list[Endpoint] = [("tcp", addr, o.http_port), ("tcp", addr, o.admin_port)]
        if o.ws:
            found.append(("tcp", addr, o.ws_port))
        found += port_range("udp", addr, *parse_range(o.rtp_port_range))
        found += port_range("udp", addr, *parse_range(o.sip_rtp_port_range))
        return found

    @property
    def url(self) -> str:
        return f"http://{self.listen_address()}:{self.options.http_port}/janus"

    @property
    def admin_url(self) -> str:
        return f"http://{self.listen_address()}:{self.options.admin_port}/admin"

    def _interface(self, lab: Lab) -> str:
        if self.options.interface:
            return self.options.interface
        addr = self.listen_address()
        for iface in lab.topology.node(self.node).interfaces.values():
            if str(iface.address) == addr:
                return iface.name
        return lab.topology.node(self.node).iface().name

    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        o = self.options
        addr = self.listen_address()
        conf, plugins, transports, empty = (
            workdir / d for d in ("conf", "plugins", "transports", "empty")
        )
        for folder, libs in (
            (conf, []),
            (plugins, ["plugins/libjanus_sip.so"]),
            (
                transports,
                ["transports/libjanus_http.so"]
                + (["transports/libjanus_websockets.so"] if o.ws else []),
            ),
            (empty, []),
        ):
            folder.mkdir(exist_ok=True)
            for lib in libs:
                link = folder / Path(lib).name
                if not link.exists():
                    link.symlink_to(LIBDIR / lib)
        turn_host, _, turn_port = (o.turn_server or "").partition(":")
        stun_host, _, stun_port = (o.stun_server or "").partition(":")
        (conf / "janus.jcfg").write_text(
            jcfg(
                {
                    "general": {
                        "configs_folder": str(conf),
                        "plugins_folder": str(plugins),
                        "transports_folder": str(transports),
                        "events_folder": str(empty),
                        "loggers_folder": str(empty),
                        "log_to_stdout": True,
                        "debug_level": o.debug_level,
                        "debug_timestamps": True,
                        "admin_secret": o.admin_secret,
                        "interface": addr,
                        "server_name": f"rtc-harness-{self.name}",
                        "session_timeout": o.session_timeout,
                    },
                    "certificates": {
                        "cert_pem": o.dtls_cert and str(o.dtls_cert),
                        "cert_key": o.dtls_key and str(o.dtls_key),
                    },
                    "media": {"rtp_port_range": o.rtp_port_range},
                    "nat": {
                        "nice_debug": False,
                        "ice_enforce_list": self._interface(lab),
                        "ignore_mdns": True,
                        "full_trickle": o.full_trickle,
                        "ice_lite": o.ice_lite,
                        "stun_server": stun_host or None,
                        "stun_port": int(stun_port) if stun_port else None,
                        "nat_1_1_mapping": o.nat_1_1 and str(o.nat_1_1),
                        "keep_private_host": o.keep_private_host if o.nat_1_1 else None,
                        "turn_server": turn_host or None,
                        "turn_port": int(turn_port) if turn_port else None,
                        "turn_type": o.turn_type if o.turn_server else None,
                        "turn_user": o.turn_user,
                        "turn_pwd": o.turn_password,
                    },
                    "plugins": {},
                    "transports": {},
                    "events": {"broadcast": False},
                }
            )
        )
        (conf / "janus.transport.http.jcfg").write_text(
            jcfg(
                {
                    "general": {
                        "json": "indented",
                        "base_path": "/janus",
                        "http": True,
                        "port": o.http_port,
                        "ip": addr,
                        "https": False,
                    },
                    "admin": {
                        "admin_base_path": "/admin",
                        "admin_http": True,
                        "admin_port": o.admin_port,
                        "admin_ip": addr,
                        "admin_https": False,
                    },
                    "cors": {},
                }
            )
        )
        if o.ws:
            (conf / "janus.transport.websockets.jcfg").write_text(
                jcfg(
                    {
                        "general": {
                            "json": "indented",
                            "ws": True,
                            "ws_port": o.ws_port,
                            "ws_ip": addr,
                            "wss": False,
                        },
                        "admin": {"admin_ws": False, "admin_wss": False},
                    }
                )
            )
        sip_tls: dict[str, Any] = {}
        if o.sips:
            certs = workdir / "sips"
            certs.mkdir(exist_ok=True)
            mine = pki.issue(lab.run_dir, addr, self.name)
            (certs / "agent.pem").write_text(mine.key.read_text() + mine.cert.read_text())
            (certs / "cafile.pem").write_text(mine.ca.read_text())
            sip_tls["sips_certs_dir"] = str(certs)
        (conf / "janus.plugin.sip.jcfg").write_text(
            jcfg(
                {
                    "general": {
                        **sip_tls,
                        "local_ip": addr,
                        "sdp_ip": addr,
                        "keepalive_interval": 120,
                        "behind_nat": False,
                        "user_agent": "rtc-harness Janus SIP plugin",
                        "register_ttl": 3600,
                        "rtp_port_range": o.sip_rtp_port_range,
                        "events": False,
                    }
                }
            )
        )
        return [self.binary, "-C", str(conf / "janus.jcfg"), "-F", str(conf), "-o"]

    def spawn_env(self) -> dict[str, str]:
        # sofia-sip's TPORT_LOG: every SIP message the SIP plugin sends and receives goes
        # to Janus's log with a microsecond time, so a run that hits its ACK race (a 180
        # relayed after the 200: janus_diag.py) says so. A container keeps its image's
        # environment plus this; a host process inherits the harness's.
        extra = {"TPORT_LOG": "1"}
        return extra if self.image else {**os.environ, **extra}

    def log_findings(self) -> list[LogFinding]:
        """Its SIP stack's ACK race (janus_diag.py), when the log shows it."""
        found = janus_diag.diagnose(self.log_text())
        return [found] if found else []

    def is_ready(self) -> bool:
        assert self.proc is not None
        pid, addr = self.proc.pid, self.listen_address()
        tcp = [self.options.http_port, self.options.admin_port]
        if self.options.ws:
            tcp.append(self.options.ws_port)
        return all(is_bound(pid, "tcp", port, addr) for port in tcp) and self._sip_loaded()

    def _sip_loaded(self) -> bool:
        return "JANUS SIP plugin initialized" in self.log_tail(200)
