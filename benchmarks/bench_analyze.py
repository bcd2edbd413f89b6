"""Packets/s of `harness analyze` next to tshark on the same file, in the same run.

    .venv/bin/python benchmarks/bench_analyze.py [--packets 200000] [--keep FILE]

The input is built from a real captured 20 s call (tests/data/pcaps/aiortc-long.pcap:
STUN, DTLS, SRTP, SRTCP, plus the HTTP signalling) repeated with time shifts until it
holds at least --packets frames; each repetition moves its UDP ports by a fixed
offset so it is a separate call with its own flows. Timings are best of
--repeat runs, wall-clock and CPU time (the machine is shared: CPU time moves less).
tshark runs twice: plain dissection (`-q`), and the nearest
equivalent of our summary (RTP found heuristically, `-z rtp,streams`).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.analysis.report import summarize_file  # noqa: E402

SOURCE = ROOT / "tests" / "data" / "pcaps" / "aiortc-long.pcap"


def build_capture(source: Path, target: Path, packets: int) -> int:
    """Repeat `source` (classic pcap, Ethernet/IPv4) with time shifts and port offsets."""
    data = source.read_bytes()
    header, body = data[:24], data[24:]
    records: list[tuple[float, bytes]] = []
    off = 0
    while off + 16 <= len(body):
        sec, usec, incl, _ = struct.unpack_from("<IIII", body, off)
        records.append((sec + usec / 1e6, body[off + 16 : off + 16 + incl]))
        off += 16 + incl
    t0, span = records[0][0], records[-1][0] - records[0][0] + 0.5
    out = bytearray(header)
    n = rep = 0
    while n < packets:
        shift = rep * span
        for t, frame in records:
            frame = _move_ports(frame, rep)
            ts = t - t0 + shift + 1.8e9
            out += struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(frame), len(frame))
            out += frame
            n += 1
        rep += 1
    target.write_bytes(bytes(out))
    return n


def _move_ports(frame: bytes, rep: int) -> bytes:
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return frame
    l4 = 14 + (frame[14] & 15) * 4
    sport, dport = struct.unpack_from("!HH", frame, l4)
    ports = struct.pack("!HH", (sport + rep * 7) % 65536, (dport + rep * 7) % 65536)
    return frame[:l4] + ports + frame[l4 + 4 : l4 + 6] + b"\x00\x00" + frame[l4 + 8 :]


def best(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of this process and its children), best of `repeat`."""
    walls, cpus = [], []
    for _ in range(repeat):
        r0, c0 = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        r1, c1 = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        cpus.append(
            sum(
                getattr(b, f) - getattr(a, f)
                for a, b in ((r0, r1), (c0, c1))
                for f in ("ru_utime", "ru_stime")
            )
        )
    return min(walls), min(cpus)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--packets", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--keep", type=Path)
    p.add_argument("--source", type=Path, default=SOURCE, help="the real call to repeat")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "mixed.pcap"
        n = build_capture(args.source, path, args.packets)
        ours, ours_cpu = best(lambda: summarize_file(path), args.repeat)
        result = {
            "source": str(
                args.source.relative_to(ROOT) if args.source.is_relative_to(ROOT) else args.source
            ),
            "file": str(path),
            "packets": n,
            "bytes": path.stat().st_size,
            "harness_summary_s": round(ours, 3),
            "harness_summary_cpu_s": round(ours_cpu, 3),
            "harness_summary_pps": round(n / ours),
            "harness_summary_pps_cpu": round(n / ours_cpu),
        }
        if shutil.which("tshark"):
            plain = ["tshark", "-n", "-r", str(path), "-q"]
            streams = plain + ["--enable-heuristic", "rtp_udp", "-z", "rtp,streams"]
            for key, argv in (("tshark_plain", plain), ("tshark_rtp_streams", streams)):
                run = lambda argv=argv: subprocess.run(argv, capture_output=True, check=True)  # noqa: E731
                secs, cpu = best(run, 1)
                result[f"{key}_s"] = round(secs, 3)
                result[f"{key}_cpu_s"] = round(cpu, 3)
                result[f"{key}_pps"] = round(n / secs)
                result[f"speedup_vs_{key}"] = round(secs / ours, 2)
                result[f"speedup_vs_{key}_cpu"] = round(cpu / ours_cpu, 2)
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
