"""What a reassembled TCP direction carries, and handing each message to its dissector.

SIP, HTTP and WebSocket are recognised by their first bytes; STUN/TURN over TCP
and RFC 4571 framing (ICE-TCP) by `framing.sync`, which also finds the first
whole frame of a stream whose capture began mid-connection. TLS is decrypted when a
key log names the session (tlsdecrypt.py) and its plaintext is read the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.analysis import framing, http, sip
from harness.analysis.net import reverse
from harness.analysis.tcp import MAX_PENDING, SYN, TcpDirection

try:
    from harness.analysis import _tcpwalk  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: `TcpStreams._tcp_python` reads every segment
    _tcpwalk = None

if TYPE_CHECKING:  # decryption loads with a key log only (a walk without one never needs it)
    from harness.analysis.model import Analysis, Flow
    from harness.analysis.tlsdecrypt import TlsConnection


class TcpStreams:
    """Mixin of `Analyzer`: the TCP side of the walk."""

    a: Analysis
    flows: dict[bytes, Flow]
    tcp: dict[bytes, TcpDirection]
    keylog: dict[tuple[str, bytes], bytes]
    tls: dict[bytes, TlsConnection]

    if TYPE_CHECKING:  # provided by Analyzer

        def _new_flow(
            self, key: bytes, raw: bytes, proto: str, via: str | None, t: float, no: int
        ) -> Flow: ...
        def _udp(
            self, flow: Flow, key: bytes, p: bytes, t: float, no: int, count: bool = True
        ) -> None: ...
        def _stun(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None: ...
        def _channel_data(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None: ...
        def _sip_message(self, flow: Flow, p: bytes, t: float, no: int, transport: str) -> None: ...
        def _json_body(self, flow: Flow, body: bytes, t: float, no: int, source: str) -> None: ...

    def _tcp_python(self, key: bytes, p: bytes, seq: int, flags: int, t: float, no: int) -> None:
        """One TCP segment of the walk. `_tcp` is this, compiled when built
        (`_tcpwalk.segment`: a bare SYN or FIN, and an in-order segment of an HTTP or SIP
        direction, run without a Python frame; it hands every other segment here)."""
        d = self.tcp.get(key)
        if d is None:
            d = self.tcp[key] = TcpDirection()
            d.opened = bool(flags & SYN)
            d.flow = self.flows.get(key) or self._new_flow(key, key, "tcp", None, t, no)
        flow = d.flow
        flow.packets += 1
        flow.last_t = t
        if not p:  # TcpDirection.feed, inline: half the segments are a bare SYN or FIN
            if flags & SYN:
                d.next_seq = (seq + 1) & 0xFFFFFFFF
            return
        n = len(p)
        flow.bytes += n
        if flags & SYN:
            d.next_seq = (seq + 1) & 0xFFFFFFFF
            return
        if seq != d.next_seq or d.pending:  # out of order, a retransmission or a gap
            if not d.feed(seq, flags, p, (t, no)):
                if len(d.pending) > MAX_PENDING:
                    self._skip_hole(key, d)
                return
        else:
            d.next_seq = (seq + n) & 0xFFFFFFFF
            mode = d.mode
            if mode == "http" or (mode == "sip" and not d.buf):  # the usual cases: read here
                buf = d.buf
                if buf:
                    buf += p
                    src: bytes | bytearray = buf
                else:  # nothing held back: the segment is read as it is, only a tail is kept
                    src = p
                try:
                    if mode == "http":
                        used = self._http(flow, key, d, t, no, False, src)
                    else:
                        used = self._sip_stream(flow, src, t, no, "tcp")
                except Exception:
                    if src is p:
                        buf += p  # kept whole, as when appended first (a dissector failed)
                    raise
                if src is buf:
                    if used:
                        del buf[:used]
                elif used < n:
                    buf += p[used:] if used else p
                return
            d.buf += p
        self._read(flow, key, d, t, no)

    def _read(self, flow: Flow, key: bytes, d: TcpDirection, t: float, no: int) -> None:
        """What `d.buf` holds now, to its reader."""
        if d.mode == "http":  # the usual case (Janus' REST API): straight to its reader
            used = self._http(flow, key, d, t, no, False, d.buf)
        else:
            if d.mode == "detect":
                self._detect(d)
            if d.mode == "tls":
                used = self._tls(flow, key, d, t, no)
            else:
                used = self._messages(flow, key, d, t, no, tls=False)
        if used:
            del d.buf[:used]

    def _tcp_done(self) -> None:
        """End of the capture: segments still waiting behind a hole are read (fewer than
        tcp.MAX_PENDING waited behind it, so it was never given up)."""
        for key, d in self.tcp.items():
            try:
                while d.pending:
                    self._skip_hole(key, d)
            except Exception as exc:  # as in the walk: a dissector bug loses this stream only
                self.a.malformed[f"crash:{type(exc).__name__}"] += 1

    def _skip_hole(self, key: bytes, d: TcpDirection) -> None:
        """A hole the capture never filled: the bytes held before it are dropped (what they
        began cannot end), SIP or HTTP is read on from the next start line, not from a
        message's middle joined to another's start, and each waiting segment is read at its
        own frame."""
        self.a.skipped["tcp-gaps"] += 1
        held = self._cut(d, "tcp-bytes-cut-by-a-gap")
        at: tuple[float, int] | None = d.skip_hole()
        if d.mode == "tls":  # decrypted: read on from the next whole record (_tls)
            conn = self.tls.get(min(key, reverse(key)))
            if conn is not None:
                conn.missed(key, held + d.gap)
            if d.inner is not None:  # the plaintext of the records lost with it
                self._cut(d.inner, "tls-plaintext-cut-by-a-gap")
        while at is not None:
            self._read(d.flow, key, d, *at)
            at = d.take()

    def _cut(self, d: TcpDirection, count: str) -> int:
        """The bytes `d` held before a hole are dropped (what they began cannot end) and
        counted under `count`; SIP or HTTP is looked for from the next start line, TURN-TCP
        or RFC 4571 from the next frames that chain (`framing.sync`: not whatever the
        middle of a frame reads as); the number of bytes dropped."""
        held = len(d.buf)
        if held:
            self.a.skipped[count] += held
            d.buf.clear()
        d.opened, d.scanned = False, 0  # what follows may start anywhere
        if d.mode in ("sip", "http", framing.TURN, framing.RFC4571):
            d.mode, d.head = "detect", None
        return held

    _tcp = _tcp_python if _tcpwalk is None else _tcpwalk.segment

    def _messages(
        self, flow: Flow, key: bytes, d: TcpDirection, t: float, no: int, tls: bool
    ) -> int:
        """Hand the whole messages in `d.buf` to their dissectors; bytes used (the caller
        has told the protocol, `_detect`, when it could)."""
        if d.mode == "sip":
            used = self._sip_stream(flow, d.buf, t, no, "tls" if tls else "tcp")
        elif d.mode == "http":
            used = self._http(flow, key, d, t, no, tls, d.buf)
        elif d.mode == "ws":
            start = 0
            if not d.opened:  # after a gap: from the next frame with a message in it
                start, d.opened = framing.sync_ws(d.buf)
                if start:
                    self.a.skipped["ws-bytes-before-next-frame"] += start
                if not d.opened:
                    return start
            frames, used = http.split_ws(d.buf, start)
            ws = "wss" if tls else "ws"
            for op, data in frames:
                flow.kinds["websocket"] += 1
                if op in (1, 2) and sip.looks_like_sip(data):
                    self._sip_message(flow, data, t, no, ws)
                elif op in (1, 2):
                    self._json_body(flow, data, t, no, ws)
        elif d.mode in (framing.TURN, framing.RFC4571):
            used = self._framed(flow, key, d, t, no)
        elif d.mode == "detect":
            used = 0
        else:
            used = len(d.buf)
        return used

    def _sip_stream(
        self, flow: Flow, buf: bytes | bytearray, t: float, no: int, transport: str
    ) -> int:
        """The whole SIP messages at the start of `buf` to their reader; bytes used."""
        messages, used = sip.split_stream(buf)
        for m in messages:
            flow.kinds["sip"] += 1
            self._sip_message(flow, m, t, no, transport)
        return used

    def _http(
        self,
        flow: Flow,
        key: bytes,
        d: TcpDirection,
        t: float,
        no: int,
        tls: bool,
        buf: bytes | bytearray,
    ) -> int:
        """HTTP messages at the start of `buf` (`d.buf`, or a segment read in place): JSON
        bodies to their reader; a WebSocket upgrade switches both ways."""
        count, used, d.head, upgrade, bodies = http.read_bodies(buf, d.head)
        if count:
            self._http_messages(flow, key, d, t, no, tls, count, upgrade, bodies)
        return used

    def _http_messages(
        self,
        flow: Flow,
        key: bytes,
        d: TcpDirection,
        t: float,
        no: int,
        tls: bool,
        count: int,
        upgrade: bool,
        bodies: list[bytes],
    ) -> None:
        """What `http.read_bodies` found: counted, bodies read, an upgrade followed."""
        flow.kinds["http"] += count
        for body in bodies:  # (an empty one says nothing: most requests of a long poll)
            self._json_body(flow, body, t, no, "https" if tls else "http")
        if upgrade:  # the last message: frames follow it, from their first byte
            d.mode, d.opened = "ws", True
            back = self.tcp.get(reverse(key))
            back = back.inner if back is not None and tls else back
            if back is not None:
                back.mode, back.opened = "ws", True

    def _tls(self, flow: Flow, key: bytes, d: TcpDirection, t: float, no: int) -> int:
        """TLS records: opaque without a key log; with one, the plaintext is read on."""
        if not self.keylog:
            flow.kinds["tls"] += 1
            return len(d.buf)
        from harness.analysis.tlsdecrypt import APPLICATION, TlsConnection

        conn_id = min(key, reverse(key))
        conn = self.tls.get(conn_id)
        if conn is None:
            conn = self.tls[conn_id] = TlsConnection(self.keylog)
        records, used, skipped = conn.records(key, d.buf)
        if skipped:
            self.a.skipped["tls-bytes-before-next-record"] += skipped
        inner = d.inner
        for rtype, plain in records:
            flow.kinds["tls"] += 1
            if rtype == APPLICATION and plain:
                if inner is None:
                    inner = d.inner = TcpDirection()
                    inner.opened = True  # the plaintext from its first byte
                inner.buf += plain
        if inner is not None and inner.buf:
            if inner.mode == "detect":
                self._detect(inner)
            done = self._messages(flow, key, inner, t, no, tls=True)
            if done:
                del inner.buf[:done]
        return used

    def _detect(self, d: TcpDirection) -> None:
        """The stream's protocol, from its first whole message or frame on: at its first
        byte when the capture saw the connection open, else wherever one starts."""
        buf = d.buf
        if d.opened and buf[:1] == b"\r":  # a load balancer's binary PROXY header (v2)?
            n = framing.proxy_v2(buf)
            if n is None:
                return  # the rest of it is still coming
            if n:  # the stream proper starts after it
                self.a.skipped["tcp-bytes-before-first-frame"] += n
                del buf[:n]
                if not buf:
                    return
        if len(buf) >= 3 and buf[0] in (0x16, 0x17) and buf[1] == 3:
            d.mode = "tls"
            return
        first = framing.text_start(buf) if d.opened else None
        if first is not None:  # the usual case: a connection seen from its SYN
            d.mode = first
            return
        text = framing.is_text(buf, d.scanned)
        if not text and d.opened:
            d.mode = framing.first_frame(buf) or "detect"
            return
        if text and d.opened:  # its first line, after any CRLF keep-alives (RFC 5626 4.4.1)
            at = framing.after_crlfs(buf)  # or a proxy's PROXY line (HAProxy's protocol v1)
            if framing.text_start(buf[at : at + 16]) is None and buf[at : at + 6] != b"PROXY ":
                if buf.find(b"\n", at) >= 0 or len(buf) >= framing.TEXT_SCAN:
                    d.mode = "other"  # SMTP, say: no SIP, no HTTP
                return
        if text:  # searched on from where the last segment's search left off
            mode, skip = framing.sync_text(buf, d.scanned)
            d.scanned = 0 if mode else skip
        else:
            mode, skip = framing.sync(buf) or (None, 0)
        if mode:
            d.mode = mode
            if skip:
                self.a.skipped["tcp-bytes-before-first-frame"] += skip
                del buf[:skip]
        elif len(buf) >= (framing.TEXT_SCAN if text else framing.SCAN):
            d.mode = "other"

    def _framed(self, flow: Flow, key: bytes, d: TcpDirection, t: float, no: int) -> int:
        """Dispatch whole TURN-TCP or RFC 4571 frames; resynchronise after a gap."""
        frames, used = framing.split(d.buf, d.mode)
        for f in frames:
            if not f:  # bytes that fit no frame: look for the next one
                self.a.malformed[f"{d.mode}-framing"] += 1
                # from here, the next frames that chain
                d.mode, d.opened, d.scanned = "detect", False, 0
                return used + 1
            if d.mode == framing.RFC4571:
                self._udp(flow, key, f, t, no, count=False)
            elif f[0] < 4:
                self._stun(flow, key, f, t, no)
            else:
                flow.kinds["turn-channel"] += 1
                self._channel_data(flow, key, f, t, no)
        return used


if _tcpwalk is not None:
    from harness.analysis.model import Flow

    # it calls http.read_bodies and sip.split_stream as they are at each segment
    _tcpwalk.setup(http, sip, TcpDirection, Flow)
