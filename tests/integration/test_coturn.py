"""coturn component: options, start/ready/stop, and real TURN allocations from another node."""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from pathlib import Path

import pytest

from harness.components import COMPONENTS
from harness.components.coturn import Coturn
from harness.components.ports import is_bound
from harness.errors import ComponentError

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"

# Runs inside peer-a: one allocation per case, prints what happened as JSON.
PROBE = """
import asyncio, json, ssl, sys
from aioice import stun, turn

class Sink:
    def connection_made(self, t): pass
    def datagram_received(self, d, a): pass
    def connection_lost(self, e): pass

async def one(server, user, password, transport, cafile):
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        t, _ = await asyncio.wait_for(turn.create_turn_endpoint(
            Sink, server_addr=tuple(server), username=user, password=password,
            ssl=ctx, transport=transport), 5)
    except stun.TransactionFailed as exc:
        return {"error": exc.response.attributes["ERROR-CODE"][0]}
    except Exception as exc:
        return {"error": type(exc).__name__ + ": " + str(exc)}
    relayed = t.get_extra_info("sockname")
    t.close()
    return {"relayed": list(relayed)}

async def main():
    cases = json.loads(sys.argv[1])
    print(json.dumps([await one(*c) for c in cases]))

asyncio.run(main())
"""


def test_registered_and_options_checked() -> None:
    assert COMPONENTS["coturn"] is Coturn
    with pytest.raises(ComponentError, match="option 'listen'"):
        Coturn("turn", "server", {"listen": 1})
    with pytest.raises(ComponentError, match="no listener enabled"):
        Coturn("turn", "server", {"udp": False, "tcp": False})
    with pytest.raises(ComponentError, match="port range"):
        Coturn("turn", "server", {"relay_ports": "10-5"})
    ports = Coturn("turn", "server", {"port": 443, "tls": True}).ports()
    assert ("udp", "0.0.0.0", 443) in ports and ("tcp", "0.0.0.0", 5349) in ports


@pytest.mark.lab
def test_allocations_over_udp_tcp_tls_and_refused_credentials() -> None:
    from harness.lab import Lab

    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        turn = Coturn("turn", "server", {"tls": True, "users": {"alice": "alice-pass-1"}})
        turn.start(lab)
        assert turn.proc is not None
        # a process in the server's namespace: /proc/<pid>/net shows that namespace's sockets
        witness = lab.spawn("server", ["sleep", "60"], name="witness")
        netns = os.readlink(f"/proc/{turn.proc.pid}/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{witness.pid}/ns/net") != netns:  # nsenter still entering
            assert time.monotonic() < deadline, "the witness never entered the server's namespace"
            time.sleep(0.01)
        try:
            addr = turn.listen_address()
            assert is_bound(witness.pid, "udp", 3478, addr)
            assert is_bound(witness.pid, "tcp", 5349, addr)
            assert turn.workdir is not None
            conf = (turn.workdir / "turnserver.conf").read_text()
            assert f"userdb={turn.workdir / 'turndb'}" in conf
            assert "denied-peer-ip=192.168.0.0-192.168.255.255" in conf
            # The server certificate names the IP, so clients can verify it.
            ssl.create_default_context(cafile=str(turn.ca_file))

            cases = [
                [(addr, 3478), "alice", "alice-pass-1", "udp", None],
                [(addr, 3478), "alice", "alice-pass-1", "tcp", None],
                [(addr, 5349), "alice", "alice-pass-1", "tcp", str(turn.ca_file)],
                [(addr, 3478), "alice", "wrong", "udp", None],
                [(addr, 3478), "mallory", "alice-pass-1", "tcp", None],
            ]
            out = lab.run("peer-a", [sys.executable, "-c", PROBE, json.dumps(cases)], timeout=30)
            results = json.loads(out.stdout)
            for ok in results[:3]:
                assert ok.get("relayed", [None])[0] == addr, results
            assert results[3] == {"error": 401} and results[4] == {"error": 401}, results

            log = turn.log_file.read_text()
            assert "user alice credentials are incorrect" in log
            assert "Cannot find credentials of user <mallory>" in log
            # a host name, not the address: Firefox refuses TURN over TLS to an IP literal
            assert turn.ice_server("tls")["urls"] == ["turns:server-eth0:5349?transport=tcp"]
            with pytest.raises(ComponentError, match="no user"):
                turn.ice_server("udp", user="bob")
        finally:
            turn.stop()
        assert turn.proc is not None and not turn.proc.alive()
        assert not is_bound(witness.pid, "udp", 3478, addr)  # the server's own namespace
        assert not is_bound(witness.pid, "tcp", 5349, addr)
