"""Packets/s of `harness analyze` next to tshark on the same file, in the same run.

    .venv/bin/python benchmarks/bench_analyze.py [--packets 200000] [--keep FILE]
    .venv/bin/python benchmarks/bench_analyze.py --cases [--repeat 5] [--only c_] [--seed N]
    .venv/bin/python benchmarks/bench_analyze.py --sizes [--repeat 5]
    .venv/bin/python benchmarks/bench_analyze.py --encapsulations [--repeat 5]

`--sizes` runs case (c) at 0 (a file of no packets), 50k, 100k and 200k packets: each
tool's fixed cost and cost per packet, and the ratio a larger file converges to.

`--encapsulations` runs case (a) as it is, behind two MPLS labels, in a PPPoE session
(both read by the fast path), and inside VXLAN and ERSPAN (read by the per-frame walk).

`--cases` runs the three acceptance cases of issue 15, each as whole processes
(`harness analyze --json FILE` against `tshark -z rtp,streams`, alternating, medians of
--repeat runs of wall-clock and CPU time, and a 95% interval of each ratio by a paired
bootstrap, its seed printed; `--only` keeps the cases whose name holds it): (a) plain RTP, the 20 s aiortc call repeated
to 250k packets; (b) a TURN-relayed WebRTC<->SIP call (benchmarks/data/
janus-sip-relayed.pcap: coturn's and the Janus/Kamailio server's wires of a
janus-sip-ice-restart run with iceTransportPolicy relay, merged) repeated to 250k;
(c) handshake-heavy: the same call with its media taken out (STUN, TURN control,
DTLS, SIP, HTTP only) repeated to 100k, and the same as pcapng (editcap); (a) as
`tcpdump -i any` writes it (Linux cooked headers: tests/relink.py). Then two cases of TCP streams a capture
joined mid-connection (500 connections, 12 segments of 1,400 bytes each way, of text
that is no SIP or HTTP (d) or random bytes (e)), where the analyser searches each
stream for its first message.

The input is built from a real captured 20 s call (tests/data/pcaps/aiortc-long.pcap:
STUN, DTLS, SRTP, SRTCP, plus the HTTP signalling) repeated with time shifts until it
holds at least --packets frames; each repetition moves its UDP ports, and the client
port of its TCP connections, by a fixed offset, and has its own SIP Call-IDs, ICE
credentials (STUN checks signed again) and SDP session ids (distinct_calls.py), so it
is a separate call with its own flows, connections, dialogs and ICE generations. Timings are best of
--repeat runs, wall-clock and CPU time (the machine is shared: CPU time moves less).
tshark runs twice: plain dissection (`-q`), and the nearest
equivalent of our summary (RTP found heuristically, `-z rtp,streams`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distinct_calls import Identities  # noqa: E402

from harness.analysis.report import summarize_file  # noqa: E402
from tests.relink import relinked, tunneled  # noqa: E402

SOURCE = ROOT / "tests" / "data" / "pcaps" / "aiortc-long.pcap"
RELAYED = ROOT / "benchmarks" / "data" / "janus-sip-relayed.pcap"


def build_capture(source: Path, target: Path, packets: int, media: bool = True) -> int:
    """Repeat `source` (classic pcap, Ethernet/IPv4) with time shifts and port offsets,
    each repetition with its own Call-IDs, ICE credentials and SDP session ids
    (distinct_calls.py: a call of its own, as in a capture of many calls).

    `media` False leaves out RTP/RTCP, direct or in TURN ChannelData (a handshake-heavy file).
    """
    data = source.read_bytes()
    header, body = data[:24], data[24:]
    records: list[tuple[float, bytes]] = []
    off = 0
    while off + 16 <= len(body):
        sec, usec, incl, _ = struct.unpack_from("<IIII", body, off)
        frame = body[off + 16 : off + 16 + incl]
        if media or not _is_media(frame):
            records.append((sec + usec / 1e6, frame))
        off += 16 + incl
    t0, span = records[0][0], records[-1][0] - records[0][0] + 0.5
    ids = Identities([frame for _, frame in records])
    out = bytearray(header)
    n = rep = 0
    while n < packets:
        shift = rep * span
        for t, frame in records:
            frame = _move_ports(ids.frame(frame, rep), rep)
            ts = t - t0 + shift + 1.8e9
            out += struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(frame), len(frame))
            out += frame
            n += 1
        rep += 1
    target.write_bytes(bytes(out))
    return n


def _is_media(frame: bytes) -> bool:
    if len(frame) < 46 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return False
    p = frame[14 + (frame[14] & 15) * 4 + 8 :]
    if p and 0x40 <= p[0] <= 0x4F:
        p = p[4:]
    return bool(p) and 128 <= p[0] <= 191


def _move_ports(frame: bytes, rep: int) -> bytes:
    """Repetition `rep` of an IPv4 frame: UDP moves both ports (a call of its own), TCP
    its client's port only (new connections to the same servers: Janus's HTTP, SIP over
    TCP), with the TCP checksum updated (RFC 1624) so that it stays as right as it was."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] not in (6, 17):
        return frame
    l4 = 14 + (frame[14] & 15) * 4
    sport, dport = struct.unpack_from("!HH", frame, l4)
    if frame[23] == 17:
        ports = struct.pack("!HH", (sport + rep * 7) % 65536, (dport + rep * 7) % 65536)
        return frame[:l4] + ports + frame[l4 + 4 : l4 + 6] + b"\x00\x00" + frame[l4 + 8 :]
    if len(frame) < l4 + 20:
        return frame
    client = 0 if sport > dport else 2  # the ephemeral side
    old = (sport, dport)[client // 2]
    new = 1024 + (old - 1024 + rep * 7) % (65536 - 1024)
    (check,) = struct.unpack_from("!H", frame, l4 + 16)
    total = (~check & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    out = bytearray(frame)
    struct.pack_into("!H", out, l4 + client, new)
    struct.pack_into("!H", out, l4 + 16, ~total & 0xFFFF)
    return bytes(out)


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
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


def whole_process(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv` as its own process."""
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env, cwd=cwd
    )
    wall = time.perf_counter() - start
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, sum(getattr(c1, f) - getattr(c0, f) for f in ("ru_utime", "ru_stime"))


def compiled_parts() -> dict[str, bool]:
    """Which optional C extensions of the analyser are built (each has a Python fallback):
    every one pyproject.toml declares, so a new part shows up here without an edit."""
    modules = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    parts = {}
    for ext in modules["ext-modules"]:
        name = ext["name"]
        try:
            importlib.import_module(name)
            built = True
        except ImportError:
            built = False
        parts[name.rpartition("._")[2]] = built
    return parts


def as_installed() -> tuple[list[str], dict[str, str]]:
    """`harness analyze --json` and its environment, as installed on a user's machine: modules
    load from their bytecode cache, which a PYTHONDONTWRITEBYTECODE environment (this lab's
    shell sets it) would leave unwritten, so every run would compile the modules changed
    since the cache was last written. One run writes the cache."""
    harness = [str(ROOT / ".venv" / "bin" / "harness"), "analyze", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    whole_process([*harness, str(SOURCE)], env)
    return harness, env


def side_by_side(
    path: Path, repeat: int, harness: list[str], env: dict[str, str]
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, tuple[float, float]]]:
    """`harness analyze --json` and `tshark -z rtp,streams` on `path`, alternating (so both
    see the same machine load): every (wall, CPU) run, and their medians."""
    tshark = ["tshark", "-n", "-r", str(path), "-q", "--enable-heuristic", "rtp_udp"]
    tshark += ["-z", "rtp,streams"]
    runs: dict[str, list[tuple[float, float]]] = {"harness": [], "tshark": []}
    for _ in range(repeat):
        runs["harness"].append(whole_process([*harness, str(path)], env))
        runs["tshark"].append(whole_process(tshark))
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in runs.items()
    }
    return runs, med


def ratio_interval(
    runs: dict[str, list[tuple[float, float]]], column: int, rng: random.Random, draws: int = 2000
) -> tuple[float, float]:
    """A 95% interval of median(tshark) / median(harness) (column 0 wall, 1 CPU), by a paired
    bootstrap: run i of each tool is drawn together, as they ran back to back. This VM's
    speed swings by half within seconds, for either tool: with 11 runs the ratio of
    medians moves by about 10% from one run of the benchmark to the next, and the
    interval says how far the figure can be trusted."""
    ours = [r[column] for r in runs["harness"]]
    theirs = [r[column] for r in runs["tshark"]]
    n = len(ours)
    found = []
    for _ in range(draws):
        drawn = [rng.randrange(n) for _ in range(n)]
        ratio = statistics.median(theirs[i] for i in drawn) / statistics.median(
            ours[i] for i in drawn
        )
        found.append(ratio)
    found.sort()
    return found[int(0.025 * draws)], found[int(0.975 * draws) - 1]


def sizes(repeat: int) -> None:
    """Case (c) at several sizes, and a file of no packets: each tool's fixed cost (start-up,
    imports) and its cost per packet (the slope between the sizes), CPU medians. The ratio
    of the slopes is what a larger file converges to."""
    harness, env = as_installed()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for packets in (0, 50_000, 100_000, 200_000):
            path = Path(tmp) / f"c{packets}.pcap"
            if packets:
                n = build_capture(RELAYED, path, packets, False)
            else:  # the file header only
                path.write_bytes(RELAYED.read_bytes()[:24])
                n = 0
            _, med = side_by_side(path, repeat, harness, env)
            row = {
                "packets": n,
                "harness_cpu_s": med["harness"][1],
                "tshark_cpu_s": med["tshark"][1],
            }
            rows.append(row)
            print(json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    big, small = rows[-1], rows[1]
    per = {
        tool: (big[f"{tool}_cpu_s"] - small[f"{tool}_cpu_s"]) / (big["packets"] - small["packets"])
        for tool in ("harness", "tshark")
    }
    print(
        json.dumps(
            {
                "fixed_cpu_s": {t: round(rows[0][f"{t}_cpu_s"], 3) for t in ("harness", "tshark")},
                "cpu_us_per_packet": {t: round(v * 1e6, 2) for t, v in per.items()},
                "ratio_per_packet": round(per["tshark"] / per["harness"], 2),
                "ratio_at": {
                    r["packets"]: round(r["tshark_cpu_s"] / r["harness_cpu_s"], 2) for r in rows
                },
            },
            indent=1,
        )
    )


#: how a case's capture is rewritten, by the end of its name (tests/relink.py)
WRAPS: dict[str, Callable[[bytes], bytes]] = {
    "_linux_cooked": lambda b: relinked(b, "sll"),  # as `tcpdump -i any` writes it
    "_mpls": lambda b: relinked(b, "mpls"),  # behind two MPLS labels
    "_pppoe": lambda b: relinked(b, "pppoe"),  # in a PPPoE session
    "_vxlan": lambda b: tunneled(b, "vxlan"),  # as cloud traffic mirroring delivers it
    "_erspan": lambda b: tunneled(b, "erspan2"),  # as port mirroring (ERSPAN II) delivers it
}
#: `--encapsulations`: case (a) plain, then wrapped each way
ENCAPSULATIONS: list[tuple[str, Path | None, int, bool]] = [
    (name, SOURCE, 250_000, True)
    for name in ("a_plain_rtp", "a_mpls", "a_pppoe", "a_vxlan", "a_erspan")
]


def cases(
    repeat: int,
    plan: list[tuple[str, Path | None, int, bool]] | None = None,
    only: list[str] | None = None,
    seed: int | None = None,
) -> None:
    """The three cases (or `plan`, or its cases named in `only`), side by side in one run;
    medians, ratios and their 95% intervals (bootstrap seeded by `seed`) as JSON."""
    harness, env = as_installed()
    seed = random.randrange(2**32) if seed is None else seed
    plan = plan or [
        ("a_plain_rtp", SOURCE, 250_000, True),
        ("b_turn_relayed_webrtc_sip", RELAYED, 250_000, True),
        ("c_handshake_heavy", RELAYED, 100_000, False),
        # not issue 15's: (c) as pcapng, the format Wireshark and dumpcap write (most users'
        # captures), converted by editcap
        ("c_handshake_heavy_pcapng", RELAYED, 100_000, False),
        # not issue 15's: (a) as `tcpdump -i any` writes it (Linux cooked v1 headers)
        ("a_plain_rtp_linux_cooked", SOURCE, 250_000, True),
        # not issue 15's: TCP streams the capture joined mid-connection, 500 connections
        # of 12 segments each way, text that is no SIP or HTTP, or random bytes
        # (tests/unit/test_analysis_tcpwalk.py::connections), searched for a first message
        ("d_joined_text_tcp", None, 500, True),
        ("e_joined_binary_tcp", None, 500, False),
    ]
    plan = [c for c in plan if not only or any(o in c[0] for o in only)]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, source, packets, media in plan:
            path = Path(tmp) / f"{name}.pcap"
            if source is None:
                sys.path.insert(0, str(ROOT))
                from tests.unit.test_analysis_tcpwalk import connections

                path.write_bytes(connections(False, media, packets, 12))
                n = packets * 24
            else:
                n = build_capture(source, path, packets, media)
            for suffix, wrap in WRAPS.items():
                if name.endswith(suffix):
                    path.write_bytes(wrap(path.read_bytes()))
            if name.endswith("_pcapng"):
                ng = path.with_suffix(".pcapng")
                subprocess.run(["editcap", "-F", "pcapng", str(path), str(ng)], check=True)
                path = ng
            runs, med = side_by_side(path, repeat, harness, env)
            rng = random.Random(f"{seed}-{name}")
            wall_ci, cpu_ci = (ratio_interval(runs, k, rng) for k in (0, 1))
            out.append(
                {
                    "case": name,
                    "source": str(source.relative_to(ROOT)) if source else "synthetic",
                    "packets": n,
                    "compiled": compiled_parts(),
                    "bytecode_cache": True,
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "harness_wall_s": round(med["harness"][0], 3),
                    "harness_cpu_s": round(med["harness"][1], 3),
                    "tshark_rtp_streams_wall_s": round(med["tshark"][0], 3),
                    "tshark_rtp_streams_cpu_s": round(med["tshark"][1], 3),
                    "speedup_wall": round(med["tshark"][0] / med["harness"][0], 2),
                    "speedup_cpu": round(med["tshark"][1] / med["harness"][1], 2),
                    "speedup_wall_ci95": [round(x, 2) for x in wall_ci],
                    "speedup_cpu_ci95": [round(x, 2) for x in cpu_ci],
                    "repeat": repeat,
                    "bootstrap_seed": seed,
                    "runs": {
                        k: [[round(w, 3), round(c, 3)] for w, c in v] for k, v in runs.items()
                    },
                }
            )
            print(json.dumps(out[-1]), flush=True)
    print(json.dumps(out, indent=1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", action="store_true", help="the three cases of issue 15")
    p.add_argument(
        "--encapsulations", action="store_true", help="case (a) behind MPLS, PPPoE, in tunnels"
    )
    p.add_argument(
        "--sizes", action="store_true", help="case (c) at 0-200k packets: fixed and per-packet cost"
    )
    p.add_argument("--packets", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", action="append", help="with --cases: the cases whose name holds this")
    p.add_argument("--seed", type=int, help="the bootstrap's seed (default: a random one, printed)")
    p.add_argument("--keep", type=Path)
    p.add_argument("--source", type=Path, default=SOURCE, help="the real call to repeat")
    args = p.parse_args()
    if args.cases or args.encapsulations:
        cases(args.repeat, ENCAPSULATIONS if args.encapsulations else None, args.only, args.seed)
        return
    if args.sizes:
        sizes(args.repeat)
        return
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
