"""Walk a capture once: RFC 7983 demultiplexing of UDP, TCP reassembly, TURN unwrapping.

RTP over Ethernet/IPv4/UDP takes the vectorised fast path (fastpath.py); every
other frame is decoded one by one and everything rarer than RTP (STUN, DTLS, SIP,
HTTP) is dissected fully into events. A packet that a dissector cannot read is
counted under `malformed`, never raised.
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.analysis import dtls, fastpath, http, rtp, sdp, sip, stun
from harness.analysis.model import (
    Address,
    Analysis,
    DtlsEvent,
    Flow,
    JanusEvent,
    RtcpEvent,
    SdpEvent,
    SipEvent,
    StunEvent,
)
from harness.analysis.net import LINK_IPV4, TCP, Reassembler, decode, endpoints, make_key, reverse
from harness.analysis.pcapio import ReadStats, index_frames
from harness.analysis.tcp import TcpDirection
from harness.lazy import lazy

np = lazy("numpy")  # imported on first use: `harness validate` never needs it

_seq_ts = struct.Struct("!HI").unpack_from
RELAYED = b"T"


class Analyzer:
    """Feeds frames through the dissectors and fills an `Analysis`."""

    def __init__(self, result: Analysis) -> None:
        self.a = result
        self.flows: dict[bytes, Flow] = {}
        self.tcp: dict[bytes, TcpDirection] = {}
        self.relayed_addr: dict[bytes, Address] = {}  # client->server key -> relayed address
        self.defrag = Reassembler()
        self.channels: dict[tuple[bytes, int], Address] = {}  # (client->server key, ch) -> peer
        self.certs: dict[bytes, dtls.CertificateAssembler] = {}
        self.clock: dict[int, int] = {}  # payload type -> clock rate from SDP rtpmap
        self.offers: dict[str, bool] = {}  # SIP Call-ID -> an offer is outstanding

    # -- driving ---------------------------------------------------------------------------

    def run(self, data: bytes) -> Analysis:
        a = self.a
        idx = index_frames(data, a.read)
        if not len(idx):
            return a
        a.start_time = float(idx.times[0])
        times = idx.times - idx.times[0]
        batch = fastpath.find_rtp(data, idx, times)
        rest = np.ones(len(idx), dtype=bool)
        rest[batch.frames] = False
        todo = np.flatnonzero(rest)
        offs, lens = idx.offsets[todo].tolist(), idx.lengths[todo].tolist()
        links, rel = idx.links[todo].tolist(), times[todo].tolist()
        frame = self._frame
        for j, i in enumerate(todo.tolist()):
            try:
                frame(i + 1, rel[j], links[j], data[offs[j] : offs[j] + lens[j]])
            except Exception as exc:  # a dissector bug must not lose the rest of the file
                a.malformed[f"crash:{type(exc).__name__}"] += 1
        for key, cols in zip(batch.keys, batch.columns, strict=True):
            flow = self._flow(key[:12], float(cols[1][0]), int(cols[0][0]))
            stream = flow.streams.get(key[12:]) or self._new_stream(flow, key[12:], int(cols[4][0]))
            stream.add_columns(cols)
        a.packets = a.read.frames
        a.flows = sorted(self.flows.values(), key=lambda f: f.first_frame)
        for flow in a.flows:  # RTP is counted per stream, after the walk
            for st in flow.streams.values():
                st.clock_known = st.clock_known or st.first_pt in self.clock
                st.clock = rtp.STATIC_CLOCK.get(st.first_pt) or self.clock.get(
                    st.first_pt, st.clock
                )
                st.finish()
                flow.kinds["rtp"] += st.packets
                flow.packets += st.packets
                flow.bytes += st.bytes
                flow.last_t = max(flow.last_t, st.last_t)
                if st.first_frame < flow.first_frame:
                    flow.first_t, flow.first_frame = st.first_t, st.first_frame
        return a

    def _frame(self, no: int, t: float, link: int, f: bytes) -> None:
        """Decode one frame fully and dispatch it by transport."""
        seg = decode(link, f)
        if seg == "ip-fragment":
            whole = self.defrag.add(link, f)
            if whole is None:
                return  # held until the datagram is complete
            seg = decode(LINK_IPV4, whole)
        if type(seg) is str:
            self.a.skipped[seg] += 1
            return
        proto, key, payload, seq, flags = seg  # type: ignore[misc]
        if proto == TCP:
            self._tcp(key, payload, seq, flags, t, no)
            return
        self._udp(self._flow(key, t, no), key, payload, t, no)

    def _flow(self, key: bytes, t: float, no: int) -> Flow:
        return self.flows.get(key) or self._new_flow(key, key, "udp", None, t, no)

    def _new_flow(
        self, key: bytes, raw: bytes, proto: str, via: str | None, t: float, no: int
    ) -> Flow:
        s, sp, d, dp = endpoints(raw)
        flow = Flow(proto, (s, sp), (d, dp), via)
        flow.first_t, flow.first_frame = t, no
        flow.key = key
        self.flows[key] = flow
        return flow

    def _new_stream(self, flow: Flow, ssrc: bytes, pt: int) -> rtp.RtpStream:
        clock = rtp.STATIC_CLOCK.get(pt)
        stream = rtp.RtpStream(int.from_bytes(ssrc, "big"), flow.label, clock, flow.via is not None)
        stream.first_pt = pt
        flow.streams[ssrc] = stream
        return stream

    # -- UDP: RFC 7983 -----------------------------------------------------------------------

    def _udp(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        if len(p) >= 12 and 128 <= p[0] <= 191 and not 192 <= p[1] <= 223:
            stream = flow.streams.get(p[8:12]) or self._new_stream(flow, p[8:12], p[1] & 0x7F)
            seq, ts = _seq_ts(p, 2)
            stream.add(seq, ts, p[1] & 0x7F, t, no, len(p))
            return
        flow.packets += 1
        flow.bytes += len(p)
        flow.last_t = t
        if not p:
            flow.kinds["empty"] += 1
            return
        b = p[0]
        if 128 <= b <= 191:
            if len(p) < 12:
                flow.kinds["malformed"] += 1
                self.a.malformed["rtp"] += 1
            else:
                flow.kinds["rtcp"] += 1
                self._rtcp(flow, p, t, no)
        elif b < 4:
            self._stun(flow, key, p, t, no)
        elif 20 <= b <= 63:
            self._dtls(flow, key, p, t, no)
        elif 64 <= b <= 90 and sip.looks_like_sip(p):
            flow.kinds["sip"] += 1
            self._sip_message(flow, p, t, no, "udp")
        elif 64 <= b <= 79 and stun.is_channel_data(p):
            flow.kinds["turn-channel"] += 1
            self._channel_data(flow, key, p, t, no)
        elif 16 <= b <= 19:
            flow.kinds["zrtp"] += 1
        else:
            flow.kinds["other"] += 1

    def _rtcp(self, flow: Flow, p: bytes, t: float, no: int) -> None:
        packets = rtp.parse_rtcp(p, encrypted=flow.srtp)
        if not packets:
            self.a.malformed["rtcp"] += 1
            return
        self.a.rtcp.append(
            RtcpEvent(no, t, flow.src, flow.dst, flow.label, bool(flow.via), packets)
        )

    # -- STUN and TURN -----------------------------------------------------------------------

    def _stun(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        msg = stun.parse(p)
        if msg is None:
            flow.kinds["malformed"] += 1
            self.a.malformed["stun"] += 1
            return
        flow.kinds["stun"] += 1
        raw = p[: 20 + msg.length] if msg.integrity else b""
        self.a.stun.append(
            StunEvent(no, t, flow.src, flow.dst, flow.label, bool(flow.via), msg, raw)
        )
        if flow.via:
            return
        m = msg.method
        if m == "Allocate" and msg.cls == "request":
            flow.turn_client = True
        elif m == "Allocate" and msg.cls == "success" and msg.xor_relayed:
            self.relayed_addr[reverse(key)] = msg.xor_relayed[0]
        elif m == "ChannelBind" and msg.cls == "request" and msg.channel and msg.xor_peer:
            self.channels[(key, msg.channel)] = msg.xor_peer[0]
        elif m == "Send" and msg.cls == "indication" and msg.data is not None and msg.xor_peer:
            self._inner(flow, key, msg.xor_peer[0], True, msg.data, t, no)
        elif m == "Data" and msg.cls == "indication" and msg.data is not None and msg.xor_peer:
            self._inner(flow, key, msg.xor_peer[0], False, msg.data, t, no)

    def _channel_data(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        ch, data = stun.channel_data(p)
        to_server = (key, ch) in self.channels
        client_key = key if to_server else reverse(key)
        peer = self.channels.get((client_key, ch))
        if peer is None:
            self.a.malformed["turn-channel-unbound"] += 1
            peer = ("0.0.0.0", ch)
        self._inner(flow, key, peer, to_server, data, t, no)

    def _inner(
        self,
        outer: Flow,
        key: bytes,
        peer: Address,
        to_server: bool,
        data: bytes,
        t: float,
        no: int,
    ) -> None:
        """Analyse a relayed datagram as its own flow between relayed address and peer."""
        client_key = key if to_server else reverse(key)
        client = outer.src if to_server else outer.dst
        relayed = self.relayed_addr.get(client_key, client)
        src, dst = (relayed, peer) if to_server else (peer, relayed)
        try:
            raw = make_key(src[0], src[1], dst[0], dst[1])
        except ValueError:
            self.a.malformed["turn-address"] += 1
            return
        ikey = raw + RELAYED
        flow = self.flows.get(ikey)
        if flow is None:
            flow = self._new_flow(ikey, raw, "udp", outer.label, t, no)
        self._udp(flow, ikey, data, t, no)

    # -- DTLS --------------------------------------------------------------------------------

    def _dtls(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        if len(p) < 2 or p[1] != 0xFE:  # not a DTLS version byte
            # RFC 9147 4: DTLS 1.3 protected records start 001CSLEE (Firefox negotiates 1.3)
            flow.kinds["dtls13-ciphertext" if p[0] & 0xE0 == 0x20 else "other"] += 1
            return
        records = dtls.parse(p)
        if not records:
            flow.kinds["malformed"] += 1
            self.a.malformed["dtls"] += 1
            return
        flow.kinds["dtls"] += 1
        if all(r.content_type == "ApplicationData" for r in records):
            return
        event = DtlsEvent(no, t, flow.src, flow.dst, flow.label, bool(flow.via), records)
        for r in records:
            for hs in r.handshakes:
                if hs.type == "Certificate":
                    asm = self.certs.setdefault(key, dtls.CertificateAssembler())
                    event.certificate_fingerprint = asm.add(hs) or event.certificate_fingerprint
                elif hs.type == "ServerHello" and hs.srtp_profiles:
                    flow.srtp = True
                    back = self._reverse_flow(key)
                    if back is not None:
                        back.srtp = True
        self.a.dtls.append(event)

    def _reverse_flow(self, key: bytes) -> Flow | None:
        if key.endswith(RELAYED):
            return self.flows.get(reverse(key[:-1]) + RELAYED)
        return self.flows.get(reverse(key))

    # -- SIP, HTTP, WebSocket ------------------------------------------------------------------

    def _tcp(self, key: bytes, p: bytes, seq: int, flags: int, t: float, no: int) -> None:
        flow = self.flows.get(key)
        if flow is None:
            flow = self._new_flow(key, key, "tcp", None, t, no)
        flow.packets += 1
        flow.bytes += len(p)
        flow.last_t = t
        d = self.tcp.get(key)
        if d is None:
            d = self.tcp[key] = TcpDirection()
        if not d.feed(seq, flags, p):
            return
        if d.mode == "detect":
            if sip.looks_like_sip(d.buf):
                d.mode = "sip"
            elif http.looks_like_http(d.buf):
                d.mode = "http"
            elif len(d.buf) >= 8:
                d.mode = "other"
        if d.mode == "sip":
            messages, used = sip.split_stream(d.buf)
            for m in messages:
                flow.kinds["sip"] += 1
                self._sip_message(flow, m, t, no, "tcp")
        elif d.mode == "http":
            items, used = http.split_http(d.buf)
            for h in items:
                flow.kinds["http"] += 1
                self._json_body(flow, h.body, t, no, "http")
                if h.is_upgrade_to_websocket:
                    d.mode = "ws"
                    back = self.tcp.get(reverse(key))
                    if back is not None:
                        back.mode = "ws"
        elif d.mode == "ws":
            frames, used = http.split_ws(d.buf)
            for op, data in frames:
                flow.kinds["websocket"] += 1
                if op in (1, 2) and sip.looks_like_sip(data):
                    self._sip_message(flow, data, t, no, "ws")
                elif op in (1, 2):
                    self._json_body(flow, data, t, no, "ws")
        else:
            used = len(d.buf)
        if used:
            del d.buf[:used]

    def _sip_message(self, flow: Flow, p: bytes, t: float, no: int, transport: str) -> None:
        msg = sip.parse(p)
        if msg is None:
            self.a.malformed["sip"] += 1
            return
        ev = SipEvent(no, t, flow.src, flow.dst, flow.label, bool(flow.via), transport, msg)
        self.a.sip.append(ev)
        # Offer and answer alternate per hop: a proxy forwards an offer under the same
        # Call-ID, and that copy is the next hop's offer, not an answer.
        leg = (msg.call_id, frozenset((flow.src[0], flow.dst[0])))
        if msg.has_sdp:
            outstanding = self.offers.get(leg, False)
            kind = "answer" if outstanding else "offer"
            self.offers[leg] = not outstanding
            self._sdp(flow, msg.body, t, no, f"sip/{transport}", kind, msg.call_id)
        elif msg.status is not None and msg.status >= 300 and msg.method == "INVITE":
            self.offers[leg] = False  # a rejected offer is withdrawn

    def _json_body(self, flow: Flow, body: bytes, t: float, no: int, source: str) -> None:
        for msg in http.janus_messages(body):
            if msg["janus"] == "keepalive":
                continue
            session = msg.get("session_id") or msg.get("sender")
            self.a.janus.append(
                JanusEvent(
                    no,
                    t,
                    flow.src,
                    flow.dst,
                    flow.label,
                    bool(flow.via),
                    http.janus_label(msg),
                    str(msg.get("transaction")) if msg.get("transaction") else None,
                    str(session) if session else None,
                    isinstance(msg.get("jsep"), dict),
                )
            )
        found = http.jsep(body)
        if found:
            kind, text, doc = found
            session = doc.get("session_id") or doc.get("sender")
            self._sdp(flow, text, t, no, f"jsep/{source}", kind, str(session) if session else None)

    def _sdp(
        self, flow: Flow, text: str, t: float, no: int, source: str, kind: str, dialog: str | None
    ) -> None:
        parsed = sdp.parse(text)
        for m in parsed.media:
            for _, v in m.attrs("rtpmap"):
                pt, _, enc = v.partition(" ")
                parts = enc.split("/")
                if pt.isdigit() and len(parts) > 1 and parts[1].isdigit():
                    self.clock.setdefault(int(pt), int(parts[1]))
        ev = SdpEvent(no, t, flow.src, flow.dst, flow.label, bool(flow.via), source, kind, parsed)
        ev.dialog = dialog
        self.a.sdp.append(ev)


@contextmanager
def paused_gc() -> Iterator[None]:
    """The walk builds many small acyclic objects: cyclic GC passes over them only cost time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def analyze_bytes(data: bytes, path: Path | str = "<memory>") -> Analysis:
    """Analyse a capture image already in memory."""
    with paused_gc():
        return Analyzer(Analysis(Path(path), ReadStats())).run(data)


def analyze_file(path: Path | str) -> Analysis:
    """Analyse one pcap or pcapng file; unreadable files give an Analysis with errors."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        result = Analysis(path, ReadStats())
        result.read.errors.append(f"cannot read: {exc}")
        return result
    return analyze_bytes(data, path)
