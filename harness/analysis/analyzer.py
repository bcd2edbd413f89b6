"""Walk a capture once: RFC 7983 demultiplexing of UDP, TCP reassembly, TURN unwrapping.

RTP over Ethernet/IPv4/UDP takes the vectorised fast path (fastpath.py); every
other frame is decoded one by one and everything rarer than RTP (STUN, DTLS, SIP,
HTTP) is dissected fully into events. A packet that a dissector cannot read is
counted under `malformed`, never raised.
"""

from __future__ import annotations

import gc
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

from harness.analysis import dtls, exitkeep, fastpath, http, rtp, sdp, sip, stun
from harness.analysis.compression import uncompressed
from harness.analysis.datachannels import DataChannels, NotSctp
from harness.analysis.ipfrag import Reassembler
from harness.analysis.model import (
    Address,
    Analysis,
    DtlsEvent,
    Flow,
    RtcpEvent,
    SdpEvent,
    SipEvent,
)
from harness.analysis.net import TCP, Segment, decode, endpoints, reassembled, reverse, segments
from harness.analysis.pcapio import ReadStats, index_frames, read_capture
from harness.analysis.rtp import header_fits
from harness.analysis.tcp import TcpDirection
from harness.analysis.tcpstreams import TcpStreams
from harness.analysis.turnrelay import RELAYED, TurnRelay, _datagram

try:
    from harness.analysis import _walkloop  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # not built: run() walks the frames in Python
    _walkloop = None
try:  # Analyzer._new_flow_py in C
    from harness.analysis import _flows  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:
    _flows = None
#: _flows.new_flow, bound to Flow (None: _new_flow_py)
_make_flow = None
if _flows is not None:
    _flows.setup(Flow, Counter, endpoints)
    _make_flow = _flows.new_flow

if TYPE_CHECKING:  # decryption loads with a key log only (a walk without one never needs it)
    from harness.analysis.tlsdecrypt import TlsConnection

_seq_ts = struct.Struct("!HI").unpack_from
#: UDP services whose first byte can look like RTP's (DNS IDs, NTP modes): never media
SERVICE_PORTS = frozenset(p.to_bytes(2, "big") for p in fastpath.SERVICE_PORTS)


