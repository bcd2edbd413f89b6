"""Make the committed test captures from real calls in a lab (run as root).

    .venv/bin/python tests/data/make_pcaps.py            # all captures into tests/data/pcaps/
    .venv/bin/python tests/data/make_pcaps.py direct sip-udp

Calls: aiortc<->aiortc direct (signalling is an HTTP POST of a JSEP offer, so the
SDPs are in the capture too), a 20 s one for the benchmark, the same relayed through
coturn (offerer relay-only),
sipp UAC->UAS with G.711 RTP over UDP and over TCP, an INVITE with a WebRTC-sized SDP
over UDP (fragmented by the kernel), REGISTER/OPTIONS to Kamailio over WebSocket, and
RFC 4733 DTMF on Janus's SIP leg (a gateway scenario's capture), and the SIP of Janus's ACK
race forced by janus-sip-late-180.yaml (the run of its known failure). The same file runs the
aiortc peers inside the lab nodes: `make_pcaps.py peer offer|answer ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the script runs before sys.path has the repo
    from aiortc.mediastreams import MediaStreamTrack

    from harness.lab import Lab
    from harness.runtime.base import NodeProcess

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "pcaps"
PY = sys.executable
CALL_SECONDS = 3.0

# ------------------------------------------------------------------ aiortc peer (in a node)


async def read_json(reader: asyncio.StreamReader) -> Any:
    """The JSON body of one HTTP message (Janus-style signalling between the two peers)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return json.loads(await reader.readexactly(length))


