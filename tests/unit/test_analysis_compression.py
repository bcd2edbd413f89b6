"""Compressed captures (gzip, zstd, lz4) read as the capture inside, as tshark reads them.

tshark 4.0 reads all three as they are: it is the oracle for how many frames a whole,
multi-frame or cut file holds. The files are made with the codecs' own compressors
(the standard library's gzip, PyPI's zstandard and lz4: independent of our reading).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lz4.frame
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis.analyzer import analyze_bytes
from harness.analysis.compression import uncompressed
from harness.analysis.pcapio import ReadStats
from harness.analysis.report import summary
from harness.analysis.session import build
from tests.fuzzing import FAST

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
#: a call of 212 kB: two zstd blocks, four lz4 blocks of 64 KiB, gzip's many
IMAGE = (PCAPS / "aiortc-long.pcap").read_bytes()

#: as the command-line tools write them (`zstd` and `lz4` add a checksum of the content)
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "zstd": zstandard.ZstdCompressor(write_checksum=True).compress,
    "lz4": lambda b: lz4.frame.compress(
        b, block_size=lz4.frame.BLOCKSIZE_MAX64KB, content_checksum=True
    ),
}
CODECS = sorted(COMPRESS)


def analysed(image: bytes) -> dict[str, Any]:
    """The summary `harness analyze --json` prints, less the file's name."""
    out = summary(build(analyze_bytes(image)))
    del out["file"]
    return json.loads(json.dumps(out))


def frames_tshark_reads(path: Path) -> int:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    return len(out)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_a_compressed_capture_reads_as_the_capture(codec: str, kind: str, tmp_path: Path) -> None:
    """`tshark -w x.pcapng.gz`, `zstd x.pcap`, `lz4 x.pcapng`: read as they are."""
    plain = tmp_path / f"x.{kind}"
    if kind == "pcap":
        plain.write_bytes(IMAGE)
    else:
        subprocess.run(["editcap", "-F", "pcapng", str(PCAPS / "aiortc-long.pcap"), str(plain)],
                       check=True, timeout=30)  # fmt: skip
    packed = tmp_path / f"x.{kind}.{codec}"
    packed.write_bytes(COMPRESS[codec](plain.read_bytes()))
    want, got = analysed(plain.read_bytes()), analysed(packed.read_bytes())
    assert got.pop("format") == f"{want.pop('format')} ({codec})"
    assert got == want and want["packets"] == frames_tshark_reads(packed) > 2000


@pytest.mark.parametrize("codec", CODECS)
def test_frames_one_after_another(codec: str) -> None:
    """`cat a.gz b.gz` (gzip members), zstd and lz4 frames alike."""
    pack = COMPRESS[codec]
    assert analysed(pack(IMAGE[:5000]) + pack(IMAGE[5000:])) == analysed(pack(IMAGE))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("part", [0.75, 0.9])
def test_a_cut_stream_reads_what_came_before(codec: str, part: float, tmp_path: Path) -> None:
    packed = COMPRESS[codec](IMAGE)
    cut = tmp_path / f"cut.pcap.{codec}"
    cut.write_bytes(packed[: int(len(packed) * part)])
    a = analyze_bytes(cut.read_bytes())
    assert a.packets == frames_tshark_reads(cut) > 600  # what came before the cut
    assert a.read.errors[0].startswith(f"{codec}: the stream is cut after")


@pytest.mark.parametrize("codec", CODECS)
def test_a_bomb_stops_at_the_limit(codec: str) -> None:
    pack = COMPRESS[codec]
    for packed in (pack(IMAGE), pack(IMAGE[:1000]) + pack(IMAGE)):  # and a frame ending at it
        stats = ReadStats()
        assert uncompressed(packed, stats, limit=1000) == IMAGE[:1000]
        assert stats.errors == [f"{codec}: more than 1000 bytes uncompressed: read no further"]
    stats = ReadStats()
    assert uncompressed(pack(IMAGE[:1000]), stats, limit=1000) == IMAGE[:1000]
    assert not stats.errors


@pytest.mark.parametrize("codec", CODECS)
def test_damage_is_named(codec: str) -> None:
    packed = bytearray(COMPRESS[codec](IMAGE))
    packed[len(packed) // 2] ^= 0xFF  # found by the checksum at the latest
    stats = ReadStats()
    out = uncompressed(bytes(packed), stats)  # what came before the damage was found
    assert len(out) < len(IMAGE) and out[:24] == IMAGE[:24]
    assert len(stats.errors) == 1 and stats.errors[0].startswith(f"{codec}: ")
    assert stats.errors[0].endswith(f" after {len(out)} bytes")


@FAST
@given(st.data())
def test_damaged_streams_never_crash(data: st.DataObject) -> None:
    buf = bytearray(COMPRESS[data.draw(st.sampled_from(CODECS))](IMAGE))
    for _ in range(data.draw(st.integers(1, 10))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    a = analyze_bytes(bytes(buf[: data.draw(st.integers(0, len(buf)))]))
    assert not [k for k in a.malformed if k.startswith("crash:")]


@pytest.mark.parametrize("codec,module", [("zstd", "zstandard"), ("lz4", "lz4.frame")])
def test_a_missing_module_is_named(
    codec: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout installed without its dependencies says what it lacks."""
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    a = analyze_bytes(COMPRESS[codec](IMAGE))
    assert a.packets == 0
    assert a.read.errors[0] == f"compressed with {codec}: reading it needs {module}, not installed"
