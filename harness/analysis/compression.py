"""Compressed capture files: gzip, zstd and lz4, which Wireshark reads as they are.

`tshark -w x.pcapng.gz` writes gzip, and so do many bug reports; zstd and lz4 (the LZ4
frame format) are what newer capture and log tools write, and tshark reads all three.
A file of several compressed frames (`cat a.zst b.zst`, gzip members) is read frame
after frame. What comes out is bounded (`MAX_UNCOMPRESSED`: a decompression bomb stops
there, named), and a cut or damaged stream gives what came before the damage, with the
damage recorded. zstd and lz4 come from PyPI's `zstandard` and `lz4` (the standard
library has neither before Python 3.14), imported only for a file that needs them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

from harness.analysis.pcapio import ReadStats

MAX_UNCOMPRESSED = 8 << 30  # a bomb stops here, named, instead of taking the memory
#: the most one gzip or lz4 step writes (zlib drops a step's output when it raises)
CHUNK = 1 << 16
#: input per gzip or zstd step; a zstd block of 4 bytes can stand for 128 KiB, so this
#: bounds a zstd step's output to 128 MiB (zstandard's decompressobj takes no bound)
STEP_IN = 4096

GZIP, ZSTD, LZ4 = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18"


class Cut(Exception):
    """The file ends inside a compressed frame."""


class Damaged(Exception):
    """The decompressor refused the data (its message says why)."""


def _gzip(rest: bytes) -> Iterator[bytes]:
    while rest[:2] == GZIP:  # one member after another (`cat a.gz b.gz` is valid gzip)
        inflate = zlib.decompressobj(wbits=31)
        off = 0
        while not inflate.eof:  # input in slices: zlib copies what a step leaves unread
            data = inflate.unconsumed_tail
            if not data:
                data = rest[off : off + STEP_IN]
                off += STEP_IN
            try:
                piece = inflate.decompress(data, CHUNK)
            except zlib.error as exc:
                raise Damaged(exc) from None
            if not piece and not data:  # no input left, and none held: cut
                raise Cut
            yield piece
        rest = inflate.unused_data + rest[off:]


def _zstd(rest: bytes) -> Iterator[bytes]:
    import zstandard

    while rest[:4] == ZSTD:
        obj = zstandard.ZstdDecompressor().decompressobj()
        off = 0
        while not obj.eof:
            if off >= len(rest):
                raise Cut
            try:
                yield obj.decompress(rest[off : off + STEP_IN])
            except zstandard.ZstdError as exc:
                raise Damaged(exc) from None
            off += STEP_IN
        rest = obj.unused_data + rest[off:]


def _lz4(rest: bytes) -> Iterator[bytes]:
    import lz4.frame

    while rest[:4] == LZ4:
        frame = lz4.frame.LZ4FrameDecompressor()
        while not frame.eof:
            try:  # it keeps the input it has not used: later calls give it none
                piece = frame.decompress(rest, max_length=CHUNK)
            except RuntimeError as exc:
                raise Damaged(exc) from None
            if not piece and not frame.eof:
                raise Cut
            rest = b""
            yield piece
        rest = frame.unused_data or b""  # None when the frame ends the file


#: a compressed file's first bytes -> its name and its frames' reader
CODECS: dict[bytes, tuple[str, Callable[[bytes], Iterator[bytes]]]] = {
    GZIP: ("gzip", _gzip),
    ZSTD: ("zstd", _zstd),
    LZ4: ("lz4", _lz4),
}


def uncompressed(data: bytes, stats: ReadStats, limit: int = MAX_UNCOMPRESSED) -> bytes:
    """The capture inside a compressed file, or `data` as it is; the compression goes
    into `stats.compression` and any damage into `stats.errors`."""
    head = bytes(data[:4])
    found = CODECS.get(head) or CODECS.get(head[:2])
    if found is None:
        return data
    name, frames = found
    stats.compression = name
    out: list[bytes] = []
    n = 0
    try:
        for piece in frames(bytes(data)):
            if n + len(piece) > limit:
                out.append(piece[: limit - n])
                stats.errors.append(
                    f"{name}: more than {limit} bytes uncompressed: read no further"
                )
                break
            out.append(piece)
            n += len(piece)
    except ImportError as exc:  # installed without its dependencies
        stats.errors.append(f"compressed with {name}: reading it needs {exc.name}, not installed")
    except Cut:
        stats.errors.append(f"{name}: the stream is cut after {n} bytes")
    except Damaged as exc:
        stats.errors.append(f"{name}: {exc} after {n} bytes")
    return b"".join(out)
