"""Index pcap and pcapng files: where each frame is, its time and link type.

The file is held in memory; one loop per format (compiled in _pcapwalk.c, else struct
arithmetic: scapy's readers are ~100x slower) finds the records, their lengths and times. The
index lets the analyser read frames in place. Its columns are plain typed buffers
(memoryview or array.array), not numpy arrays: a capture without media is analysed
without importing numpy at all (~0.05 s of a ~0.65 s run); `FrameIndex.numpy()` gives
the numpy view to code that wants one. A damaged or truncated file ends the index and
is recorded in `ReadStats`, never raised.
"""

from __future__ import annotations

import mmap
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.lazy import lazy

try:  # the compiled record walk (pip install -e . builds it); _walk is the same in Python
    from harness.analysis import _pcapwalk  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # pragma: no cover - a checkout without a C compiler
    _pcapwalk = None

np = lazy("numpy")  # imported on first use: `harness validate` never needs it


#: (frame number from 1, time in seconds, link type, frame bytes)
Frame = tuple[int, float, int, bytes]

MAX_FRAME = 1 << 18


@dataclass
class ReadStats:
    """What the reader saw at the file level: format, frames, damage."""

    format: str = "unknown"
    frames: int = 0
    truncated: int = 0
    errors: list[str] = field(default_factory=list)
    linktypes: set[int] = field(default_factory=set)
    compression: str = ""
    """"gzip", "zstd" or "lz4" when the file was compressed (compression.py)."""
    secrets: list[bytes] = field(default_factory=list)
    """TLS key logs (NSS format) the file carries in pcapng decryption secrets blocks
    (`editcap --inject-secrets tls,KEYLOG`): the analyser decrypts with them as with
    --keylog."""


#: an int64 or float64 column: memoryview, array.array or numpy array (any 1-d buffer)
Column = Any


@dataclass
class FrameIndex:
    """Frame i (0-based; tshark's frame number is i + 1) is data[offsets[i]:][:lengths[i]].

    offsets, lengths, links are int64 columns, times float64 (seconds since the epoch).
    """

    offsets: Column
    lengths: Column
    times: Column
    links: Column

    def __len__(self) -> int:
        return len(self.offsets)

    def numpy(self) -> FrameIndex:
        """The same index with numpy arrays (views of the same memory where possible)."""
        i64, f64 = np.int64, np.float64
        return FrameIndex(
            np.frombuffer(self.offsets, dtype=i64) if len(self) else np.empty(0, i64),
            np.frombuffer(self.lengths, dtype=i64) if len(self) else np.empty(0, i64),
            np.frombuffer(self.times, dtype=f64) if len(self) else np.empty(0, f64),
            np.frombuffer(self.links, dtype=i64) if len(self) else np.empty(0, i64),
        )