async def _peer(role: str, addr: str, turn: str | None, seconds: float) -> None:
    from aiortc import (
        RTCConfiguration,
        RTCIceServer,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import AudioStreamTrack

    servers = [RTCIceServer(urls=f"turn:{turn}?transport=udp", username="lab", credential="labpw")]
    config = RTCConfiguration(iceServers=servers) if turn else RTCConfiguration(iceServers=[])
    if turn:
        from aiortc import RTCIceTransportPolicy

        config.iceTransportPolicy = RTCIceTransportPolicy.RELAY
    pc = RTCPeerConnection(config)
    done = asyncio.Event()

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        async def drain() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:
                    return

        asyncio.ensure_future(drain())

    host, port = addr.rsplit(":", 1)
    if role == "answer":

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            offer = (await read_json(reader))["jsep"]
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
            pc.addTrack(AudioStreamTrack())
            await pc.setLocalDescription(await pc.createAnswer())
            body = json.dumps(
                {"janus": "event", "jsep": {"type": "answer", "sdp": pc.localDescription.sdp}}
            ).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            writer.close()
            done.set()

        server = await asyncio.start_server(handle, host, int(port))
        await asyncio.wait_for(done.wait(), 20)
        server.close()
        await asyncio.sleep(seconds + 2)
    else:
        pc.addTrack(AudioStreamTrack())
        await pc.setLocalDescription(await pc.createOffer())
        body = json.dumps(
            {"janus": "message", "jsep": {"type": "offer", "sdp": pc.localDescription.sdp}}
        ).encode()
        for _ in range(50):
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise SystemExit("answerer not reachable")
        writer.write(
            f"POST /janus HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        answer = (await read_json(reader))["jsep"]
        writer.close()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        deadline = time.monotonic() + 15
        while pc.connectionState != "connected" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if pc.connectionState != "connected":
            raise SystemExit(f"not connected: {pc.connectionState}")
        await asyncio.sleep(seconds)
    await pc.close()


async def _ws_register(addr: str) -> None:
    """REGISTER then OPTIONS over SIP-over-WebSocket (RFC 7118), masked client frames."""
    import os

    host, port = addr.rsplit(":", 1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    writer.write(
        f"GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: sip\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise SystemExit(f"no websocket upgrade: {head!r}")
    for n, method in enumerate(("REGISTER", "OPTIONS"), start=1):
        text = (
            f"{method} sip:{host} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{n}ws\r\n"
            f"Max-Forwards: 70\r\nTo: <sip:alice@{host}>\r\nFrom: <sip:alice@{host}>;tag=ws{n}\r\n"
            f"Call-ID: ws-call-{n}\r\nCSeq: {n} {method}\r\n"
            f"Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=60\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
        writer.write(bytes([0x81, 0x80 | 126]) + len(text).to_bytes(2, "big") + mask + body)
        await writer.drain()
        first = await asyncio.wait_for(reader.readexactly(2), 5)
        size = first[1] & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        reply = await asyncio.wait_for(reader.readexactly(size), 5)
        if not reply.startswith(b"SIP/2.0 200"):
            raise SystemExit(f"{method}: {reply[:80]!r}")
    writer.write(bytes([0x88, 0x80]) + os.urandom(4))
    await writer.drain()
    writer.close()


# ------------------------------------------------------------------ the lab side (root)


def _lab(topology: str) -> Lab:
    sys.path.insert(0, str(ROOT))
    from harness.lab import Lab

    return Lab(ROOT / "topologies" / f"{topology}.yaml")


def _addr(lab: Lab, node: str) -> str:
    return str(lab.topology.node(node).iface("eth0").address)


def _keep(files: list[Path], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files[0], target)
    print(f"{target}: {target.stat().st_size} bytes")
    return target


def _wait(proc: NodeProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.alive():
        proc.stop()
        raise SystemExit(f"{proc} did not finish:\n{proc.log_tail(30)}")


def make_aiortc(target: Path, relayed: bool, seconds: float = CALL_SECONDS) -> Path:
    """aiortc offerer on peer-a, answerer on peer-b; capture on peer-a's eth0."""
    with _lab("open-internet") as lab:
        b = _addr(lab, "peer-b")
        turn = None
        if relayed:
            s = _addr(lab, "server")
            work = lab.workdir("server", "coturn")
            conf = work / "turnserver.conf"
            conf.write_text(
                f"listening-ip={s}\nrelay-ip={s}\nlistening-port=3478\n"
                "min-port=49152\nmax-port=49200\nlt-cred-mech\nuser=lab:labpw\n"
                f"realm=lab\nuserdb={work / 'turndb'}\nno-tls\nno-dtls\nno-cli\n"
                "fingerprint\nno-stdout-log\nsimple-log\n"
                f"log-file={work / 'turn.log'}\n"
            )
            lab.spawn("server", ["turnserver", "-c", conf], name="coturn")
            time.sleep(0.3)
            turn = f"{s}:3478"
        cap = lab.capture([("peer-a", "eth0")])
        script = Path(__file__).resolve()
        secs = str(seconds)
        answer = lab.spawn(
            "peer-b", [PY, script, "peer", "answer", f"{b}:8088", "--seconds", secs], name="ans"
        )
        argv: list[str | Path] = [PY, script, "peer", "offer", f"{b}:8088", "--seconds", secs]
        if turn:
            argv += ["--turn", turn]
        offer = lab.spawn("peer-a", argv, name="off")
        _wait(offer, 30 + seconds)
        _wait(answer, 15)
        files = cap.stop()
        if "not connected" in offer.log_tail(5):
            raise SystemExit(offer.log_tail(30))
        return _keep(files, target)


def make_sipp(target: Path, transport: str, scenario: str = "") -> Path:
    """sipp UAC plays G.711 RTP to a UAS that echoes it; capture on peer-a's eth0.

    With `scenario` (a file in tests/data/sipp/) the UAC runs that instead of uac_pcap.
    """
    with _lab("open-internet") as lab:
        a, b = _addr(lab, "peer-a"), _addr(lab, "peer-b")
        t = ["-t", "t1"] if transport == "tcp" else ["-t", "u1"]
        uas = lab.spawn(
            "peer-b",
            ["sipp", "-sn", "uas", "-i", b, "-p", "5060", "-rtp_echo", "-m", "1", *t],
            name="uas",
        )
        del uas
        work = lab.workdir("peer-a", "uac")
        (work / "pcap").mkdir(exist_ok=True)
        for media in Path("/usr/share/sip-tester").glob("*.pcap"):
            shutil.copyfile(media, work / "pcap" / media.name)
        uac_sf = (
            ["-sf", str(ROOT / "tests/data/sipp" / scenario)] if scenario else ["-sn", "uac_pcap"]
        )
        cap = lab.capture([("peer-a", "eth0")])
        time.sleep(0.3)
        uac = lab.spawn(
            "peer-a",
            ["sipp", *uac_sf, "-i", a, "-p", "5070", "-m", "1", *t, f"{b}:5060"],
            name="uac",
            cwd=work,
        )
        _wait(uac, 30)
        time.sleep(0.5)
        files = cap.stop()
        return _keep(files, target)


def make_sip_ws(target: Path) -> Path:
    """REGISTER and OPTIONS to Kamailio over WebSocket; capture on peer-a's eth0."""
    from harness.components.kamailio import Kamailio

    with _lab("open-internet") as lab:
        kam = Kamailio("kamailio", "server", {"ws": True, "udp": False, "tcp": False})
        kam.start(lab)
        s = _addr(lab, "server")
        cap = lab.capture([("peer-a", "eth0")])
        script = Path(__file__).resolve()
        client = lab.spawn("peer-a", [PY, script, "ws", f"{s}:8080"], name="ws")
        _wait(client, 20)
        time.sleep(0.3)
        files = cap.stop()
        if client.returncode != 0:
            raise SystemExit(client.log_tail(20))
        return _keep(files, target)


def from_scenario(file: str, cell: str, capture: str, out: Path) -> None:
    """Copy one capture of a gateway scenario's cell, run here and passed."""
    from harness.config.scenario import load_scenarios
    from harness.scenario.runner import run_scenario_sync

    path = ROOT / "scenarios" / "gateway" / file
    sc = next(s for s in load_scenarios(path) if s.name == cell)
    result = run_scenario_sync(sc, seed=1)
    if not result.passed:
        raise SystemExit(f"{sc.name} failed: {result.error or result.checks}")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(next(p for p in map(Path, result.pcaps) if p.name == capture), out)


def from_known_failure(file: str, cell: str, captures: dict[str, Path], tries: int = 10) -> None:
    """The SIP of captures of a gateway scenario's cell, from its first run (seeds 1, 2, ...)
    whose verdict is the cell's known failure."""
    import subprocess

    from harness.config.scenario import load_scenarios
    from harness.scenario.runner import run_scenario_sync
    from harness.scenario.verdict import XFAIL, decide

    sc = next(s for s in load_scenarios(ROOT / "scenarios" / "gateway" / file) if s.name == cell)
    for seed in range(1, tries + 1):
        result = run_scenario_sync(sc, seed=seed)
        if decide(result, sc.spec.known_failure).state == XFAIL:
            break
    else:
        raise SystemExit(f"{cell}: no known failure in {tries} runs")
    for capture, out in captures.items():
        pcap = next(p for p in map(Path, result.pcaps) if p.name == capture)
        subprocess.run(["tshark", "-r", pcap, "-Y", "sip", "-F", "pcap", "-w", out], check=True)


MAKERS = {
    "direct": lambda: make_aiortc(OUT / "aiortc-direct.pcap", relayed=False),
    "relayed": lambda: make_aiortc(OUT / "aiortc-relayed.pcap", relayed=True),
    "long": lambda: make_aiortc(OUT / "aiortc-long.pcap", relayed=False, seconds=20.0),
    "sip-udp": lambda: make_sipp(OUT / "sipp-udp.pcap", "udp"),
    "sip-tcp": lambda: make_sipp(OUT / "sipp-tcp.pcap", "tcp"),
    "sip-fragmented": lambda: make_sipp(
        OUT / "sipp-udp-fragmented.pcap", "udp", "uac-fragmented-invite.xml"
    ),
    "sip-ws": lambda: make_sip_ws(OUT / "sip-ws.pcap"),
    # RFC 4733 relayed by Janus (the browser's 369) and sent by baresip (4), SIP leg
    "janus-dtmf": lambda: from_scenario(
        "janus-dtmf-rfc4733.yaml",
        "janus-dtmf-rfc4733-chromium",
        "peer-b-eth0.pcap",
        OUT / "janus-dtmf-sip.pcap",
    ),
    # Janus's ACK race, forced (the 180 held until its 200 passed): SIP on Janus's wire
    # (200, 180, 200 retransmitted, no ACK, the BYE straight to the extension) and on
    # Kamailio's (180 and 200 in order)
    "janus-late-180": lambda: from_known_failure(
        "janus-sip-late-180.yaml",
        "janus-sip-late-180-aiortc",
        {
            "janus-eth0.pcap": OUT / "janus-late-180.pcap",
            "proxy-eth0.pcap": OUT / "janus-late-180-proxy.pcap",
        },
    ),
    # a refused wss:// certificate and SIP over TLS, on Kamailio's wire (not in the corpus
    # every analyser test reads: tls/ is only for tests/unit/test_analysis_tls.py)
    "sip-tls": lambda: from_scenario(
        "sip-tls.yaml",
        "sip-tls-untrusted",
        "proxy-eth0.pcap",
        OUT / "tls" / "sip-tls-untrusted-proxy.pcap",
    ),
}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "ws":
        asyncio.run(_ws_register(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "peer":
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("role", choices=["offer", "answer"])
        p.add_argument("addr")
        p.add_argument("--turn")
        p.add_argument("--seconds", type=float, default=CALL_SECONDS)
        args = p.parse_args()
        asyncio.run(_peer(args.role, args.addr, args.turn, args.seconds))
        return
    for what in sys.argv[1:] or list(MAKERS):
        MAKERS[what]()


if __name__ == "__main__":
    main()
