"""coturn as a TURN/STUN server with long-term credentials.

UDP and TCP listeners on one port (3478 by default, 443 for networks that only
let web ports out), TLS when asked (a certificate for the server's IP address
from the run's own CA, harness/components/pki.py, which the run's peers trust). Each instance keeps
its own user database and log in its work directory: the Debian default
/var/lib/turn/turndb would be shared between labs.
"""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from harness.components.base import Component, ComponentOptions, register
from harness.components.ports import Endpoint, is_bound, parse_range, port_range
from harness.errors import ComponentError
from harness.lazy import lazy

pki = lazy("harness.components.pki")  # cryptography loads when a run issues a certificate

if TYPE_CHECKING:
    from harness.config.forwards import Forward
    from harness.lab.lab import Lab

NODE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")  # a topology node's name

PRIVATE_PEERS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
]


class CoturnOptions(ComponentOptions):
    address: IPv4Address | None = None
    """Listening and relay address (default: the node's first interface)."""
    port: int = Field(3478, ge=1, le=65535)
    udp: bool = True
    tcp: bool = True
    tls: bool = False
    tls_port: int = Field(5349, ge=1, le=65535)
    realm: str = "harness.test"
    users: dict[str, str] = Field(default_factory=lambda: {"harness": "harness-secret"})
    """Long-term credentials, user -> password."""
    relay_ports: str = "49152-49407"
    """Range of relayed transport addresses (allocations)."""
    deny_private_peers: bool = True
    """Refuse permissions for RFC 1918 and carrier-NAT peers (production hardening); a
    range holding the server's own address stays allowed. Without it, a check towards a
    peer's private host candidate makes coturn send to an unroutable address."""
    verbose: bool = False
    public_address: str | None = None
    """Where clients reach a server behind a NAT router with port forwards: an IPv4
    address, or that router's name (its WAN address). The router must forward `port`
    and `relay_ports` here. ICE server URLs then use it."""
    map_external_ip: bool = True
    """With `public_address`: tell coturn (`external-ip=PUBLIC/PRIVATE`), so the relayed
    addresses it hands out are public. false reproduces the misconfiguration: relayed
    addresses carry the private one."""
    stun_backward_compatibility: bool = False
    """Answer classic RFC 3489 Binding requests (no magic cookie), as a default coturn does;
    libnice (Janus) discovers its server-reflexive candidate with them."""

    @model_validator(mode="after")
    def _check(self) -> CoturnOptions:
        parse_range(self.relay_ports)
        if not (self.udp or self.tcp or self.tls):
            raise ValueError("no listener enabled (udp, tcp and tls are all off)")
        if not self.users:
            raise ValueError("at least one user is needed for long-term credentials")
        if self.public_address is not None:
            try:
                ipaddress.IPv4Address(self.public_address)
            except ValueError:
                if not NODE_NAME.match(self.public_address):
                    raise ValueError(
                        f"public_address {self.public_address!r} is neither an IPv4 address "
                        "nor a router name"
                    ) from None
        return self


