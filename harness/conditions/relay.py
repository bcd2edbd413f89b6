"""The link relay engine: a process in the switch namespace that carries one link.

It takes the switch end of a node's veth out of its bridge and puts a TAP device
in its place. Frames from the node (read from the veth with a packet socket) are
shaped by the "up" Shaper and written into the TAP, i.e. into the bridge; frames
the bridge sends to the TAP are shaped by "down" and sent out of the veth to the
node. A heap of release times and a select() loop with 1 ns timer slack decide
when each frame leaves. virtio-net headers ride along on both sides so
checksum-offloaded and GSO frames cross unchanged.

If this process dies the TAP vanishes and the veth stays out of the bridge: the
link goes dark, never silently unimpaired. On SIGTERM it puts the veth back.

Control: newline-delimited JSON on a unix socket (see control.py for the client).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import gc
import heapq
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.conditions.model import Fault, LinkConditions
from harness.conditions.shaper import ActiveFault, Shaper

VNET_HDR = 10
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
ETH_P_ALL = 0x0003
PR_SET_TIMERSLACK = 29
SO_SNDBUFFORCE = 32
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("qq")
SO_RCVBUFFORCE = 33
DRAIN = 256  # frames read per fd per loop turn, so releases are not starved
MAX_FRAME = 65536 + VNET_HDR


def tap_name(veth: str) -> str:
    return ("t" + veth)[:15]


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


class Relay:
    def __init__(self, veth: str, ctl_path: Path, seed: int, realtime: int = 0) -> None:
        self.veth = veth
        self.realtime = realtime
        self.ctl_path = ctl_path
        self.up = Shaper("up", seed, VNET_HDR)
        self.down = Shaper("down", seed, VNET_HDR)
        self.heap: list[tuple[int, int, int, bytes]] = []
        self.seq = 0
        self.scheduled: list[tuple[int, int, dict[str, Any]]] = []
        self.clients: dict[socket.socket, bytes] = {}
        self.late_max = 0  # worst release lateness seen, ns
        self.late_sum = 0
        self.released = 0
        self.wall_offset = time.time_ns() - time.monotonic_ns()
        self.bridge = ""
        self.stopping = False

    # ------------------------------------------------------------ set-up / tear-down

    def open(self) -> None:
        # /sys shows the host's namespace here: ask the kernel through ip instead
        info = json.loads(subprocess.run(
            ["ip", "-j", "link", "show", "dev", self.veth], capture_output=True, text=True, check=True
        ).stdout)  # fmt: skip
        self.bridge = info[0].get("master", "")
        if not self.bridge:
            raise OSError(f"{self.veth} is not a bridge port (is the link shaped already?)")
        self.tap = self._open_tap(tap_name(self.veth))
        self.pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.pkt.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        self.pkt.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        self.pkt.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for opt in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
            self.pkt.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
        self.pkt.bind((self.veth, ETH_P_ALL))
        ifindex = socket.if_nametoindex(self.veth)
        mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
        self.pkt.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        self.pkt.setblocking(False)
        name = tap_name(self.veth)
        _ip("link", "set", name, "txqueuelen", "10000")
        _ip("link", "set", name, "master", self.bridge, "up")
        _ip("link", "set", self.veth, "nomaster")
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl_path.unlink(missing_ok=True)
        self.ctl.bind(str(self.ctl_path))
        self.ctl.listen(8)
        self.ctl.setblocking(False)

    @staticmethod
    def _open_tap(name: str) -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        ifr = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
        return fd

    def close(self) -> None:
        """Give the veth back to its bridge; the TAP goes when its fd closes."""
        try:
            _ip("link", "set", self.veth, "master", self.bridge)
        finally:
            os.close(self.tap)
            self.ctl_path.unlink(missing_ok=True)

    # ------------------------------------------------------------ main loop

    def run(self) -> None:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
        if self.realtime:
            # a delay line is only as good as its wake-ups: outrank ordinary processes
            # (bounded by the kernel's RT throttling, 95 % of a core by default)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime))
        gc.disable()  # the hot loop makes no cycles; control requests collect after
        pkt, tap, ctl, heap = self.pkt, self.tap, self.ctl, self.heap
        up_admit, down_admit = self.up.admit, self.down.admit
        pkt_fd = pkt.fileno()
        sched = self.scheduled
        recvmsg, read, write, send = pkt.recvmsg, os.read, os.write, pkt.send
        wall = self.wall_offset
        now_ns = time.monotonic_ns
        push, pop = heapq.heappush, heapq.heappop
        print("ready", flush=True)
        while not self.stopping:
            now = now_ns()
            timeout = 0.5
            if heap:
                timeout = min(timeout, (heap[0][0] - now) / 1e9)
            if self.scheduled:
                timeout = min(timeout, (self.scheduled[0][0] - now) / 1e9)
            for shaper in self.holding():
                timeout = min(timeout, (min(h.deadline for h in shaper.held) - now) / 1e9)
            fds: list[Any] = [pkt_fd, tap, ctl, *self.clients]  # fds and sockets
            ready = select.select(fds, [], [], max(timeout, 0.0))[0] if timeout > 0 else fds
            for fd in ready:
                if fd == pkt_fd:
                    for _ in range(DRAIN):
                        try:
                            frame, anc, _, _ = recvmsg(MAX_FRAME, 64)
                        except BlockingIOError:
                            break
                        # the kernel's arrival time, so a late read does not move the packet
                        now = now_ns()
                        if anc:
                            sec, nsec = TIMESPEC.unpack(anc[0][2])
                            now = min(now, sec * 1_000_000_000 + nsec - wall)
                        if sched and sched[0][0] <= now:  # a change due before this arrival
                            self._run_due(now)
                        for t in up_admit(frame, now):
                            self.seq += 1
                            push(heap, (t, self.seq, 1, frame))
                        if self.up.released:
                            self._schedule(self.up, 1)
                elif fd == tap:
                    for _ in range(DRAIN):
                        try:
                            frame = read(tap, MAX_FRAME)
                        except BlockingIOError:
                            break
                        now = now_ns()
                        if sched and sched[0][0] <= now:
                            self._run_due(now)
                        for t in down_admit(frame, now):
                            self.seq += 1
                            push(heap, (t, self.seq, 0, frame))
                        if self.down.released:
                            self._schedule(self.down, 0)
                elif fd is ctl or fd == ctl.fileno():
                    self._accept()
                else:
                    self._serve(fd)
            now = now_ns()
            if sched and sched[0][0] <= now:
                self._run_due(now)
            for shaper in self.holding():
                shaper.expire(now)
                self._schedule(shaper, 1 if shaper is self.up else 0)
            while heap and heap[0][0] <= now:
                t, _, to_bridge, frame = pop(heap)
                try:
                    if to_bridge:
                        write(tap, frame)
                        self.up.stats.delivered += 1
                    else:
                        send(frame)
                        self.down.stats.delivered += 1
                except (BlockingIOError, OSError):
                    pass  # a full device queue drops, as a real link would
                late = now - t
                self.released += 1
                self.late_sum += late
                if late > self.late_max:
                    self.late_max = late
                now = now_ns()

    def holding(self) -> list[Shaper]:
        """The directions holding packets back (a hold fault's)."""
        return [s for s in (self.up, self.down) if s.held] if self.up.held or self.down.held else []

    def _schedule(self, shaper: Shaper, to_bridge: int) -> None:
        """Put the held packets `shaper` let go on the release heap."""
        for t, frame in shaper.take_released():
            self.seq += 1
            heapq.heappush(self.heap, (t, self.seq, to_bridge, frame))

    def _run_due(self, now: int) -> None:
        """Apply scheduled changes due by `now`, each as of its own time (even if late)."""
        while self.scheduled and self.scheduled[0][0] <= now:
            t, _, req = heapq.heappop(self.scheduled)
            self._do(req, t)

    # ------------------------------------------------------------ control

    def _accept(self) -> None:
        try:
            conn, _ = self.ctl.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.clients[conn] = b""

    def _serve(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        if not data:
            del self.clients[conn]
            conn.close()
            return
        buf = self.clients[conn] + data
        *lines, rest = buf.split(b"\n")
        self.clients[conn] = rest
        for line in lines:
            try:
                req = json.loads(line)
                reply = self._request(req)
            except Exception as exc:  # report to the caller, keep the link running
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            conn.sendall(json.dumps(reply).encode() + b"\n")
        gc.collect(0)

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic_ns()
        at = req.pop("at", None)  # wall-clock ns: apply then, exactly, from this loop
        if at is not None and at - self.wall_offset > now:
            self.seq += 1
            heapq.heappush(self.scheduled, (at - self.wall_offset, self.seq, req))
            return {"ok": True, "scheduled": at}
        if at is not None:  # arrived late: a blackout still ends when it was meant to
            req["since"] = at - self.wall_offset
        return self._do(req, now)

    def _do(self, req: dict[str, Any], now: int) -> dict[str, Any]:
        op = req["op"]
        applied = now + self.wall_offset
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "set":
            for key, shaper in (("up", self.up), ("down", self.down)):
                if req.get(key) is not None:
                    shaper.set(LinkConditions.model_validate(req[key]))
            return {"ok": True, "applied": applied}
        if op == "blackout":
            until = req.get("since", now) + int(req["seconds"] * 1e9)
            for shaper in self._shapers(req.get("direction", "both")):
                shaper.blackout_until = until
            return {"ok": True, "applied": applied}
        if op == "restore":  # end a blackout early
            for shaper in self._shapers(req.get("direction", "both")):
                shaper.blackout_until = 0
            return {"ok": True, "applied": applied}
        if op == "fault":
            fault = Fault.model_validate(req["fault"])
            af = ActiveFault(
                fault,
                now + int(fault.duration * 1e9) if fault.duration else None,
                fault.count,
            )
            for shaper in self._shapers(fault.direction):
                shaper.add_fault(af)
            return {"ok": True, "applied": applied}
        if op == "clear_faults":
            for shaper in (self.up, self.down):
                shaper.faults.clear()
                shaper.release_all(now)  # nothing stays held once the faults are gone
                self._schedule(shaper, 1 if shaper is self.up else 0)
            return {"ok": True, "applied": applied}
        if op == "stats":
            return {
                "ok": True,
                "up": self.up.stats.as_dict(),
                "down": self.down.stats.as_dict(),
                "queued": len(self.heap),
                "held": len(self.up.held) + len(self.down.held),
                "released": self.released,
                "late_max_us": self.late_max / 1000,
                "late_mean_us": self.late_sum / max(1, self.released) / 1000,
                "faults": [
                    {"fault": af.fault.model_dump(), "hits": af.hits}
                    for af in {id(a): a for s in (self.up, self.down) for a in s.faults}.values()
                ],
            }
        raise ValueError(f"unknown op {op!r}")

    def _shapers(self, direction: str) -> list[Shaper]:
        return {"up": [self.up], "down": [self.down], "both": [self.up, self.down]}[direction]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--veth", required=True, help="switch end of the node's veth")
    ap.add_argument("--ctl", required=True, type=Path, help="control socket path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--realtime", type=int, default=1, help="SCHED_FIFO priority (0: normal scheduling)"
    )
    ap.add_argument("--up", default="{}", help="LinkConditions JSON, from the node")
    ap.add_argument("--down", default="{}", help="LinkConditions JSON, towards the node")
    args = ap.parse_args(argv)
    relay = Relay(args.veth, args.ctl, args.seed, args.realtime)
    relay.up.set(LinkConditions.model_validate_json(args.up))
    relay.down.set(LinkConditions.model_validate_json(args.down))

    def stop(*_: object) -> None:
        relay.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    relay.open()
    try:
        relay.run()
    finally:
        relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
