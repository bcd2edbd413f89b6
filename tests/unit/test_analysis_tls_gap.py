"""TLS with a key log after a capture gap: decryption reads on from the next whole record.

A real TLS session (Python's ssl, that is OpenSSL, in memory: TLS 1.3, and TLS 1.2 with
AES-GCM and with ChaCha20-Poly1305) carries SIP messages from the client, one record each.
Its bytes go into TCP segments and a range of them is left out, as a capture that
dropped frames. The oracle is the session itself: where each record lies in the client's
byte stream and which message it carried. Found must be exactly the messages of the
records wholly before the gap and of those that start after it, nothing malformed.
Before, a gap left decryption reading record headers in the middle of a record, and
every later message of the connection was lost behind "decryption failed".
"""

from __future__ import annotations

import functools
import ssl
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis.analyzer import Analyzer
from harness.analysis.model import Analysis
from harness.analysis.pcapio import ReadStats
from harness.analysis.tlsdecrypt import read_keylog
from tests.data.make_tls_pcaps import _cert
from tests.fuzzing import FAST, pcap_image
from tests.unit.test_analysis_tcpwalk import frame, same, sip_message

VERSIONS = {
    "tls13": (ssl.TLSVersion.TLSv1_3, None),
    "tls12-gcm": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    "tls12-chacha": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305"),
}
MESSAGES = 14


@functools.cache
def session(name: str) -> tuple[list[tuple[str, bytes]], bytes, list[tuple[int, int]], str]:
    """The handshake as (sender 'c' or 's', bytes) in the order sent; the client's bytes
    after it (one record per SIP message); each record's (start, end) in them; the key log."""
    version, ciphers = VERSIONS[name]
    with tempfile.TemporaryDirectory() as tmp:
        kp, cp = _cert(Path(tmp))
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.load_cert_chain(cp, kp)
        cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cli.check_hostname, cli.verify_mode = False, ssl.CERT_NONE
        for ctx in (srv, cli):
            ctx.minimum_version = ctx.maximum_version = version
        if ciphers:
            cli.set_ciphers(ciphers)
        cli.keylog_filename = str(Path(tmp) / "keys")
        cin, cout, sin, sout = (ssl.MemoryBIO() for _ in range(4))
        c = cli.wrap_bio(cin, cout, server_hostname="sip.test")
        s = srv.wrap_bio(sin, sout, server_side=True)
        sent: list[tuple[str, bytes]] = []

        def pump() -> None:
            for out, into, who in ((cout, sin, "c"), (sout, cin, "s")):
                data = out.read()
                if data:
                    sent.append((who, data))
                    into.write(data)

        done = set()
        for _ in range(10):  # the handshake, flight by flight
            for end in (c, s):
                try:
                    end.do_handshake()
                    done.add(id(end))
                except ssl.SSLWantReadError:
                    pass
            pump()
        assert len(done) == 2, "the in-memory handshake did not finish"
        handshake, app = list(sent), bytearray()
        for i in range(MESSAGES):
            c.write(sip_message(i % 4, i))
            app += cout.read()  # the server never answers: the client's direction is read
        keys = (Path(tmp) / "keys").read_text()
    records, at = [], 0
    while at < len(app):  # the oracle's own walk of the record headers
        end = at + 5 + int.from_bytes(app[at + 3 : at + 5], "big")
        records.append((at, end))
        at = end
    assert at == len(app) and len(records) == MESSAGES, "one record per message"
    return handshake, bytes(app), records, keys


def image(name: str, lost_at: int, lost_end: int, size: int) -> bytes:
    """The session's capture without the client's bytes [lost_at, lost_end) after the
    handshake, in segments of `size` bytes."""
    handshake, app, _, _ = session(name)
    seq = {"c": 1000, "s": 9000}
    frames = [
        frame(40001, 5061, seq["c"] - 1, 0x02, b""),
        frame(5061, 40001, seq["s"] - 1, 0x12, b""),
    ]
    for who, data in handshake:
        sport, dport = (40001, 5061) if who == "c" else (5061, 40001)
        frames.append(frame(sport, dport, seq[who], 0x18, data))
        seq[who] += len(data)
    pieces = [(at, app[at : min(at + size, lost_at)]) for at in range(0, lost_at, size)]
    pieces += [(at, app[at : at + size]) for at in range(lost_end, len(app), size)]
    frames += [frame(40001, 5061, seq["c"] + at, 0x18, p) for at, p in pieces]
    return pcap_image(frames)


@FAST
@given(st.data())
@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_decryption_reads_on_from_the_next_whole_record(name: str, data: st.DataObject) -> None:
    _, app, records, keylog = session(name)
    lost_at = data.draw(st.integers(1, len(app) - 300))
    lost_end = min(lost_at + data.draw(st.sampled_from([1, 20, 200, 700, 2000])), len(app) - 1)
    # 5-byte segments: more than tcp.MAX_PENDING wait behind the gap, which is given up
    # in the walk; 1400: fewer, and it is given up at the end of the capture
    size = data.draw(st.sampled_from([5, 1400]))
    a = analyze(image(name, lost_at, lost_end, size), keylog)
    expected = [
        f"m{i}" for i, (start, end) in enumerate(records) if end <= lost_at or start >= lost_end
    ]
    assert [e.msg.call_id for e in a.sip] == expected
    assert not a.malformed
    assert a.skipped["tcp-gaps"] == 1
    assert not [k for k in a.skipped if k.startswith("tls: ")], dict(a.skipped)


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_without_a_gap_every_message_is_read(name: str) -> None:
    """The sessions themselves decrypt whole (the property above rests on it)."""
    _, app, _, keylog = session(name)
    a = analyze(image(name, len(app), len(app), 1400), keylog)
    assert [e.msg.call_id for e in a.sip] == [f"m{i}" for i in range(MESSAGES)]
    same(image(name, 300, 500, 5), keys(keylog))  # and the compiled walk agrees


def test_no_record_after_the_gap_gives_decryption_up_with_its_reason() -> None:
    """Bytes that open as no record at any number the gap allows: the direction is passed
    over with the reason counted, not read as damaged records one after another."""
    handshake, app, records, keylog = session("tls13")
    noise = bytes((i * 131 + 7) % 251 for i in range(40000))
    assert not any(noise[i] in (20, 21, 22, 23) and noise[i + 1] == 3 for i in range(39999))
    start = 1000 + sum(len(d) for who, d in handshake if who == "c") + len(app) + 500
    after = [
        frame(40001, 5061, start + at, 0x18, noise[at : at + 1400])
        for at in range(0, len(noise), 1400)
    ]
    a = analyze(image("tls13", records[2][1], len(app), 1400) + pcap_image(after)[24:], keylog)
    assert [e.msg.call_id for e in a.sip] == ["m0", "m1", "m2"]
    assert a.skipped["tls: decryption lost at a capture gap (no record opens after it)"] == 1


def keys(keylog: str) -> dict[tuple[str, bytes], bytes]:
    with tempfile.NamedTemporaryFile("w", suffix=".keys") as f:
        f.write(keylog)
        f.flush()
        return read_keylog(f.name)


def analyze(data: bytes, keylog: str) -> Analysis:
    return Analyzer(Analysis(Path("x.pcap"), ReadStats()), keys(keylog)).run(data)