def read_capture(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, mapped read-only where it can be, else read (OSError if neither).

    Mapped, the index and the frames read the page cache in place: reading a copy costs
    a page fault per 4 KiB of fresh memory (~30 ms of a 58 MB capture's ~0.4 s run).
    Empty files and pipes cannot be mapped. Slices of the map are bytes, as of bytes.
    """
    with path.open("rb") as f:
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty (ValueError), or not a regular file
            return f.read()


def index_frames(data: bytes, stats: ReadStats) -> FrameIndex:
    """Index every frame of a pcap or pcapng image; errors go into `stats`."""
    if len(data) >= 24:
        magic = data[:4]
        if magic == b"\x0a\x0d\x0d\x0a":
            stats.format = "pcapng" + (f" ({stats.compression})" if stats.compression else "")
            return _index_pcapng(data, stats)
        for endian in "<>":
            (m,) = struct.unpack(endian + "I", magic)
            if m in (0xA1B2C3D4, 0xA1B23C4D):
                stats.format = "pcap" + (f" ({stats.compression})" if stats.compression else "")
                return _index_pcap(data, stats, endian, 1e-6 if m == 0xA1B2C3D4 else 1e-9)
        stats.errors.append(f"not a capture file: magic {magic.hex()}")
    else:
        stats.errors.append(f"not a capture file: {len(data)} bytes")
    return _finish(stats, [], [], [], [])


def read_frames(data: bytes, stats: ReadStats) -> Iterator[Frame]:
    """Every frame as (number, time, link type, bytes): for tools and tests."""
    idx = index_frames(data, stats)
    for i in range(len(idx)):
        off, n = int(idx.offsets[i]), int(idx.lengths[i])
        yield i + 1, float(idx.times[i]), int(idx.links[i]), data[off : off + n]


def _finish(
    stats: ReadStats, offs: list[int], lens: list[int], times: list[float], links: list[int]
) -> FrameIndex:
    stats.frames = len(offs)
    return FrameIndex(array("q", offs), array("q", lens), array("d", times), array("q", links))


def _index_pcap(data: bytes, stats: ReadStats, endian: str, scale: float) -> FrameIndex:
    (link,) = struct.unpack_from(endian + "I", data, 20)
    link &= 0x0FFFFFFF
    stats.linktypes.add(link)
    n = len(data)
    if _pcapwalk is not None:
        raw_starts, raw_lens, raw_times, off, broke = _pcapwalk.walk(
            data, endian == ">", MAX_FRAME, scale
        )
        starts: Sequence[int] = memoryview(raw_starts).cast("q")
        idx = FrameIndex(
            starts, memoryview(raw_lens).cast("q"), memoryview(raw_times).cast("d"), None
        )
    else:
        offs, lens, times, off, broke = _walk(data, endian, scale)
        starts = offs
        idx = FrameIndex(array("q", offs), array("q", lens), array("d", times), None)
    if broke:
        stats.truncated += 1
        (incl,) = struct.unpack_from(endian + "I", data, off + 8)
        stats.errors.append(f"record {len(starts) + 1}: length {incl} runs past the file or limit")
    elif off != n:
        stats.truncated += 1
        stats.errors.append(f"{n - off} trailing bytes after record {len(starts)}")
    idx.links = array("q", [link]) * len(starts)
    stats.frames = len(starts)
    return idx


def _walk(
    data: bytes, endian: str, scale: float
) -> tuple[list[int], list[int], list[float], int, bool]:
    """The record chain in Python: (frame offsets, lengths, times, end offset, a record was bad)."""
    offs: list[int] = []
    lens: list[int] = []
    times: list[float] = []
    add_off, add_len, add_time = offs.append, lens.append, times.append
    head = struct.Struct(endian + "III").unpack_from
    off, n = 24, len(data)
    last = n - 16
    while off <= last:  # the hot loop: one unpack, three appends per record
        sec, frac, incl = head(data, off)
        start = off + 16
        off = start + incl
        if off > n or incl > MAX_FRAME:
            return offs, lens, times, start - 16, True
        add_off(start)
        add_len(incl)
        add_time(sec + frac * scale)
    return offs, lens, times, off, False


def _index_pcapng(data: bytes, stats: ReadStats) -> FrameIndex:
    if _pcapwalk is not None:
        raw_starts, raw_lens, raw_times, raw_links, linktypes, errors, truncated, secrets = (
            _pcapwalk.walk_ng(data)
        )
        idx = FrameIndex(
            memoryview(raw_starts).cast("q"),
            memoryview(raw_lens).cast("q"),
            memoryview(raw_times).cast("d"),
            memoryview(raw_links).cast("q"),
        )
    else:
        offs, lens, times, links, linktypes, errors, truncated, secrets = _walk_ng(data)
        idx = FrameIndex(array("q", offs), array("q", lens), array("d", times), array("q", links))
    stats.linktypes.update(linktypes)
    stats.errors += errors
    stats.secrets += [blob for kind, blob in secrets if kind == TLS_KEY_LOG]
    stats.truncated += truncated
    stats.frames = len(idx)
    return idx


TLS_KEY_LOG = 0x544C534B  # a decryption secrets block's type for an NSS key log ("TLSK")


def _walk_ng(
    data: bytes,
) -> tuple[
    list[int], list[int], list[float], list[int], list[int], list[str], int, list[tuple[int, bytes]]
]:
    """The block chain in Python (`walk_ng` in _pcapwalk.c mirrors it): frame offsets,
    lengths, times and link types, every interface's link type, damage seen, 1 if the
    chain broke or left bytes over, and every decryption secrets block's (type, data)."""
    n, off = len(data), 0
    endian = "<"
    ifaces: list[tuple[int, float, int]] = []  # (link type, seconds per tick, snap length)
    offs: list[int] = []
    lens: list[int] = []
    times: list[float] = []
    links: list[int] = []
    linktypes: list[int] = []
    errors: list[str] = []
    secrets: list[tuple[int, bytes]] = []
    truncated = 0
    while off + 12 <= n:
        btype, blen = struct.unpack_from(endian + "II", data, off)
        if btype == 0x0A0D0D0A:
            bom = data[off + 8 : off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack_from(endian + "II", data, off)
            ifaces = []
        if blen < 12 or blen % 4 or off + blen > n:
            truncated = 1
            errors.append(f"block at offset {off}: bad length {blen}")
            break
        body = off + 8
        if btype == 1 and blen >= 20:
            link, _, snap = struct.unpack_from(endian + "HHI", data, body)
            ifaces.append((link, _if_tsresol(data, body + 8, off + blen - 4, endian), snap))
            linktypes.append(link)
        elif btype == 6 and blen >= 32:
            ifid, hi, lo, cap, _orig = struct.unpack_from(endian + "IIIII", data, body)
            if ifid >= len(ifaces) or body + 20 + cap > off + blen - 4:
                errors.append(f"packet block at offset {off}: bad interface or length")
            else:
                link, tick, _ = ifaces[ifid]
                offs.append(body + 20)
                lens.append(cap)
                times.append(((hi << 32) | lo) * tick)
                links.append(link)
        elif btype == 10 and blen >= 20:  # decryption secrets
            kind, size = struct.unpack_from(endian + "II", data, body)
            if size <= blen - 20:
                secrets.append((kind, bytes(data[body + 8 : body + 8 + size])))
        elif btype == 3 and blen >= 16 and ifaces:
            # the packet as long as it was, or as the first interface's snap length cut it
            # (the block's padding is not the packet's)
            (orig,) = struct.unpack_from(endian + "I", data, body)
            snap = ifaces[0][2]
            offs.append(body + 4)
            lens.append(min(orig, blen - 16, snap) if snap else min(orig, blen - 16))
            times.append(0.0)
            links.append(ifaces[0][0])
        off += blen
    if off < n and not truncated:
        truncated = 1
        errors.append(f"{n - off} trailing bytes after block at offset {off}")
    return offs, lens, times, links, linktypes, errors, truncated, secrets


def _if_tsresol(data: bytes, off: int, end: int, endian: str) -> float:
    """The interface's time unit from its if_tsresol option (default microseconds)."""
    while off + 4 <= end:
        code, olen = struct.unpack_from(endian + "HH", data, off)
        if code == 0:
            break
        if code == 9 and olen >= 1:
            v = data[off + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0**-v
        off += 4 + ((olen + 3) & ~3)
    return 1e-6
