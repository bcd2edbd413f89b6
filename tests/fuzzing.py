"""Fuzz inputs shared by the short CI tests and benchmarks/bench_reliability.py (the long runs).

Config files: every input (a damaged shipped scenario or topology, a random tree of the
models' own keys, a shipped file with one value replaced) must load or raise one
HarnessError, never anything else. Captures: packets of the harness's own captures,
mutated, must never crash the analyser (an exception, or a dissector's `crash:` count).
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError

#: HARNESS_FUZZ_SCALE multiplies every fuzz test's examples (e.g. 20 for a long hunt)
SCALE = float(os.environ.get("HARNESS_FUZZ_SCALE", "1"))
#: CI runs are derandomized (the same examples every run, seeded from each test's name);
#: a long hunt (SCALE > 1) explores fresh ones and prints the seed on failure.
FIXED = SCALE == 1


def examples(n: int) -> settings:
    """Hypothesis settings for a fuzz test of `n` examples in CI (scaled for a long hunt)."""
    return settings(
        max_examples=int(n * SCALE),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=FIXED,
    )


#: the analysers' parsers (cheap examples) and whole-capture walks (dear ones)
FAST = examples(300)
SLOW = examples(60)


def damaged_frames(
    data: st.DataObject,
    image: bytes,
    idx: Any,
    reach: int,
    values: list[int],
    link_types: list[int],
) -> tuple[bytes, Any, Any]:
    """Real frames damaged where their headers are, for a compiled part's comparison.

    Up to 300 bytes within `reach` of a frame's start set to one of `values`, then up to
    20 frames shortened or given another of `link_types`: (image, lengths, links), the
    index's offsets unchanged.
    """
    raw, n = bytearray(image), len(idx)
    for _ in range(data.draw(st.integers(0, 300))):
        i = data.draw(st.integers(0, n - 1))
        at = int(idx.offsets[i]) + data.draw(st.integers(0, reach))
        if at < len(raw):
            raw[at] = data.draw(st.sampled_from(values))
    lengths, links = idx.lengths.copy(), idx.links.copy()
    for _ in range(data.draw(st.integers(0, 20))):
        i = data.draw(st.integers(0, n - 1))
        lengths[i] = data.draw(st.integers(0, int(lengths[i])))
        links[i] = data.draw(st.sampled_from(link_types))
    return bytes(raw), lengths, links


ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted((ROOT / "scenarios").glob("*/*.yaml")) + sorted(
    (ROOT / "topologies").glob("*.yaml")
)
PCAPS = sorted((ROOT / "tests" / "data" / "pcaps").glob("*.pcap"))

PIECES = [
    ":", ": ", "- ", "{", "}", "[", "]", "# ", '"', "'", "&a ", "*a", "!!str ", "!!binary ",
    "!!python/object/apply:os.system ['true']", "%YAML 1.1\n", "|", ">", "\t", "${x}", "${name}",
    "~", "null", "on", "yes", "1e999", "-1", "0x10", "2001-01-01", "\n", "   ", "matrix:\n  a: [{}]\n",
    "steps:", "<<: *a", "? ", "@", "`", "\x00", "\ufeff", "\U0001f4a5", "198.18.0.1/33", "eth0.",
    "peer-a:eth0", "peer-a.eth0", "kind: coturn", "node: server", "on: connected", "999999999999",
]  # fmt: skip
KEYS = [
    "name", "topology", "description", "seed", "repeat", "timeout", "components", "peers",
    "capture", "links", "conditions", "steps", "expect", "known_failure", "matrix", "kind",
    "node", "options", "ice_servers", "component", "urls", "transport", "trickle", "audio",
    "networks", "hosts", "routers", "subnet", "interfaces", "network", "address", "lan", "wan",
    "nat", "preset", "firewall", "routes", "default_route", "call", "caller", "callee", "wait",
    "seconds", "peer", "hangup", "interface", "iface", "state", "at", "on", "link", "blackout",
    "profile", "loss", "dtls_handshakes", "count", "max", "peer_received_tone", "hz",
    "known_failures", "port", "users", "mapping", "filtering", "udp_timeout",
]  # fmt: skip


def _corpus() -> list[str]:
    return [p.read_text() for p in CORPUS]


# -- config files ---------------------------------------------------------------------------


def _mutate(text: str, ops: list[tuple[int, float, float, int]]) -> str:
    """Apply edits: (operation, where, how far, which piece)."""
    for op, a, b, k in ops:
        i = int(a * len(text))
        j = min(len(text), i + int(b * 40))
        lines = text.splitlines(keepends=True) or [""]
        li = int(a * len(lines)) % len(lines)
        if op == 0:
            text = text[:i] + PIECES[k % len(PIECES)] + text[i:]
        elif op == 1:
            text = text[:i] + text[j:]
        elif op == 2:
            text = text[:i] + PIECES[k % len(PIECES)] + text[j:]
        elif op == 3:
            text = "".join(lines[:li] + [lines[li]] * 2 + lines[li + 1 :])
        elif op == 4:
            lj = int(b * len(lines)) % len(lines)
            lines[li], lines[lj] = lines[lj], lines[li]
            text = "".join(lines)
        else:
            text = text[:i]
    return text


def _tree(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaf,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
        ),
        max_leaves=25,
    )


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["peer-a", "server", "eth0", "peer-a.eth0", "coturn", "aiortc", "4g"])
)


def _replace(data: Any, path: list[int], value: Any) -> Any:
    """Replace the node `path` walks to (indices taken modulo each container's size)."""
    if not path or not isinstance(data, dict | list) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    k = keys[path[0] % len(keys)]
    data[k] = _replace(data[k], path[1:], value)
    return data


def config_inputs() -> st.SearchStrategy[str]:
    """YAML texts: damaged shipped files, random trees, shipped files with a value replaced."""
    corpus = _corpus()
    damaged = st.builds(
        _mutate,
        st.sampled_from(corpus),
        st.lists(
            st.tuples(st.integers(0, 5), st.floats(0, 1), st.floats(0, 1), st.integers(0, 999)),
            min_size=1,
            max_size=4,
        ),
    )
    trees = _tree(SCALARS).map(lambda d: yaml.safe_dump(d, allow_unicode=True))
    replaced = st.builds(
        lambda text, path, value: yaml.safe_dump(
            _replace(yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"\1", text)), path, value)
        ),
        st.sampled_from(corpus),
        st.lists(st.integers(0, 50), min_size=1, max_size=5),
        _tree(SCALARS),
    )
    return st.one_of(damaged, trees, replaced)


