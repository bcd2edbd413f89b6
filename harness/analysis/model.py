"""What the analyser found in one capture: flows and protocol events, in frame order.

Times are seconds relative to the capture's first frame (as tshark's
frame.time_relative); frame numbers count from 1 as in tshark.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

from harness.analysis.dtls import Record, Step, parse
from harness.analysis.http import janus_label, janus_messages
from harness.analysis.pcapio import ReadStats
from harness.analysis.rtp import RtcpPacket, RtpStream
from harness.analysis.sdp import Sdp
from harness.analysis.sip import SipMessage
from harness.analysis.stun import StunMessage

Address = tuple[str, int]
#: an empty Counter as Counter() makes it, without __init__'s two Python-level calls (a
#: handshake-heavy capture makes thousands of flows, each with its `kinds`)
_new_counter = Counter.__new__


def fmt_addr(a: Address) -> str:
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


def wall_clock(t: float) -> str:
    """A Unix time as HH:MM:SS.mmm (local time): how evidence from captures, logs and the
    run's own watch is lined up by a reader."""
    ms = int(round(t * 1000))
    return time.strftime("%H:%M:%S", time.localtime(ms // 1000)) + f".{ms % 1000:03d}"


class Flow:
    """One direction of a UDP or TCP 5-tuple; `via` names the TURN flow it came inside."""

    __slots__ = (
        "proto",
        "src",
        "dst",
        "via",
        "packets",
        "bytes",
        "first_t",
        "last_t",
        "first_frame",
        "kinds",
        "streams",
        "turn_client",
        "srtp",
        "key",
        "_label",
        "_ends",
    )

    def __init__(self, proto: str, src: Address, dst: Address, via: str | None) -> None:
        self.proto = proto
        self.src = src
        self.dst = dst
        self.via = via
        self.packets = 0
        self.bytes = 0
        self.first_t = self.last_t = 0.0
        self.first_frame = 0
        self.kinds: Counter[str] = _new_counter(Counter)
        self.streams: dict[bytes, RtpStream] = {}
        self.turn_client = False
        self.srtp = False
        self.key = b""  # the analyser's flow key (raw addresses and ports)
        self._label = ""
        self._ends = ("", "")  # src and dst as printed, made with the label

    @property
    def label(self) -> str:
        """'udp 10.0.0.1:5000 > 10.0.0.2:6000 (in ...)'; made once, every event names it."""
        if not self._label:  # fmt_addr's, inline: every flow is labelled once
            (s, sp), (d, dp) = self.src, self.dst
            src = f"[{s}]:{sp}" if ":" in s else f"{s}:{sp}"
            dst = f"[{d}]:{dp}" if ":" in d else f"{d}:{dp}"
            self._ends = (src, dst)
            base = f"{self.proto} {src} > {dst}"
            self._label = f"{base} (in {self.via})" if self.via else base
        return self._label

    def to_dict(self) -> dict[str, object]:
        label = self.label
        src, dst = self._ends
        return {
            "flow": label,
            "proto": self.proto,
            "src": src,
            "dst": dst,
            "relayed_in": self.via,
            "packets": self.packets,
            "bytes": self.bytes,
            "first_time": self.first_t,
            "last_time": self.last_t,
            "first_frame": self.first_frame,
            "kinds": dict(self.kinds),
        }


@dataclass(slots=True)
class Event:
    """Common fields of every protocol event (in slots: a capture has tens of thousands of
    STUN events, made in C, `_stunparse.c`, which fills the slots without a setattr each)."""

    frame: int
    time: float
    src: Address
    dst: Address
    flow: str
    relayed: bool


@dataclass(slots=True)
class StunEvent(Event):
    """A STUN or TURN message on the wire, with its bytes for a later integrity check."""

    msg: StunMessage = field(default=None)  # type: ignore[assignment]
    raw: bytes = b""  # kept to verify MESSAGE-INTEGRITY once the SDP's ice-pwd is known


class _RecordsOnDemand:
    """`DtlsEvent.records`, parsed from `datagram` the first time they are read.

    The session reads `steps`; the records (an object per record and per message, each
    body copied) are for tests and tools, so the walk does not build them.
    """

    def __get__(self, ev: DtlsEvent | None, owner: type | None = None) -> list[Record] | None:
        if ev is None:
            return None  # the dataclass default: parse when read
        records = ev._records
        if records is None:
            records = ev._records = parse(ev.datagram)
        return records

    def __set__(self, ev: DtlsEvent, records: list[Record] | None) -> None:
        # an attribute, not ev.__dict__: that makes the event's dict (its attributes are
        # kept inline until asked for it), a third of the cost of making each event
        ev._records = records


@dataclass
class DtlsEvent(Event):
    """A DTLS datagram and its records (parsed on first use)."""

    records: list[Record] = _RecordsOnDemand()  # type: ignore[assignment]
    #: what `records` keeps (not a field: no annotation; the comment types it for mypy)
    _records = None  # type: list[Record] | None
    certificate_fingerprint: str | None = None
    datagram: bytes = b""
    #: the records as the session reads them (dtls.Step); None: taken from `records`
    steps: tuple[Step, ...] | None = None


@dataclass
class DataChannelEvent(Event):
    """One data channel message or DCEP message, decrypted from DTLS with a key log."""

    association: str = ""  # the DTLS 5-tuple, as both directions' flows share it
    stream: int = 0
    kind: str = ""  # "open", "ack", or the PPID's name: "string", "binary", ...
    size: int = 0
    label: str = ""  # the channel's label (from its DATA_CHANNEL_OPEN)
    protocol: str = ""
    text: str = ""  # an excerpt: text for strings, hex for binary


@dataclass
class RtcpEvent(Event):
    """An RTCP compound packet."""

    packets: list[RtcpPacket] = field(default_factory=list)


@dataclass
class SipEvent(Event):
    """A SIP message and the transport it came on."""

    transport: str = "udp"
    msg: SipMessage = field(default=None)  # type: ignore[assignment]


@dataclass
class SdpEvent(Event):
    """An SDP seen on the wire, with where it came from and its offer/answer role."""

    source: str = ""
    type: str = ""
    sdp: Sdp = field(default=None)  # type: ignore[assignment]
    dialog: str | None = None


@dataclass
class JanusEvent(Event):
    """One Janus API message (HTTP or WebSocket): requests, acks, plugin events.

    The message is kept as JSON decoded it; what the event says is read from it when
    asked (only the ladder asks, the summary never does).
    """

    msg: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """`message register`, `event registered`, `success`, ... (http.janus_label)."""
        return janus_label(self.msg)

    @property
    def transaction(self) -> str | None:
        tx = self.msg.get("transaction")
        return str(tx) if tx else None

    @property
    def session(self) -> str | None:
        session = self.msg.get("session_id") or self.msg.get("sender")
        return str(session) if session else None

    @property
    def has_jsep(self) -> bool:
        return isinstance(self.msg.get("jsep"), dict)


class JanusLog(Sequence[JanusEvent]):
    """The Janus events of a capture in frame order, made when first read.

    Only the ladder reads them (`harness analyze` never does), and decoding the JSON of
    every long-poll reply was most of the cost of a Janus capture's HTTP bodies: the
    walk keeps each body with where it was seen (or the messages it decoded already,
    looking for a JSEP), and the first read decodes them all.
    """

    __slots__ = ("_seen", "_events")

    def __init__(self) -> None:
        self._seen: list[tuple[int, float, Flow, bytes | list[dict[str, object]]]] = []
        self._events: list[JanusEvent] = []

    def add(self, no: int, t: float, flow: Flow, body: bytes | list[dict[str, object]]) -> None:
        """A JSON body (or its decoded Janus messages) seen in frame `no` on `flow`."""
        self._seen.append((no, t, flow, body))

    def append(self, event: JanusEvent) -> None:
        self._read().append(event)

    def _read(self) -> list[JanusEvent]:
        if self._seen:
            events = self._events
            for no, t, flow, body in self._seen:
                messages = body if isinstance(body, list) else janus_messages(body)
                label, via = flow.label, bool(flow.via)
                for msg in messages:
                    if msg["janus"] != "keepalive":
                        events.append(JanusEvent(no, t, flow.src, flow.dst, label, via, msg))
            self._seen = []
        return self._events

    def __len__(self) -> int:
        return len(self._read())

    @overload
    def __getitem__(self, i: int) -> JanusEvent: ...
    @overload
    def __getitem__(self, i: slice) -> list[JanusEvent]: ...
    def __getitem__(self, i: int | slice) -> JanusEvent | list[JanusEvent]:
        return self._read()[i]

    def __iter__(self) -> Iterator[JanusEvent]:
        return iter(self._read())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JanusLog):
            return self._read() == other._read()
        return isinstance(other, list) and self._read() == other

    def __repr__(self) -> str:
        return f"JanusLog({self._read()!r})"


@dataclass
class Analysis:
    """Everything one capture file yields; the session model is built from it."""

    path: Path
    read: ReadStats
    start_time: float = 0.0
    packets: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    flows: list[Flow] = field(default_factory=list)
    stun: list[StunEvent] = field(default_factory=list)
    dtls: list[DtlsEvent] = field(default_factory=list)
    rtcp: list[RtcpEvent] = field(default_factory=list)
    sip: list[SipEvent] = field(default_factory=list)
    sdp: list[SdpEvent] = field(default_factory=list)
    janus: JanusLog = field(default_factory=JanusLog)
    datachannel: list[DataChannelEvent] = field(default_factory=list)
    #: DTLS decryption counters (records, SCTP packets and chunks) when a key log is given
    decrypted: Counter[str] = field(default_factory=Counter)
    first_media: list[tuple[int, float, str]] = field(default_factory=list)

    @property
    def rtp_streams(self) -> list[RtpStream]:
        return [s for f in self.flows for s in f.streams.values()]
