"""STUN and TURN in the walk: allocations, channels, and the flows relayed inside them.

A relayed datagram (Send/Data indication or ChannelData, RFC 8656) is analysed as
its own flow between the relayed address and the peer, marked with the TURN flow
it came in; its key ends in RELAYED so it never meets the wire flow of that pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.analysis import rtp, sip, stun
from harness.analysis.model import Address, Flow, StunEvent
from harness.analysis.net import make_key, reverse

if TYPE_CHECKING:
    from harness.analysis.model import Analysis
    from harness.analysis.stun import StunMessage

RELAYED = b"T"
_parse = stun.parse  # the compiled parser when built: a module global, looked up per message
#: _stunparse.record: a STUN datagram counted, parsed and recorded in one call;
#: _stunparse.datagram: the same for a wire datagram, and ChannelData (None: Python)
_record = _datagram = None
if stun._stunparse is not None:
    stun._stunparse.setup_walk(Flow, StunEvent, sip.STARTS, RELAYED)
    _record, _datagram = stun._stunparse.record, stun._stunparse.datagram


class TurnRelay:
    """Mixin of `Analyzer`: the STUN/TURN side of the walk."""

    a: Analysis
    flows: dict[bytes, Flow]
    relayed_addr: dict[bytes, Address]
    channels: dict[tuple[bytes, int], Address]
    relayed_flows: dict[tuple[bytes, Address], tuple[Address | None, Flow]]
    channel_flows: dict[bytes, tuple[int, Flow]]
    turn_state: int

    if TYPE_CHECKING:  # provided by Analyzer

        def _flow(self, key: bytes, t: float, no: int) -> Flow: ...
        def _new_flow(
            self, key: bytes, raw: bytes, proto: str, via: str | None, t: float, no: int
        ) -> Flow: ...
        def _add_rtp(self, flow: Flow, ssrc: bytes, cols: rtp.Columns) -> None: ...
        def _udp(
            self, flow: Flow, key: bytes, p: bytes, t: float, no: int, count: bool = True
        ) -> None: ...

    def _stun(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        """A datagram whose first byte is below 4 (`flow` counted it already)."""
        if _record is not None:  # all of _stun_py in C for an RFC 8489 message
            msg = _record(flow, p, t, no, self.a.stun, False)
            if msg is True:
                return
            if msg is not None and msg is not NotImplemented:
                self._turn(flow, key, msg, t, no)
                return
        self._stun_py(flow, key, p, t, no)

    def _recorded(
        self, flow: Flow, key: bytes, p: bytes, t: float, no: int, msg: StunMessage | None
    ) -> None:
        """The rest of a datagram after `_record(..., count=True)` or `_datagram` gave `msg`
        (not True): nothing done (NotImplemented); counted, and for STUN no RFC 8489
        message, for ChannelData its relayed flow's part still to do (None); a message."""
        if msg is NotImplemented:
            self._udp(flow, key, p, t, no)
        elif msg is not None:
            self._turn(flow, key, msg, t, no)
        elif p[0] < 4:  # RFC 3489, or malformed
            self._stun_py(flow, key, p, t, no)
        else:  # ChannelData, counted in `flow` (kinds too)
            self._channel_data(flow, key, p, t, no)

    def _stun_py(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        """_stun in Python: the fallback, and what `_stunparse.record` does in C."""
        msg = _parse(p)
        if msg is None:
            msg = stun.parse_classic(p)
            if msg is None:
                flow.kinds["malformed"] += 1
                self.a.malformed["stun"] += 1
                return
        flow.kinds["classic-stun" if msg.classic else "stun"] += 1
        via = flow.via
        raw = p[: 20 + msg.length] if msg.integrity else b""
        self.a.stun.append(StunEvent(no, t, flow.src, flow.dst, flow.label, bool(via), msg, raw))
        if via or msg.method == "Binding":  # ICE checks, most messages, change nothing of TURN
            return
        self._turn(flow, key, msg, t, no)

    def _turn(self, flow: Flow, key: bytes, msg: StunMessage, t: float, no: int) -> None:
        """What a TURN message on a wire flow changes: allocations, channels, relayed data."""
        m = msg.method
        if m == "Allocate" and msg.cls == "request":
            flow.turn_client = True
        elif m == "Allocate" and msg.cls == "success" and msg.xor_relayed:
            self.relayed_addr[reverse(key)] = msg.xor_relayed[0]
            self.turn_state += 1
        elif m == "ChannelBind" and msg.cls == "request" and msg.channel and msg.xor_peer:
            self.channels[(key, msg.channel)] = msg.xor_peer[0]
            self.turn_state += 1
        elif m == "Send" and msg.cls == "indication" and msg.data is not None and msg.xor_peer:
            self._inner(flow, key, msg.xor_peer[0], True, msg.data, t, no)
        elif m == "Data" and msg.cls == "indication" and msg.data is not None and msg.xor_peer:
            self._inner(flow, key, msg.xor_peer[0], False, msg.data, t, no)

    def _channel_data(self, flow: Flow, key: bytes, p: bytes, t: float, no: int) -> None:
        """One ChannelData message (RFC 8656 12.4): its data analysed in the relayed flow.

        The relayed flow of a bound channel is kept per (TURN flow, channel) and stays
        right while `turn_state` does (no allocation, binding or relayed flow since).
        """
        ck = key + p[:2]
        kept = self.channel_flows.get(ck)
        if kept is not None and kept[0] == self.turn_state:
            inner = kept[1]
        else:
            ch = p[0] << 8 | p[1]
            found = self._channel_flow(flow, key, ch, t, no, 1)
            if found is None:
                return
            inner = found
            if (key, ch) in self.channels or (reverse(key), ch) in self.channels:
                self.channel_flows[ck] = (self.turn_state, inner)
        self._deliver(inner, p[4 : 4 + (p[2] << 8 | p[3])], t, no)

    def _channel_flow(
        self, outer: Flow, key: bytes, ch: int, t: float, no: int, n: int
    ) -> Flow | None:
        """The relayed flow a ChannelData message on `key` belongs to (RFC 8656 12.4)."""
        to_server = (key, ch) in self.channels
        client_key = key if to_server else reverse(key)
        peer = self.channels.get((client_key, ch))
        if peer is None:
            self.a.malformed["turn-channel-unbound"] += n
            peer = ("0.0.0.0", ch)
        return self._relayed_flow(outer, key, client_key, peer, to_server, t, no)

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
        flow = self._relayed_flow(outer, key, client_key, peer, to_server, t, no)
        if flow is not None:
            self._deliver(flow, data, t, no)

    def _deliver(self, flow: Flow, data: bytes, t: float, no: int) -> None:
        """A relayed datagram to the walk as its own flow's (STUN: one C call, compiled)."""
        if _record is not None:  # _udp's counting and _stun in one call, for STUN
            msg = _record(flow, data, t, no, self.a.stun, True)
            if msg is True:
                return
            if msg is not NotImplemented:
                self._recorded(flow, flow.key, data, t, no, msg)
                return
        self._udp(flow, flow.key, data, t, no)

    def _relayed_flow(
        self,
        outer: Flow,
        key: bytes,
        client_key: bytes,
        peer: Address,
        to_server: bool,
        t: float,
        no: int,
    ) -> Flow | None:
        """The flow between relayed address and peer; `client_key`: the client->server key."""
        cached = self.relayed_flows.get((key, peer))
        if cached is not None and cached[0] == self.relayed_addr.get(client_key):
            return cached[1]
        client = outer.src if to_server else outer.dst
        relayed = self.relayed_addr.get(client_key, client)
        src, dst = (relayed, peer) if to_server else (peer, relayed)
        try:
            raw = make_key(src[0], src[1], dst[0], dst[1])
        except ValueError:
            self.a.malformed["turn-address"] += 1
            return None
        ikey = raw + RELAYED
        flow = self.flows.get(ikey)
        if flow is None:
            flow = self._new_flow(ikey, raw, "udp", outer.label, t, no)
        self.relayed_flows[(key, peer)] = (self.relayed_addr.get(client_key), flow)
        self.turn_state += 1
        return flow

    def _relayed_rtp(
        self, key: bytes, ch: int, ssrc: bytes, cols: rtp.Columns, outer_bytes: int
    ) -> None:
        """RTP in ChannelData found by the fast path, once the walk knows the channels."""
        n, t, no = len(cols[0]), float(cols[1][0]), int(cols[0][0])
        outer = self._flow(key, t, no)
        outer.packets += n
        outer.bytes += outer_bytes
        outer.last_t = max(outer.last_t, float(cols[1][-1]))
        outer.kinds["turn-channel"] += n
        inner = self._channel_flow(outer, key, ch, t, no, n)
        if inner is not None:
            self._add_rtp(inner, ssrc, cols)