def load_config_text(text: str, folder: Path) -> str | None:
    """None if the text loads or raises one HarnessError; the traceback otherwise."""
    from harness.config.loader import load_any

    f = folder / "fuzz.yaml"
    f.write_text(text, errors="surrogateescape")
    try:
        load_any(f)
    except HarnessError:
        return None
    except Exception:
        return traceback.format_exc()
    return None


def fuzz_config_files(n: int, seed: int) -> dict[str, Any]:
    """Run `n` inputs; count tracebacks (and keep the first few, with their input)."""
    found: list[dict[str, str]] = []
    count = [0]
    with tempfile.TemporaryDirectory() as tmp:

        @settings(
            max_examples=n,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(config_inputs())
        def run(text: str) -> None:
            count[0] += 1
            tb = load_config_text(text, Path(tmp))
            if tb is not None:
                found.append({"input": text[:2000], "traceback": tb[-3000:]})

        _seeded(run, seed)()
    return {"inputs": count[0], "tracebacks": len(found), "examples": found[:5]}


# -- captures -------------------------------------------------------------------------------


def real_packets() -> list[tuple[int, bytes]]:
    """(link type, frame) of every packet of the harness's own test captures."""
    from harness.analysis.pcapio import ReadStats, read_frames

    out = []
    for p in PCAPS:
        out += [(link, frame) for _, _, link, frame in read_frames(p.read_bytes(), ReadStats())]
    return out


def segment_payloads() -> list[bytes]:
    """The UDP/TCP payload of every frame the analyser decodes whole, in every capture of
    the suite (its own and the third-party ones), in file and frame order."""
    from harness.analysis import net, pcapio

    data_dir = Path(__file__).resolve().parent / "data"
    out = []
    for f in sorted((data_dir / "pcaps").glob("*.pcap*")) + sorted(
        (data_dir / "thirdparty").glob("*.pcap*")
    ):
        data = f.read_bytes()
        idx = pcapio.index_frames(data, pcapio.ReadStats())
        for off, n, link in zip(
            idx.offsets.tolist(), idx.lengths.tolist(), idx.links.tolist(), strict=True
        ):
            seg = net.decode(link, data[off : off + n])
            if type(seg) is tuple:
                out.append(seg[2])
    return out


def sip_call_pcap(body: bytes) -> bytes:
    """One SIP INVITE over UDP carrying `body`, then RTP of payload type 96."""

    def udp(sport: int, dport: int, payload: bytes) -> bytes:
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, 17, 0,
            bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]),
        )  # fmt: skip
        head = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
        return bytes(12) + b"\x08\x00" + ip + head + payload

    sip = (
        b"INVITE sip:b@10.0.0.2 SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    frames = [udp(5060, 5060, sip)]
    frames += [
        udp(5000, 6000, struct.pack("!BBHII", 0x80, 96, i, i * 960, 0x1234) + bytes(40))
        for i in range(20)
    ]
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        data += struct.pack("<IIII", i, i * 20000, len(f), len(f)) + f
    return data


def pcap_image(frames: list[tuple[int, bytes]]) -> bytes:
    """A pcap of `frames` (all of the first one's link type)."""
    link = frames[0][0] if frames else 1
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, link)]
    for i, (_, f) in enumerate(frames):
        out.append(struct.pack("<IIII", i // 1000, i % 1000 * 1000, len(f), len(f)) + f)
    return b"".join(out)


def mutate_packet(frame: bytes, edits: list[tuple[int, float, int]]) -> bytes:
    """Flip, overwrite, cut, insert or splice bytes of one frame (header bytes included)."""
    buf = bytearray(frame)
    for op, where, value in edits:
        i = int(where * len(buf)) if buf else 0
        if op == 0 and buf:
            buf[min(i, len(buf) - 1)] ^= 1 << (value % 8)
        elif op == 1 and buf:
            buf[min(i, len(buf) - 1)] = value % 256
        elif op == 2:
            del buf[i:]
        elif op == 3:
            buf[i:i] = bytes([value % 256]) * (1 + value % 7)
        else:
            buf[i : i + 2] = (value % 65536).to_bytes(2, "big")  # a length or a port
    return bytes(buf)


def analyse_image(data: bytes) -> tuple[int, list[str]]:
    """Crashes of one capture: an exception out of the analyser, or a dissector's crash count."""
    from harness.analysis.analyzer import analyze_bytes
    from harness.analysis.report import summary
    from harness.analysis.session import build

    try:
        a = analyze_bytes(data)
        summary(build(a))
    except Exception:
        return 1, [traceback.format_exc()[-3000:]]
    crashed = {k: v for k, v in a.malformed.items() if k.startswith("crash:")}
    return sum(crashed.values()), [f"{k} x{v}" for k, v in crashed.items()]


def fuzz_pcap_packets(n: int, seed: int, batch: int = 20_000) -> dict[str, Any]:
    """`n` mutated packets in captures of `batch`; every crash counted."""
    import random

    rng = random.Random(seed)
    packets = real_packets()
    by_link: dict[int, list[bytes]] = {}
    for link, f in packets:
        by_link.setdefault(link, []).append(f)
    done, crashes, examples = 0, 0, []
    while done < n:
        link = rng.choice(sorted(by_link))
        frames = []
        for _ in range(min(batch, n - done)):
            f = rng.choice(by_link[link])
            edits = [(rng.randrange(5), rng.random(), rng.randrange(1 << 16))]
            edits += [(rng.randrange(5), rng.random(), rng.randrange(1 << 16))] * rng.randrange(3)
            frames.append((link, mutate_packet(f, edits) if rng.random() < 0.9 else f))
        n_crashed, found = analyse_image(pcap_image(frames))
        crashes += n_crashed
        examples += found[:2]
        done += len(frames)
    return {
        "packets": done,
        "source_packets": len(packets),
        "crashes": crashes,
        "examples": examples[:5],
    }


def _seeded(fn: Callable[[], None], seed: int) -> Callable[[], None]:
    from hypothesis import seed as hseed

    return hseed(seed)(fn)
