"""TLS connections read by harness/analysis/tls.py equal tshark's TLS dissection.

tests/data/pcaps/tls/sip-tls-untrusted-proxy.pcap is Kamailio's capture (proxy-eth0) of
scenarios/gateway/sip-tls.yaml's `untrusted` cell: Chromium refusing the wss:// certificate
(fatal certificate_unknown alert) and Janus's SIP plugin registering and calling over TLS.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.analysis.tls import ALERTS, HANDSHAKES, read_connections
from tests.refragment import fragmented

PCAP = (
    Path(__file__).resolve().parents[1] / "data" / "pcaps" / "tls" / "sip-tls-untrusted-proxy.pcap"
)


def test_refused_and_established() -> None:
    (wss,) = read_connections(PCAP, 8443)
    assert wss.c.alerts == ["certificate_unknown"] and not wss.established
    assert wss.s.handshakes == [
        "ServerHello",
        "Certificate",
        "ServerKeyExchange",
        "ServerHelloDone",
    ]
    (sip,) = read_connections(PCAP, 5061)
    assert sip.established and sip.c.app_records > 2 and sip.s.app_records > 2


@pytest.mark.parametrize("port", [8443, 5061])
def test_fragmented_datagrams_read_whole(tmp_path: Path, port: int) -> None:
    """The same capture with every TCP segment in IP fragments of 64 bytes reads the same
    connections (it crashed on a fragment)."""
    moved = tmp_path / "fragmented.pcap"
    assert fragmented(PCAP, moved, 64) > 20

    def seen(path: Path) -> list[tuple[object, ...]]:
        return [(c.client, c.server, c.t, c.c, c.s) for c in read_connections(path, port)]

    assert seen(moved) == seen(PCAP) and seen(PCAP)


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")
@pytest.mark.parametrize("port", [8443, 5061])
def test_same_as_tshark(port: int) -> None:
    argv = [
        "tshark",
        "-n",
        "-r",
        str(PCAP),
        "-d",
        f"tcp.port=={port},tls",
        "-Y",
        f"tls and tcp.port=={port}",
    ]
    argv += [
        "-T",
        "fields",
        "-e",
        "tcp.dstport",
        "-e",
        "tls.handshake.type",
        "-e",
        "tls.alert_message.desc",
    ]
    argv += ["-e", "tls.record.content_type"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    hs: dict[bool, list[str]] = {True: [], False: []}  # to the server?
    alerts: list[str] = []
    app = {True: 0, False: 0}
    for line in out.splitlines():
        dport, types, alert, ctypes = (line.split("\t") + ["", "", ""])[:4]
        to_server = int(dport) == port
        hs[to_server] += [HANDSHAKES.get(int(t), t) for t in types.split(",") if t]
        alerts += [ALERTS.get(int(a), a) for a in alert.split(",") if a]
        app[to_server] += ctypes.split(",").count("23")
    (conn,) = read_connections(PCAP, port)
    # handshake messages in clear (tshark does not name the encrypted Finished either)
    assert (conn.c.handshakes, conn.s.handshakes) == (hs[True], hs[False])
    assert [a for a in conn.c.alerts + conn.s.alerts if a != "encrypted"] == alerts
    assert (conn.c.app_records, conn.s.app_records) == (app[True], app[False])