class Analyzer(TcpStreams, TurnRelay, DataChannels):
    """Feeds frames through the dissectors and fills an `Analysis`."""

    def __init__(
        self, result: Analysis, keylog: dict[tuple[str, bytes], bytes] | None = None
    ) -> None:
        self.a = result
        self.keylog = keylog or {}
        self.tls: dict[bytes, TlsConnection] = {}
        self.associations = {}  # DTLS, decrypted when keylog names them (datachannels.py)
        self.sctp_in = {}
        self.labels = {}
        self.not_sctp = NotSctp()
        self.flows: dict[bytes, Flow] = {}
        self.tcp: dict[bytes, TcpDirection] = {}
        self.relayed_addr: dict[bytes, Address] = {}  # client->server key -> relayed address
        self.channels: dict[tuple[bytes, int], Address] = {}  # (client->server key, ch) -> peer
        self.certs: dict[bytes, dtls.CertificateAssembler] = {}
        self.clock: dict[int, int] = {}  # payload type -> clock rate from SDP rtpmap
        #: (SIP Call-ID, the hop's two addresses) -> an offer is outstanding on that leg
        self.offers: dict[tuple[str, frozenset[str]], bool] = {}
        self.fragments = Reassembler()
        #: (TURN flow key, peer) -> (relayed address it was resolved with, relayed flow)
        self.relayed_flows: dict[tuple[bytes, Address], tuple[Address | None, Flow]] = {}
        #: TURN flow key + channel number -> (turn_state it was found in, relayed flow)
        self.channel_flows: dict[bytes, tuple[int, Flow]] = {}
        self.turn_state = 0  # changes with relayed_addr, channels and relayed_flows
        #: the flows of `flows` whose datagrams are demultiplexed (no service port)
        self.udp_flows: dict[bytes, Flow] = {}

    # -- driving ---------------------------------------------------------------------------

    def run(self, data: bytes) -> Analysis:
        a = self.a
        idx = index_frames(data, a.read)
        if not len(idx):
            return a
        if a.read.secrets:  # key logs the file carries: decrypted as with --keylog
            from harness.analysis.tlsdecrypt import parse_keylog

            embedded = parse_keylog(b"\n".join(a.read.secrets).decode(errors="replace"))
            self.keylog = {**embedded, **self.keylog}
        a.start_time = t0 = float(idx.times[0])
        fast = fastpath.find_media(data, idx)
        batch, relayed = fast.rtp, fast.relayed
        todo = fast.rest  # the frames the fast path did not take, walked one by one
        offs, lens, links = idx.offsets, idx.lengths, idx.links
        frame, udp, tcp = self._frame, self._segment, self._tcp
        segs = segments(data, idx, todo)  # the common frames, decoded in bulk when compiled
        exitkeep.keep((self, idx, fast, segs))
        walked = NotImplemented  # the loop below in C when built (None: done), with
        # _segment's path for a datagram of a known flow (_datagram's) taken there too
        if _walkloop is not None and _datagram is not None:

            def decoded(i: int, t: float) -> Segment | None:  # a frame segments() left
                o = offs[i]
                return frame(t, links[i], data[o : o + lens[i]])

            walked = _walkloop.walk(
                self, todo, fast.rest_times, segs, decoded, tcp, udp, _datagram,
                self.udp_flows, a.stun, a,
            )  # fmt: skip
        for i, t, seg in () if walked is None else zip(todo, fast.rest_times, segs, strict=True):
            try:
                if seg is None:
                    o = offs[i]
                    seg = frame(t, links[i], data[o : o + lens[i]])
                    if seg is None:
                        continue
                elif isinstance(seg, str):  # segments' reason: an IP packet of no transport
                    a.skipped[seg] += 1
                    continue
                if seg[0] == TCP:
                    tcp(seg[1], seg[2], seg[3], seg[4], t, i + 1)
                else:
                    udp(i + 1, t, seg)
            except Exception as exc:  # a dissector bug must not lose the rest of the file
                a.malformed[f"crash:{type(exc).__name__}"] += 1
        self.fragments.finish()
        self._tcp_done()
        for conn in self.tls.values():
            if conn.problem:
                a.skipped[f"tls: {conn.problem}"] += 1
        self._datachannels_done()
        for why, n in self.fragments.dropped.items():
            a.skipped[f"ip-fragment-{why}"] += n
        for key, cols in zip(batch.keys, batch.columns, strict=True):  # flow key + SSRC
            flow = self._flow(key[:-4], float(cols[1][0]), int(cols[0][0]))
            self._add_rtp(flow, key[-4:], cols)
        a.skipped["not-ip"] += len(fast.not_ip)
        if not a.skipped["not-ip"]:
            del a.skipped["not-ip"]
        acks = fast.acks
        for key, n, first, last in zip(acks.keys, acks.counts, acks.first, acks.last, strict=True):
            first_t, last_t = float(idx.times[first]) - t0, float(idx.times[last]) - t0
            self._count_tcp(key, n, first + 1, first_t, last_t)
        for key, cols, size in zip(relayed.keys, relayed.columns, relayed.outer_bytes, strict=True):
            # flow key + channel number + SSRC
            self._relayed_rtp(key[:-6], key[-6] << 8 | key[-5], key[-4:], cols, size)
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
                if flow.proto == "udp":  # a TCP flow counted the segments that carry them
                    flow.packets += st.packets
                    flow.bytes += st.bytes
                flow.last_t = max(flow.last_t, st.last_t)
                if st.first_frame < flow.first_frame:
                    flow.first_t, flow.first_frame = st.first_t, st.first_frame
        return a

    def _frame(self, t: float, link: int, f: bytes) -> Segment | None:
        """Decode one frame fully: its segment, or None (a fragment held, or skipped)."""
        seg = reassembled(decode(link, f), t, self.fragments)
        if type(seg) is str:
            self.a.skipped[seg] += 1
            return None
        return seg  # type: ignore[return-value]

    def _segment(self, no: int, t: float, seg: Segment) -> None:
        """One UDP datagram: service ports are counted, the rest demultiplexed (RFC 7983)."""
        key, payload = seg[1], seg[2]
        flow = self.udp_flows.get(key)  # the port test made once per flow
        if flow is None:
            flow = self.flows.get(key) or self._new_flow(key, key, "udp", None, t, no)
            if key[-4:-2] in SERVICE_PORTS or key[-2:] in SERVICE_PORTS:
                flow.packets += 1
                flow.bytes += len(payload)
                flow.last_t = t
                flow.kinds["other"] += 1
                return
            self.udp_flows[key] = flow
        if _datagram is not None:  # STUN (and ChannelData): counted, parsed, recorded in C
            msg = _datagram(self, flow, key, payload, t, no, self.a.stun)
            if msg is NotImplemented:
                self._udp(flow, key, payload, t, no)
            elif msg is not True:
                self._recorded(flow, key, payload, t, no, msg)
            return
        self._udp(flow, key, payload, t, no)

    def _flow(self, key: bytes, t: float, no: int) -> Flow:
        return self.flows.get(key) or self._new_flow(key, key, "udp", None, t, no)

    def _new_flow(
        self, key: bytes, raw: bytes, proto: str, via: str | None, t: float, no: int
    ) -> Flow:
        """The flow of `key` (addresses and ports from `raw`), new, in `self.flows`."""
        if _make_flow is not None:
            return _make_flow(self.flows, key, raw, proto, via, t, no)
        return self._new_flow_py(key, raw, proto, via, t, no)

    def _new_flow_py(
        self, key: bytes, raw: bytes, proto: str, via: str | None, t: float, no: int
    ) -> Flow:
        s, sp, d, dp = endpoints(raw)
        flow = Flow(proto, (s, sp), (d, dp), via)
        flow.first_t, flow.first_frame = t, no
        flow.key = key
        self.flows[key] = flow
        return flow

    def _count_tcp(self, key: bytes, n: int, no: int, first_t: float, last_t: float) -> None:
        """Bare TCP acknowledgements of a flow, counted by the fast path."""
        flow = self.flows.get(key) or self._new_flow(key, key, "tcp", None, first_t, no)
        flow.packets += n
        flow.last_t = max(flow.last_t, last_t)
        if no < flow.first_frame:
            flow.first_t, flow.first_frame = first_t, no

    def _add_rtp(self, flow: Flow, ssrc: bytes, cols: rtp.Columns) -> None:
        stream = flow.streams.get(ssrc) or self._new_stream(flow, ssrc, int(cols[4][0]))
        stream.add_columns(cols)

    def _new_stream(self, flow: Flow, ssrc: bytes, pt: int) -> rtp.RtpStream:
        clock = rtp.STATIC_CLOCK.get(pt)
        stream = rtp.RtpStream(int.from_bytes(ssrc, "big"), flow.label, clock, flow.via is not None)
        stream.first_pt = pt
        flow.streams[ssrc] = stream
        return stream

    # -- UDP: RFC 7983 -----------------------------------------------------------------------

    def _udp(self, flow: Flow, key: bytes, p: bytes, t: float, no: int, count: bool = True) -> None:
        """One datagram (or one RFC 4571 frame: `count` False, TCP counted the segment)."""
        if len(p) >= 12 and 128 <= p[0] <= 191 and not 192 <= p[1] <= 223 and header_fits(p):
            stream = flow.streams.get(p[8:12]) or self._new_stream(flow, p[8:12], p[1] & 0x7F)
            seq, ts = _seq_ts(p, 2)
            stream.add(seq, ts, p[1] & 0x7F, t, no, len(p))
            return
        if count:
            flow.packets += 1
            flow.bytes += len(p)
            flow.last_t = t
        if not p:
            flow.kinds["empty"] += 1
            return
        b = p[0]
        if 128 <= b <= 191:
            if len(p) < 12 or not 192 <= p[1] <= 223:  # short, or an RTP header overruns
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

    # -- DTLS --------------------------------------------------------------------------------

    def _dtls(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        if len(p) < 2 or p[1] != 0xFE and p[1:3] != dtls.BAD_VERSION:  # no DTLS version
            # RFC 9147 4: DTLS 1.3 protected records start 001CSLEE (Firefox negotiates 1.3)
            flow.kinds["dtls13-ciphertext" if p[0] & 0xE0 == 0x20 else "other"] += 1
            if self.keylog and p[0] & 0xE0 == 0x20:
                self._dtls_payload(flow, key, p, t, no)
            return
        scanned = dtls.scan(p)
        if scanned is None:
            flow.kinds["malformed"] += 1
            self.a.malformed["dtls"] += 1
            return
        flow.kinds["dtls"] += 1
        records = None  # parsed when read (DtlsEvent.records), unless the key log changes them
        if self.keylog:  # alerts read with the key log replace ("encrypted", "encrypted")
            alerts = self._dtls_payload(flow, key, p, t, no)
            if alerts:
                records = dtls.parse(p)
                for r in records:
                    if r.alert and r.alert[0] == "encrypted" and alerts:
                        r.alert = alerts.pop(0)
                scanned = dtls.summarize(records)
                assert scanned is not None
        only_data, srtp, steps, certificates = scanned
        if only_data:
            return
        parsed: list[dtls.Record] = records  # type: ignore[assignment]  # None: when read
        event = DtlsEvent(
            no, t, flow.src, flow.dst, flow.label, bool(flow.via), parsed, None, p, steps
        )
        for msg_seq, offset, body in certificates:
            asm = self.certs.get(key) or self.certs.setdefault(key, dtls.CertificateAssembler())
            fp = asm.add_fragment(msg_seq, offset, body)
            event.certificate_fingerprint = fp or event.certificate_fingerprint
        if srtp:
            flow.srtp = True
            back = self._reverse_flow(key)
            if back is not None:
                back.srtp = True
        self.a.dtls.append(event)

    def _reverse_flow(self, key: bytes) -> Flow | None:
        if key.endswith(RELAYED):
            return self.flows.get(reverse(key[:-1]) + RELAYED)
        return self.flows.get(reverse(key))

    # -- SIP and JSON signalling (TCP streams are split in tcpstreams.py) -------------------

    def _sip_message(self, flow: Flow, p: bytes, t: float, no: int, transport: str) -> None:
        msg = sip.parse(p)
        if msg is None:
            self.a.malformed["sip"] += 1
            return
        ev = SipEvent(no, t, flow.src, flow.dst, flow.label, bool(flow.via), transport, msg)
        self.a.sip.append(ev)
        # Offer and answer alternate per hop: a proxy forwards an offer under the same
        # Call-ID, and that copy is the next hop's offer, not an answer. (The leg is
        # made only for the messages that change it: most carry no SDP.)
        if msg.has_sdp:
            call_id = msg.call_id
            leg = (call_id, frozenset((flow.src[0], flow.dst[0])))
            outstanding = self.offers.get(leg, False)
            kind = "answer" if outstanding else "offer"
            self.offers[leg] = not outstanding
            self._sdp(flow, msg.body, t, no, f"sip/{transport}", kind, call_id)
        elif msg.status is not None and msg.status >= 300 and msg.method == "INVITE":
            # a rejected offer is withdrawn
            self.offers[(msg.call_id, frozenset((flow.src[0], flow.dst[0])))] = False

    def _json_body(self, flow: Flow, body: bytes, t: float, no: int, source: str) -> None:
        if http.without_jsep(body):  # its Janus messages are decoded if they are read
            self.a.janus.add(no, t, flow, body)
            return
        read = http.jsep_read(body)  # one message with a JSEP: its SDP, the rest as above
        if read is not None:
            self.a.janus.add(no, t, flow, body)
            self._sdp(flow, read[1], t, no, f"jsep/{source}", read[0], read[2])
            return
        messages, found = http.signalling(body)
        if messages:
            self.a.janus.add(no, t, flow, messages)
        if found:
            kind, text, doc = found
            self._sdp(flow, text, t, no, f"jsep/{source}", kind, http.session_text(doc))

    def _sdp(
        self, flow: Flow, text: str, t: float, no: int, source: str, kind: str, dialog: str | None
    ) -> None:
        parsed = sdp.parse(text)  # read after the walk, when first used
        clock = self.clock
        for pt, rate in sdp.rtp_clocks(text):
            clock.setdefault(pt, rate)
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


def analyze_bytes(
    data: bytes, path: Path | str = "<memory>", keylog: Path | str | None = None
) -> Analysis:
    """Analyse a capture image already in memory (TLS decrypted with `keylog`, if given)."""
    keys = None
    if keylog:
        from harness.analysis.tlsdecrypt import read_keylog

        keys = read_keylog(keylog)
    stats = ReadStats()
    data = uncompressed(data, stats)
    with paused_gc():
        return Analyzer(Analysis(Path(path), stats), keys).run(data)


def analyze_file(path: Path | str, keylog: Path | str | None = None) -> Analysis:
    """Analyse one pcap or pcapng file; unreadable files give an Analysis with errors."""
    path = Path(path)
    try:
        data = cast(bytes, read_capture(path))  # mapped, not copied: read as bytes are
    except OSError as exc:
        result = Analysis(path, ReadStats())
        result.read.errors.append(f"cannot read: {exc}")
        return result
    return analyze_bytes(data, path, keylog)
