"""TLS with a key log after a capture gap: decryption reads on from the next whole record.

A real TLS session (Python's ssl, that is OpenSSL, in memory: TLS 1.3, and TLS 1.2 with
AES-GCM and with ChaCha20-Poly1305) carries SIP messages from the client, one record each,
as they are or (secure WebSocket, after the upgrade both ways) one WebSocket frame each.
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
from tests.unit.test_analysis_tcpwalk import frame, same, sip_message, ws_frame

VERSIONS = {
    "tls13": (ssl.TLSVersion.TLSv1_3, None),
    "tls12-gcm": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    "tls12-chacha": (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305"),
}
MESSAGES = 14


#: secure WebSocket (RFC 7118 SIP over wss://): the upgrade both ways, then one masked
#: frame per SIP message
UPGRADE = (
    b"GET /sip HTTP/1.1\r\nHost: sip.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
)


#: plaintext bytes per record on secure WebSocket: frames cross records, so the records
#: after a gap start in the middle of a frame
WS_RECORD = 97


@functools.cache
def session(
    name: str, ws: bool
) -> tuple[list[tuple[str, bytes]], bytes, list[tuple[int, int]], str, list[tuple[int, int]]]:
    """The handshake as (sender 'c' or 's', bytes) in the order sent (with `ws`, the
    WebSocket upgrade too); the client's bytes after it (one record per SIP message, or
    with `ws` the messages' WebSocket frames cut into records of WS_RECORD bytes); each
    record's (start, end) in them; the key log; each message's first and last record."""
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
            for side in (c, s):
                try:
                    side.do_handshake()
                    done.add(id(side))
                except ssl.SSLWantReadError:
                    pass
            pump()
        assert len(done) == 2, "the in-memory handshake did not finish"
        if ws:
            c.write(UPGRADE[0])
            pump()
            s.write(UPGRADE[1])
            pump()
        handshake, app = list(sent), bytearray()
        if ws:
            frames = [ws_frame(sip_message(i % 4, i), bytes([i, 7, 3, 1])) for i in range(MESSAGES)]
            plain, at = b"".join(frames), 0
            pieces = [plain[k : k + WS_RECORD] for k in range(0, len(plain), WS_RECORD)]
            spans = []
            for f in frames:
                spans.append((at // WS_RECORD, (at + len(f) - 1) // WS_RECORD))
                at += len(f)
        else:
            pieces = [sip_message(i % 4, i) for i in range(MESSAGES)]
            spans = [(i, i) for i in range(MESSAGES)]
        for piece in pieces:
            c.write(piece)
            app += cout.read()  # the server never answers: the client's direction is read
        keys = (Path(tmp) / "keys").read_text()
    records, at = [], 0
    while at < len(app):  # the oracle's own walk of the record headers
        end = at + 5 + int.from_bytes(app[at + 3 : at + 5], "big")
        records.append((at, end))
        at = end
    assert at == len(app) and len(records) == len(pieces), "one record per write"
    return handshake, bytes(app), records, keys, spans


def image(name: str, lost_at: int, lost_end: int, size: int, ws: bool) -> bytes:
    """The session's capture without the client's bytes [lost_at, lost_end) after the
    handshake, in segments of `size` bytes."""
    handshake, app, _, _, _ = session(name, ws)
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
@pytest.mark.parametrize("ws", [False, True], ids=["sip-tls", "sip-wss"])
@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_decryption_reads_on_from_the_next_whole_record(
    name: str, ws: bool, data: st.DataObject
) -> None:
    """SIP over TLS, and over secure WebSocket: the records after the gap are decrypted,
    and their plaintext read from its next WebSocket frame (framing.sync_ws: the first
    record after the gap starts in the middle of one)."""
    _, app, records, keylog, spans = session(name, ws)
    lost_at = data.draw(st.integers(1, len(app) - 300))
    lost_end = min(lost_at + data.draw(st.sampled_from([1, 20, 200, 700, 2000])), len(app) - 1)
    # 5-byte segments: more than tcp.MAX_PENDING wait behind the gap, which is given up
    # in the walk; 1400: fewer, and it is given up at the end of the capture
    size = data.draw(st.sampled_from([5, 1400]))
    a = analyze(image(name, lost_at, lost_end, size, ws), keylog)
    expected = [  # wholly before the gap, or starting in a record after it
        f"m{i}"
        for i, (first, last) in enumerate(spans)
        if records[last][1] <= lost_at or records[first][0] >= lost_end
    ]
    assert [e.msg.call_id for e in a.sip] == expected
    assert {e.transport for e in a.sip} <= {"wss" if ws else "tls"}
    assert not a.malformed
    assert a.skipped["tcp-gaps"] == 1
    assert not [k for k in a.skipped if k.startswith("tls: ")], dict(a.skipped)


@pytest.mark.parametrize("ws", [False, True], ids=["sip-tls", "sip-wss"])
@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_without_a_gap_every_message_is_read(name: str, ws: bool) -> None:
    """The sessions themselves decrypt whole (the property above rests on it)."""
    _, app, _, keylog, _ = session(name, ws)
    a = analyze(image(name, len(app), len(app), 1400, ws), keylog)
    assert [e.msg.call_id for e in a.sip] == [f"m{i}" for i in range(MESSAGES)]
    assert {e.transport for e in a.sip} == {"wss" if ws else "tls"}
    same(image(name, 300, 500, 5, ws), keys(keylog))  # and the compiled walk agrees


def test_no_record_after_the_gap_gives_decryption_up_with_its_reason() -> None:
    """Bytes that open as no record at any number the gap allows: the direction is passed
    over with the reason counted, not read as damaged records one after another."""
    handshake, app, records, keylog, _ = session("tls13", False)
    noise = bytes((i * 131 + 7) % 251 for i in range(40000))
    assert not any(noise[i] in (20, 21, 22, 23) and noise[i + 1] == 3 for i in range(39999))
    start = 1000 + sum(len(d) for who, d in handshake if who == "c") + len(app) + 500
    after = [
        frame(40001, 5061, start + at, 0x18, noise[at : at + 1400])
        for at in range(0, len(noise), 1400)
    ]
    lost = image("tls13", records[2][1], len(app), 1400, False)
    a = analyze(lost + pcap_image(after)[24:], keylog)
    assert [e.msg.call_id for e in a.sip] == ["m0", "m1", "m2"]
    assert a.skipped["tls: decryption lost at a capture gap (no record opens after it)"] == 1


def keys(keylog: str) -> dict[tuple[str, bytes], bytes]:
    with tempfile.NamedTemporaryFile("w", suffix=".keys") as f:
        f.write(keylog)
        f.flush()
        return read_keylog(f.name)


def analyze(data: bytes, keylog: str) -> Analysis:
    return Analyzer(Analysis(Path("x.pcap"), ReadStats()), keys(keylog)).run(data)