@register
class Coturn(Component):
    kind = "coturn"
    Options = CoturnOptions
    binary = "turnserver"
    options: CoturnOptions

    def listen_address(self) -> str:
        return str(self.options.address) if self.options.address else self.address

    def public_ip(self) -> str | None:
        """The address clients use when the server is behind a NAT (None: no NAT)."""
        pub = self.options.public_address
        if pub is None or self.lab is None:
            return pub
        try:
            return str(ipaddress.IPv4Address(pub))
        except ValueError:
            pass
        topo = self.lab.topology
        router = topo.nodes.get(pub)
        if router is None or not router.is_router or router.nat is None:
            raise ComponentError(self.name, f"public_address: {pub!r} is not a NAT router")
        self._check_forwards(router.forwards, router.name)
        return str(router.wan.address)

    def tls_host(self) -> str | None:
        """The lab's /etc/hosts name for the `turns:` URL: Firefox refuses TURN over TLS to
        an IP literal (nricectx.cpp, "Refuse to try TLS without an FQDN"), so every peer
        gets a name, which the certificate carries too. None: a public_address given as an
        IP (no name for it)."""
        if self.lab is None:
            return None
        pub = self.options.public_address
        if pub is not None:
            return None if NODE_NAME.match(pub) is None else f"{pub}-wan"
        addr = self.listen_address()
        node = self.lab.topology.node(self.node)
        iface = next((i for i in node.interfaces.values() if str(i.address) == addr), None)
        return f"{self.node}-{iface.name}" if iface else None

    def _check_forwards(self, forwards: list[Forward], router: str) -> None:
        """The router must forward the listening port(s) and the relay range to this node."""
        o = self.options
        low, high = parse_range(o.relay_ports)
        need = [("udp", low, high)] if o.udp else []
        need += [(p, o.port, o.port) for p, on in (("udp", o.udp), ("tcp", o.tcp)) if on]
        if o.tls:
            need.append(("tcp", o.tls_port, o.tls_port))
        for proto, lo, hi in need:
            if not any(
                f.protocol == proto
                and f.node == self.node
                and f.low <= lo
                and hi <= f.high
                and f.to_port in (None, lo)
                for f in forwards
            ):
                raise ComponentError(
                    self.name,
                    f"public_address: router {router!r} forwards no {proto} {lo}-{hi} to "
                    f"{self.node!r} (add it to the router's `forwards:`)",
                )

    def ports(self) -> list[Endpoint]:
        o = self.options
        addr = str(o.address) if o.address else "0.0.0.0"
        found: list[Endpoint] = []
        if o.udp:
            found.append(("udp", addr, o.port))
        if o.tcp:
            found.append(("tcp", addr, o.port))
        if o.tls:
            found.append(("tcp", addr, o.tls_port))
        low, high = parse_range(o.relay_ports)
        return found + port_range("udp", addr, low, high)

    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        o = self.options
        addr = self.listen_address()
        low, high = parse_range(o.relay_ports)
        lines = [
            f"listening-ip={addr}",
            f"relay-ip={addr}",
            f"listening-port={o.port}",
            f"min-port={low}",
            f"max-port={high}",
            "lt-cred-mech",
            "fingerprint",
            f"realm={o.realm}",
            *(f"user={user}:{password}" for user, password in o.users.items()),
            f"userdb={workdir / 'turndb'}",
            f"log-file={workdir / 'turnserver.log'}",
            "simple-log",
            f"pidfile={workdir / 'turnserver.pid'}",
            "no-cli",
            "no-dtls",
            "no-rfc5780",
        ]
        public = self.public_ip()
        if public is not None and o.map_external_ip:
            lines.append(f"external-ip={public}/{addr}")
        if not o.stun_backward_compatibility:
            lines.append("no-stun-backward-compatibility")
        if o.deny_private_peers:
            own = ipaddress.ip_address(addr)
            lines += [
                f"denied-peer-ip={net[0]}-{net[-1]}" for net in PRIVATE_PEERS if own not in net
            ]
        if not o.udp:
            lines.append("no-udp")
        if not o.tcp:
            lines.append("no-tcp")
        if o.tls:
            host = self.tls_host()
            mine = pki.issue(
                lab.run_dir, public or addr, self.name, dns_names=(host,) if host else ()
            )
            lines += [f"tls-listening-port={o.tls_port}", f"cert={mine.cert}", f"pkey={mine.key}"]
        else:
            lines.append("no-tls")
        if o.verbose:
            lines.append("verbose")
        conf = workdir / "turnserver.conf"
        conf.write_text("\n".join(lines) + "\n")
        return [self.binary, "-c", str(conf)]  # also logs to stdout: the lab log, error tails

    def is_ready(self) -> bool:
        assert self.proc is not None
        addr, o, pid = self.listen_address(), self.options, self.proc.pid
        checks = [("udp", o.port, o.udp), ("tcp", o.port, o.tcp), ("tcp", o.tls_port, o.tls)]
        return all(is_bound(pid, proto, port, addr) for proto, port, on in checks if on)

    @property
    def log_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "turnserver.log"

    @property
    def ca_file(self) -> Path:
        """PEM to trust for `turns:`: the run's CA, which signed the server certificate."""
        if not self.options.tls or self.lab is None:
            raise ComponentError(self.name, "TLS is off (option tls: true)")
        anchor = pki.trust_anchor(self.lab.run_dir)
        assert anchor is not None
        return anchor

    def ice_server(self, transport: str = "udp", user: str | None = None) -> dict[str, Any]:
        """An RTCIceServer dict (docs/peers.md `configure`) for this server over `transport`.

        `transport` is "udp", "tcp" or "tls" (a `turns:` URL).
        """
        o = self.options
        user = user or next(iter(o.users))
        if user not in o.users:
            raise ComponentError(self.name, f"no user {user!r}")
        addr = self.public_ip() or self.listen_address()
        enabled = {"udp": o.udp, "tcp": o.tcp, "tls": o.tls}
        if not enabled.get(transport):
            raise ComponentError(self.name, f"transport {transport!r} is not enabled")
        if transport == "tls":
            url = f"turns:{self.tls_host() or addr}:{o.tls_port}?transport=tcp"
        else:
            url = f"turn:{addr}:{o.port}?transport={transport}"
        return {"urls": [url], "username": user, "credential": o.users[user]}

    def stun_server(self, transport: str = "udp") -> dict[str, Any]:
        """An RTCIceServer dict using this server for STUN only: no credentials, never relays."""
        o = self.options
        if transport != "udp" or not o.udp:
            raise ComponentError(self.name, "STUN is offered over UDP only here")
        return {"urls": [f"stun:{self.public_ip() or self.listen_address()}:{o.port}"]}
