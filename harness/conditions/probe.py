"""Probe flow endpoints, run inside lab nodes: a paced UDP sender and a timestamping receiver.

Each datagram carries a sequence number and its send time (CLOCK_REALTIME ns);
the receiver takes the kernel's receive timestamp (SO_TIMESTAMPNS, the same
clock), so the delay it sees is the network's, not the receiver's scheduling.
The receiver writes raw arrays; measure.py turns them into statistics.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import struct
import sys
import time
from array import array
from pathlib import Path

MAGIC = 0x52484350  # "RHCP"
HEADER = struct.Struct("!IIq")  # magic, seq, tx ns
END_SEQ = 0xFFFFFFFF
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
TIMESPEC = struct.Struct("qq")


def send(to: str, port: int, rate: float, count: int, size: int, bind: str = "") -> None:
    """Send `count` datagrams of `size` payload bytes at `rate` per second, on a fixed schedule."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if bind:
        sock.bind((bind, 0))
    sock.connect((to, port))
    buf = bytearray(max(size, HEADER.size))
    pack, now, clock, snd = HEADER.pack_into, time.time_ns, time.monotonic, sock.send
    interval = 1.0 / rate
    start = clock()
    for seq in range(count):
        due = start + seq * interval
        wait = due - clock()
        if wait > 0.0005:
            time.sleep(wait - 0.0003)
        while clock() < due:
            pass
        pack(buf, 0, MAGIC, seq, now())
        try:  # noqa: SIM105 -- the hot loop: suppress() costs a context manager per packet
            snd(buf)
        except (BlockingIOError, ConnectionRefusedError):
            pass
    for _ in range(5):  # end markers: a lossy link may eat some
        time.sleep(0.02)
        pack(buf, 0, MAGIC, END_SEQ, now())
        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
            snd(buf)


class _Stop(Exception):
    pass


def _stop(*_: object) -> None:
    raise _Stop


def receive(port: int, out: Path, deadline: float, linger: float, bind: str = "") -> int:
    """Record (seq, tx, rx) until an end marker plus `linger` s, `deadline` s overall, or
    SIGTERM (the harness sends it when the sender is done and no marker got through)."""
    signal.signal(signal.SIGTERM, _stop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((bind, port))
    seqs, txs, rxs = array("I"), array("q"), array("q")
    hard = time.monotonic() + deadline
    stop_at = hard
    Path(str(out) + ".ready").write_text("ready\n")
    cmsg_space = socket.CMSG_SPACE(TIMESPEC.size)
    while True:
        left = min(stop_at, hard) - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data, anc, _, _ = sock.recvmsg(2048, cmsg_space)
        except (TimeoutError, _Stop):
            break
        if len(data) < HEADER.size:
            continue
        magic, seq, tx = HEADER.unpack_from(data)
        if magic != MAGIC:
            continue
        if seq == END_SEQ:
            stop_at = min(stop_at, time.monotonic() + linger)
            continue
        rx = time.time_ns()
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                s, ns = TIMESPEC.unpack_from(value)
                rx = s * 1_000_000_000 + ns
        seqs.append(seq)
        txs.append(tx)
        rxs.append(rx)
    with out.open("wb") as f:
        f.write(struct.pack("!I", len(seqs)))
        seqs.tofile(f)
        txs.tofile(f)
        rxs.tofile(f)
    return len(seqs)


def read_result(path: Path) -> tuple[array, array, array]:
    """(seqs, tx ns, rx ns) as written by `receive`."""
    with path.open("rb") as f:
        (n,) = struct.unpack("!I", f.read(4))
        seqs, txs, rxs = array("I"), array("q"), array("q")
        seqs.fromfile(f, n)
        txs.fromfile(f, n)
        rxs.fromfile(f, n)
    return seqs, txs, rxs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="rtc-harness probe flow endpoint")
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--size", type=int, default=172)
    s.add_argument("--bind", default="")
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--deadline", type=float, required=True)
    r.add_argument("--linger", type=float, default=0.5)
    r.add_argument("--bind", default="")
    a = ap.parse_args(argv)
    if a.mode == "send":
        send(a.to, a.port, a.rate, a.count, a.size, a.bind)
    else:
        receive(a.port, a.out, a.deadline, a.linger, a.bind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
