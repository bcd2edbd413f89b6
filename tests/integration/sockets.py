"""Tiny real-socket programs run inside lab nodes by the tests (no mocks: real UDP/TCP)."""

from __future__ import annotations

import json
import sys
from typing import Any

from harness.lab import Lab

UDP_SINK = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))
got = []
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        break
    got.append([addr[0], addr[1], data.decode()])
    s.sendto(b"echo:" + data, addr)
    if len(got) >= int(sys.argv[3]):
        break
print(json.dumps(got))
"""

UDP_SEND = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[3])))
s.settimeout(float(sys.argv[4]))
replies = []
for i in range(int(sys.argv[5])):
    s.sendto(f"probe-{i}".encode(), (sys.argv[1], int(sys.argv[2])))
    try:
        replies.append(s.recvfrom(2048)[0].decode())
    except socket.timeout:
        pass
print(json.dumps(replies))
"""

TCP_CONNECT = r"""
import socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    s.sendall(b"hello")
    print(s.recv(100).decode())
except OSError as e:
    print("FAIL", type(e).__name__)
"""

TCP_ECHO = r"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen()
print("listening", flush=True)
while True:
    c, a = srv.accept()
    c.sendall(b"from " + a[0].encode() + b" " + c.recv(100))
    c.close()
"""


def udp_exchange(
    lab: Lab,
    src: str,
    dst: str,
    dport: int,
    sport: int = 40000,
    count: int = 3,
    timeout: float = 3.0,
    to: str | None = None,
) -> tuple[list[Any], list[str]]:
    """UDP probes from src to dst (at address `to`, default dst's own); returns (what dst
    received [addr, port, text], replies at src)."""
    addr = to or str(lab.topology.node(dst).iface().address)
    sink = lab.spawn(
        dst,
        [sys.executable, "-c", UDP_SINK, str(dport), str(timeout + 1), str(count)],
        name=f"udpsink-{dport}",
    )
    lab.run(
        dst,
        [
            "sh",
            "-c",
            f"for i in $(seq 100); do ss -uln | grep -q :{dport} && exit 0; sleep 0.01; done; exit 1",
        ],
    )
    out = lab.run(
        src,
        [sys.executable, "-c", UDP_SEND, addr, str(dport), str(sport), str(timeout), str(count)],
    )
    sink.wait(timeout + 3)
    received = json.loads(sink.log_tail(1) or "[]")
    return received, json.loads(out.stdout)


def tcp_try(
    lab: Lab,
    src: str,
    dst: str,
    port: int,
    timeout: float = 1.0,
    to: str | None = None,
    to_port: int | None = None,
) -> str:
    """A TCP connect from src to dst's echo on `port` (reached at `to`:`to_port`)."""
    addr = to or str(lab.topology.node(dst).iface().address)
    lab.spawn(dst, [sys.executable, "-c", TCP_ECHO, str(port)], name=f"tcpecho-{port}")
    lab.run(
        dst,
        [
            "sh",
            "-c",
            f"for i in $(seq 100); do ss -tln | grep -q :{port} && exit 0; sleep 0.01; done; exit 1",
        ],
    )
    return lab.run(
        src, [sys.executable, "-c", TCP_CONNECT, addr, str(to_port or port), str(timeout)]
    ).stdout.strip()
