"""The capture file as the analyser reads it: mapped when it can be, read when not."""

from __future__ import annotations

import mmap
import os
import threading
from pathlib import Path

from harness.analysis import pcapio
from harness.analysis.analyzer import analyze_bytes, analyze_file
from harness.analysis.report import summary
from harness.analysis.session import build

PCAP = Path(__file__).resolve().parents[1] / "data" / "pcaps" / "aiortc-relayed.pcap"


def test_a_file_is_mapped_and_analysed_as_its_bytes() -> None:
    data = pcapio.read_capture(PCAP)
    assert isinstance(data, mmap.mmap) and data[:] == PCAP.read_bytes()
    mapped, copied = analyze_file(PCAP), analyze_bytes(PCAP.read_bytes(), PCAP)
    assert summary(build(mapped)) == summary(build(copied))


def test_empty_files_and_pipes_are_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.touch()
    assert pcapio.read_capture(empty) == b""
    assert analyze_file(empty).read.errors == ["not a capture file: 0 bytes"]
    fifo = tmp_path / "fifo.pcap"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(PCAP.read_bytes(),))
    writer.start()
    data = pcapio.read_capture(fifo)
    writer.join()
    assert data == PCAP.read_bytes()


def test_unreadable_paths_are_errors(tmp_path: Path) -> None:
    assert analyze_file(tmp_path / "missing.pcap").read.errors[0].startswith("cannot read:")
    assert analyze_file(tmp_path).read.errors[0].startswith("cannot read:")
