"""Targeted faults on a real lab link: a mixed flow of real-format packets (made by aioice,
aiortc and OpenSSL) crosses peer-a.eth0; only the targeted class may suffer."""

import contextlib
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aioice import stun
from aiortc.rtp import RtcpByePacket, RtpPacket
from OpenSSL import SSL

from harness.conditions.apply import LinkShaper, shape_link
from harness.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]
EACH = 20  # packets of every class per flow


def _stun(method: stun.Method, cls: stun.Class, username: str | None = None) -> bytes:
    msg = stun.Message(message_method=method, message_class=cls)
    if username:
        msg.attributes["USERNAME"] = username
    return bytes(msg)


def _dtls() -> bytes:
    conn = SSL.Connection(SSL.Context(SSL.DTLS_METHOD))
    conn.set_connect_state()
    with contextlib.suppress(SSL.WantReadError):
        conn.do_handshake()
    return conn.bio_read(65536)


def _sip(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


CLASSES = {
    "binding-req-a": _stun(stun.Method.BINDING, stun.Class.REQUEST, "ufragA:ufragB"),
    "binding-req-c": _stun(stun.Method.BINDING, stun.Class.REQUEST, "ufragC:ufragD"),
    "binding-resp": _stun(stun.Method.BINDING, stun.Class.RESPONSE),
    "allocate": _stun(stun.Method.ALLOCATE, stun.Class.REQUEST),
    "refresh": _stun(stun.Method.REFRESH, stun.Class.REQUEST),
    "channelbind": _stun(stun.Method.CHANNEL_BIND, stun.Class.REQUEST),
    "dtls": _dtls(),
    "rtp": RtpPacket(payload_type=111, sequence_number=1, ssrc=7, payload=b"a" * 80).serialize(),
    "rtcp": bytes(RtcpByePacket(sources=[7])),
    "invite": _sip("INVITE sip:b@198.18.0.11 SIP/2.0\nCSeq: 1 INVITE\n\n"),
    "bye": _sip("BYE sip:b@198.18.0.11 SIP/2.0\nCSeq: 2 BYE\n\n"),
}

HELPER = textwrap.dedent(
    """
    import json, signal, socket, sys, time
    mode, port, arg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    classes = {k: bytes.fromhex(v) for k, v in json.loads(sys.stdin.read() or "{}").items()}
    if mode == "send":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(int(sys.argv[4])):
            for payload in classes.values():
                s.sendto(payload, (arg, port))
                time.sleep(0.0002)
    else:
        counts = {}
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("", port))
        open(arg + ".ready", "w").close()
        def stop(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, stop)
        try:
            while True:
                data = s.recv(65536)
                counts[data.hex()] = counts.get(data.hex(), 0) + 1
        except KeyboardInterrupt:
            json.dump(counts, open(arg, "w"))
    """
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab("topologies/open-internet.yaml") as lab:
        lab.run("peer-a", ["ping", "-c1", "-W2", "198.18.0.11"], check=False)
        yield lab


@pytest.fixture(scope="module")
def shaper(lab: Lab) -> Iterator[LinkShaper]:
    sh = shape_link(lab, "peer-a", "eth0", {})
    yield sh
    sh.close()


def flow(lab: Lab, tmp_path: Path) -> dict[str, int]:
    """Send EACH packets of every class peer-a -> peer-b; return arrivals per class."""
    script = tmp_path / "helper.py"
    script.write_text(HELPER)
    out = tmp_path / f"counts-{time.monotonic_ns()}.json"
    recv = lab.spawn("peer-b", [sys.executable, script, "recv", "41000", out], name=out.stem)
    deadline = time.monotonic() + 10
    while not (tmp_path / (out.name + ".ready")).exists():
        assert recv.alive() and time.monotonic() < deadline, recv.log_tail()
        time.sleep(0.01)
    payloads = json.dumps({k: v.hex() for k, v in CLASSES.items()})
    send = [sys.executable, str(script), "send", "41000", "198.18.0.11", str(EACH)]
    lab.run("peer-a", send, input=payloads)
    time.sleep(0.3)
    recv.stop()
    counts = json.loads(out.read_text())
    return {k: counts.get(v.hex(), 0) for k, v in CLASSES.items()}


@pytest.mark.parametrize(
    ("match", "hit"),
    [
        ({"kind": "stun-binding", "message": "request", "ufrag": "ufragB"}, {"binding-req-a"}),
        ({"kind": "stun-binding", "message": "request"}, {"binding-req-a", "binding-req-c"}),
        ({"kind": "stun-binding", "message": "response"}, {"binding-resp"}),
        ({"kind": "turn-allocate"}, {"allocate"}),
        ({"kind": "turn-refresh"}, {"refresh"}),
        ({"kind": "turn-channelbind"}, {"channelbind"}),
        ({"kind": "dtls-handshake"}, {"dtls"}),
        ({"kind": "rtp"}, {"rtp"}),
        ({"kind": "rtcp"}, {"rtcp"}),
        ({"kind": "sip", "method": "INVITE"}, {"invite"}),
    ],
    ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict) else "",
)
def test_drop_one_class_for_a_count(
    lab: Lab, shaper: LinkShaper, tmp_path: Path, match: dict[str, Any], hit: set[str]
) -> None:
    shaper.clear_faults()
    shaper.fault({"match": match, "count": 5, "direction": "up"})
    got = flow(lab, tmp_path)
    # exactly 5 packets lost, all of the targeted class(es); the count is shared by the match
    assert sum(got[k] for k in hit) == EACH * len(hit) - 5, got
    assert all(got[k] == EACH for k in CLASSES if k not in hit), got


def test_drop_for_a_time_window(lab: Lab, shaper: LinkShaper, tmp_path: Path) -> None:
    shaper.clear_faults()
    shaper.fault({"match": {"kind": "rtp"}, "duration": 30})
    got = flow(lab, tmp_path)
    assert got["rtp"] == 0 and got["rtcp"] == EACH, got
    shaper.clear_faults()
    assert flow(lab, tmp_path)["rtp"] == EACH


def test_tcp_to_a_port_drop_and_delay(lab: Lab, shaper: LinkShaper) -> None:
    """A dropped SYN costs the client its initial retransmission timeout (1 s on Linux).
    Each phase uses its own port, so packets of an earlier connection cannot use up a count."""
    server = lab.spawn(
        "peer-b",
        [sys.executable, "-c",
         "import selectors, socket\nsel = selectors.DefaultSelector()\n"
         "for p in (8443, 8444, 8445): sel.register(socket.create_server(('', p)), 1)\n"
         "while True:\n    for k, _ in sel.select(): k.fileobj.accept()[0].close()"],
        name="tcp-servers",
    )  # fmt: skip

    def connect(port: int) -> float:
        code = (
            "import socket,time\nt=time.monotonic()\n"
            f"socket.create_connection(('198.18.0.11',{port}),timeout=5).close()\n"
            "print(time.monotonic()-t)"
        )
        return float(lab.run("peer-a", [sys.executable, "-c", code]).stdout)

    try:
        time.sleep(0.3)
        shaper.clear_faults()
        shaper.fault({"match": {"kind": "tcp", "port": 8444}, "count": 1})
        shaper.fault({"match": {"kind": "tcp", "port": 8445}, "action": "delay", "delay": 300})
        assert connect(8443) < 0.5
        assert 0.9 < connect(8444) < 2.0
        assert 0.55 < connect(8445) < 0.95  # SYN and SYN-ACK, 300 ms each
    finally:
        shaper.clear_faults()
        server.stop()


ORDER = textwrap.dedent(
    """
    import json, socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", 41001))
    s.settimeout(3)
    open(sys.argv[1] + ".ready", "w").close()
    got = []
    try:
        while len(got) < int(sys.argv[2]):
            data = s.recv(65536)
            got.append([data.split(b" ")[1].decode(), time.monotonic()])
    except socket.timeout:
        pass
    json.dump(got, open(sys.argv[1], "w"))
    """
)


def arrivals(lab: Lab, tmp_path: Path, codes: list[int], gap: float) -> list[tuple[int, float]]:
    """Send SIP responses with these codes peer-a -> peer-b, `gap` s apart: (code, arrival)."""
    script, out = tmp_path / "order.py", tmp_path / f"order-{time.monotonic_ns()}.json"
    script.write_text(ORDER)
    recv = lab.spawn("peer-b", [sys.executable, script, out, str(len(codes))], name=out.stem)
    deadline = time.monotonic() + 10
    while not (tmp_path / (out.name + ".ready")).exists():
        assert recv.alive() and time.monotonic() < deadline, recv.log_tail()
        time.sleep(0.01)
    send = (
        "import socket, sys, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for code in sys.argv[2:]:\n"
        "    s.sendto(f'SIP/2.0 {code} X\\r\\nCSeq: 1 INVITE\\r\\n\\r\\n'.encode(),"
        " ('198.18.0.11', 41001))\n"
        "    time.sleep(float(sys.argv[1]))\n"
    )
    lab.run("peer-a", [sys.executable, "-c", send, str(gap), *map(str, codes)])
    recv.wait(timeout=10)
    return [(int(code), t) for code, t in json.loads(out.read_text())]


def test_hold_delivers_a_180_right_behind_its_200(
    lab: Lab, shaper: LinkShaper, tmp_path: Path
) -> None:
    """The reorder Janus's SIP stack trips on: a 180 sent 50 ms before the 200 arrives
    just after it; with the fault cleared, in the order sent."""
    shaper.clear_faults()
    shaper.fault({"match": {"kind": "sip", "status": 180}, "action": "hold", "delay": 2000,
                  "until": {"kind": "sip", "status": 200}, "count": 1, "direction": "up"})  # fmt: skip
    got = arrivals(lab, tmp_path, [100, 180, 200, 180], 0.05)
    assert [c for c, _ in got] == [100, 200, 180, 180], got  # the count holds one only
    assert got[2][1] - got[1][1] < 0.005, got  # right behind: well within the 50 ms gap
    stats = shaper.stats()
    assert stats["up"]["fault_held"] == 1 and stats["held"] == 0, stats
    shaper.fault({"match": {"kind": "sip", "status": 180}, "action": "hold", "delay": 300,
                  "until": {"kind": "sip", "status": 200}, "direction": "up"})  # fmt: skip
    got = arrivals(lab, tmp_path, [180, 183], 0.01)  # no 200: the hold ends at 300 ms
    assert [c for c, _ in got] == [183, 180] and 0.25 < got[1][1] - got[0][1] < 0.4, got
    shaper.clear_faults()
    assert [c for c, _ in arrivals(lab, tmp_path, [180, 200], 0.05)] == [180, 200]
