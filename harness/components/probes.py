"""Ready probes for programs the harness has no adapter for: a TCP port that accepts,
a UDP port that is bound, an HTTP status, or a log line.

Each probe looks from inside the component's node (a socket made in its network
namespace, the namespace's own /proc tables), so it sends nothing out of the lab and
works the same whatever runtime started the program.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.components import ports
from harness.components.ports import WILDCARD, netns_socket
from harness.runtime.nsutil import run_in_netns

if TYPE_CHECKING:
    from harness.lab.lab import Lab

Proto = Literal["tcp", "udp"]


class ReadySpec(BaseModel):
    """Exactly one of `tcp`, `udp`, `http`, `log`."""

    model_config = ConfigDict(extra="forbid")
    tcp: int | None = Field(None, ge=1, le=65535)
    """A TCP port on the component's address that accepts a connection."""
    udp: int | None = Field(None, ge=1, le=65535)
    """A UDP port bound in the node (seen in its /proc table: no packet is sent)."""
    http: str | None = None
    """`PORT/PATH` (e.g. `8088/janus/info`) answered over HTTP with `status`."""
    status: int = Field(200, ge=100, le=599)
    log: str | None = None
    """A regular expression the program's log must match."""
    timeout: float = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _one(self) -> ReadySpec:
        given = [k for k in ("tcp", "udp", "http", "log") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of tcp, udp, http, log (got {given or 'none'})")
        if self.http is not None and not re.fullmatch(r"\d{1,5}(/\S*)?", self.http):
            raise ValueError(f"http {self.http!r} is not PORT/PATH, e.g. 8088/janus/info")
        if self.log is not None:
            re.compile(self.log)
        return self

    def describe(self) -> str:
        if self.http is not None:
            return f"HTTP {self.status} from port {self.http}"
        if self.log is not None:
            return f"log line /{self.log}/"
        return f"tcp port {self.tcp}" if self.tcp else f"udp port {self.udp} bound"


@dataclass
class Probe:
    """One ready check of one component; `__call__` is cheap and never blocks long."""

    spec: ReadySpec
    lab: Lab
    node: str
    address: str

    def __call__(self, log_text: str) -> bool:
        s = self.spec
        if s.log is not None:
            return re.search(s.log, log_text, re.MULTILINE) is not None
        if s.udp is not None:
            return s.udp in bound_ports(self.lab.netns(self.node), "udp")
        if s.tcp is not None:
            return self._connect(s.tcp) is not None
        port, _, path = (s.http or "").partition("/")
        return http_status(self._connect(int(port)), self.address, "/" + path) == s.status

    def _connect(self, port: int) -> socket.socket | None:
        sock = netns_socket(self.lab.netns(self.node))
        sock.setblocking(True)
        sock.settimeout(0.5)
        try:
            sock.connect((self.address, port))
        except OSError:
            sock.close()
            return None
        return sock


def http_status(sock: socket.socket | None, host: str, path: str) -> int | None:
    """Status code of `GET path` over an open socket (closed afterwards)."""
    if sock is None:
        return None
    try:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        first = sock.recv(256).split(b"\r\n", 1)[0].split()
        return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None
    except OSError:
        return None
    finally:
        sock.close()


def bound_ports(netns: str, proto: Proto) -> set[int]:
    """Ports bound (UDP) or listening (TCP) in a namespace, from its own /proc table."""
    return {
        port for _, port in run_in_netns(netns, lambda: ports.bound_ports("thread-self", proto))
    }


def ports_in_use(lab: Lab, node: str, wanted: list[tuple[str, str, int]]) -> list[str]:
    """Which of `wanted` (proto, address, port) something in the node already binds."""
    netns = lab.netns(node)
    taken = {p: bound_ports(netns, p) for p in ("tcp", "udp")}
    return [
        f"{proto} {addr if addr != WILDCARD else '*'}:{port}"
        for proto, addr, port in wanted
        if port in taken.get(proto, set())
    ]
