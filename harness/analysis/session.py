"""Session model: ICE generations and pairs, DTLS handshakes, SIP dialogs, offer/answer.

Built from an `Analysis` after the walk, so it can look both ways in time: a
pair is 'selected' when it was nominated or carried media; a restart is a new
ICE generation (new ufrags) after the first one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter

from harness.analysis import dtls
from harness.analysis.model import Address, Analysis, SdpEvent, SipEvent, StunEvent, fmt_addr
from harness.analysis.stun import StunMessage, check_integrity, kind_name

try:
    from harness.analysis import _iceloop  # type: ignore[attr-defined]  # compiled: no stub
except ImportError:  # built without the C extension (optional in pyproject.toml)
    _iceloop = None

_INDIRECTNESS = {"host": 0, "unknown": 0, "srflx": 1, "prflx": 1, "relay": 2}


def _indirectness(candidate_type: str) -> int:
    return _INDIRECTNESS.get(candidate_type, 0)


@dataclass(slots=True)  # slots: _iceloop.c counts a check by their offsets
class CandidatePair:
    """Both directions of checks between two transport addresses in one generation."""

    a: Address
    b: Address
    relayed: bool
    requests: int = 0
    successes: int = 0
    errors: list[tuple[int, int]] = field(default_factory=list)  # (frame, code)
    nominated: bool = False
    first_check: tuple[int, float] = (0, 0.0)
    first_success: tuple[int, float] | None = None
    first_media: tuple[int, float] | None = None
    types: tuple[str, str] = ("unknown", "unknown")
    integrity_checked: int = 0
    integrity_failures: list[int] = field(default_factory=list)  # frames

    @property
    def name(self) -> str:
        return f"{fmt_addr(self.a)} <-> {fmt_addr(self.b)}"

    @property
    def kind(self) -> str:
        """The most indirect candidate type of the two ends (relay > srflx/prflx > host)."""
        if self.relayed:
            return "relay"
        return max(self.types, key=_indirectness)

    def has(self, src: Address, dst: Address) -> bool:
        return {src, dst} == {self.a, self.b}


_Seen = tuple[Address, Address, CandidatePair]
"""A flow's ends and the pair a USERNAME's checks on it go to (`_Checks.pair`)."""

_Key = tuple[bytes, dict[bytes, bool | None]]
"""A receiver's ice-pwd and the MESSAGE-INTEGRITY verdicts with it, by the message's bytes."""

_User = tuple["IceGeneration", "_Key | None", dict[str, _Seen]]
"""A USERNAME's generation, the receiver's key and its flows (`_Checks.user`)."""

_Kinds = dict[str, dict[str, list[object]]]
"""STUN messages by method and class (`_Checks.kind`): counted by a list of them, which
grows for less than a count does (an int made per message)."""

_Building = tuple["DtlsHandshake", set[int], dict[str, int]]
"""A handshake `_dtls` is building, its frames as a set, its message counts."""

# Sort keys made once (a lambda in a property is a new function object per read)
_time = itemgetter(1)  # of a (frame, time)


def _success_order(p: CandidatePair) -> tuple[int, float]:
    return p.first_success or (0, 0.0)


def _media_order(p: CandidatePair) -> tuple[int, float]:
    return p.first_media or (0, 0.0)


@dataclass
class IceGeneration:
    """Checks that share a ufrag pair: one ICE generation (RFC 8445, RFC 8839 restarts)."""

    ufrags: tuple[str, str]
    first: tuple[int, float]
    pairs: list[CandidatePair] = field(default_factory=list)
    sdp_time: tuple[int, float] | None = None
    sdp_dialogs: set[str] = field(default_factory=set)
    ssrcs: set[int] = field(default_factory=set)
    index: dict[tuple[Address, Address], CandidatePair] = field(default_factory=dict, repr=False)
    """Pairs by (src, dst), both ways round."""

    @property
    def succeeded(self) -> list[CandidatePair]:
        return [p for p in self.pairs if p.successes]

    @property
    def selected(self) -> CandidatePair | None:
        """The nominated pair that succeeded, else the first one that carried media."""
        nominated = [p for p in self.pairs if p.nominated and p.successes]
        if nominated:
            return min(nominated, key=_success_order)
        media = [p for p in self.pairs if p.first_media]
        return min(media, key=_media_order) if media else None

    @property
    def connected(self) -> tuple[int, float] | None:
        done = [p.first_success for p in self.pairs if p.first_success]
        return min(done, key=_time) if done else None

    @property
    def first_media(self) -> tuple[int, float] | None:
        seen = [p.first_media for p in self.pairs if p.first_media]
        return min(seen, key=_time) if seen else None


@dataclass
class IceRestart:
    """A generation after the first: when it started, connected, and media came back."""

    index: int
    old_ufrags: tuple[str, str]
    new_ufrags: tuple[str, str]
    started: tuple[int, float]
    connected: tuple[int, float] | None
    media: tuple[int, float] | None
    transitional: list[tuple[str, str]] = field(default_factory=list)
    """Ufrag pairs seen mid-restart: one side checking with its new ufrag and the far side's
    old one (checks sent before the answer arrived), folded into this restart."""

    @property
    def time_to_connect(self) -> float | None:
        return self.connected[1] - self.started[1] if self.connected else None

    @property
    def time_to_media(self) -> float | None:
        return self.media[1] - self.started[1] if self.media else None


@dataclass
class DtlsHandshake:
    """One handshake (one ClientHello random) on one 5-tuple."""

    client: Address
    server: Address
    relayed: bool
    start: tuple[int, float]
    end: tuple[int, float] | None = None
    messages: Counter[str] = field(default_factory=Counter)
    fingerprints: dict[str, tuple[int, str]] = field(default_factory=dict)  # side -> (frame, fp)
    srtp_profile: str | None = None
    extended_master_secret: dict[str, bool] = field(default_factory=dict)
    alerts: list[tuple[int, str, str]] = field(default_factory=list)
    ccs_from: set[str] = field(default_factory=set)
    frames: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.ccs_from >= {"client", "server"}

    @property
    def name(self) -> str:
        return f"{fmt_addr(self.client)} -> {fmt_addr(self.server)}"


@dataclass
class Transaction:
    """A SIP transaction: its request and the responses to it."""

    branch: str
    method: str
    request_frame: int
    requests: int = 1
    responses: list[tuple[int, int]] = field(default_factory=list)  # (frame, status)
    retransmissions: list[int] = field(default_factory=list)  # frames of the request's copies

    @property
    def final(self) -> int | None:
        finals = [s for _, s in self.responses if s >= 200]
        return finals[-1] if finals else None

    @property
    def late_provisional(self) -> list[int]:
        """Frames of 1xx responses captured after a final one, with no copy of the request
        in between (a 100 Trying answering a retransmitted INVITE is no reorder): reordered
        on the way (a proxy's workers, a lossy path). A stack that takes one may reset the
        request's state: Janus's SIP stack then refuses its own ACK
        (scenarios/gateway/README.md)."""
        out: list[int] = []
        final = 0  # frame of the last final response
        for frame, status in self.responses:
            if status >= 200:
                final = frame
            elif (
                final and status >= 100 and not any(final < r < frame for r in self.retransmissions)
            ):
                out.append(frame)
        return out


@dataclass
class Dialog:
    """Messages sharing a Call-ID (RFC 3261 dialog plus its early forks)."""

    call_id: str
    from_tag: str
    to_tag: str = ""
    events: list[SipEvent] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    sdps: list[SdpEvent] = field(default_factory=list)

    @property
    def invites(self) -> list[SipEvent]:
        return [e for e in self.events if e.msg.is_request and e.msg.method == "INVITE"]

    @property
    def reinvites(self) -> list[SipEvent]:
        """INVITEs inside the dialog (To carries a tag), not counting retransmissions."""
        seen: set[int] = set()
        out = []
        for e in self.invites:
            if e.msg.to_tag and e.msg.cseq[0] not in seen:
                seen.add(e.msg.cseq[0])
                out.append(e)
        return out

    @property
    def state(self) -> str:
        inv = [t for t in self.transactions if t.method == "INVITE"]
        if not inv and self.transactions:  # REGISTER, OPTIONS, MESSAGE...: the last answer
            t = self.transactions[-1]
            return f"{t.method} {t.final or 'unanswered'}"
        if any(t.method == "BYE" and t.final and t.final < 300 for t in self.transactions):
            return "terminated"
        if inv and inv[0].final and inv[0].final >= 300:
            return f"failed {inv[0].final}"
        if any(t.final and t.final < 300 for t in inv):
            return "confirmed"
        return "early" if inv and inv[0].responses else "trying"


@dataclass
class Session:
    """The session model of one capture."""

    analysis: Analysis
    generations: list[IceGeneration] = field(default_factory=list)
    restarts: list[IceRestart] = field(default_factory=list)
    handshakes: list[DtlsHandshake] = field(default_factory=list)
    dialogs: list[Dialog] = field(default_factory=list)
    candidate_types: dict[Address, str] = field(default_factory=dict)
    stun_kinds: dict[str, int] = field(default_factory=dict)
    """STUN messages per kind ('Binding request', ...), in order of first appearance."""
    stun_fingerprint_failures: list[int] = field(default_factory=list)  # frames


def build(analysis: Analysis) -> Session:
    """Derive the session model from the protocol events of one capture."""
    s = Session(analysis)
    _ice(s, _from_sdp(s))
    _media(s)
    _restarts(s)
    _dtls(s)
    _sip(s)
    return s


def _ice(s: Session, pwds: dict[str, str]) -> None:
    """Checks grouped by ufrag pair, then pairs by 5-tuple; each check and answer verified.

    The pass over the STUN events is `_Checks.walk`, or `_iceloop.run` (C) when built: it
    takes every event `walk` would and hands the first it does not take (another class)
    back to `walk`. The same pass counts every STUN message by kind for the summary.
    """
    checks = _Checks(s, pwds)
    events = s.analysis.stun
    checks.walk(events, _iceloop.run(events, checks) if _iceloop is not None else 0)
    for name, messages in checks.named:
        s.stun_kinds[name] = s.stun_kinds.get(name, 0) + len(messages)
    s.generations = sorted(checks.gens.values(), key=lambda g: g.first[1])
    by_ufrag = {u: g for g in s.generations for u in g.ufrags}
    for sdp_ev in s.analysis.sdp:
        for u in sdp_ev.sdp.ice_ufrags:
            g = by_ufrag.get(u)
            if g is not None:
                if g.sdp_time is None:
                    g.sdp_time = (sdp_ev.frame, sdp_ev.time)
                if sdp_ev.dialog:
                    g.sdp_dialogs.add(sdp_ev.dialog)


class _Checks:
    """`_ice`'s pass over the STUN events: its state, the pass (`walk`), and what it does
    for the first message of a USERNAME, of a USERNAME on a flow and of a kind (`user`,
    `pair`, `kind`), which `_iceloop.c` calls too.

    Work that depends on the USERNAME only (its generation, the receiver's key) is done
    once per distinct USERNAME, not per check, and a check's pair is looked up by its
    flow's label within its USERNAME (a string whose hash is kept) rather than by a new
    tuple of two addresses. A message's MESSAGE-INTEGRITY is verified once per key and
    bytes (`_Key`): a retransmission is the same bytes. STUN messages are counted by kind
    in nested maps of strings the parser shares: no tuple to make and hash per message.
    """

    __slots__ = (
        *("gens", "users", "keys", "pending", "types", "pwds"),
        *("kinds", "classic", "named", "failures", "check"),
    )

    def __init__(self, s: Session, pwds: dict[str, str]) -> None:
        self.gens: dict[tuple[str, str], IceGeneration] = {}
        # USERNAME -> (generation, the receiver's key, flow label -> (src, dst, pair))
        self.users: dict[str, tuple[IceGeneration, _Key | None, dict[str, _Seen]]] = {}
        self.keys: dict[str, _Key | None] = {}  # ufrag -> its ice-pwd (encoded), verdicts
        # txid -> (pair, USE-CANDIDATE, the receiver's key): answers go with their check
        self.pending: dict[str, tuple[CandidatePair, bool, _Key | None]] = {}
        self.types, self.pwds = s.candidate_types, pwds
        self.kinds: _Kinds = {}  # RFC 5389 messages (most)
        self.classic: _Kinds = {}  # RFC 3489 messages
        self.named: list[tuple[str, list[object]]] = []  # each kind's name, its messages
        self.failures = s.stun_fingerprint_failures
        self.check = check_integrity

    def user(self, ev: StunEvent, username: str) -> _User | None:
        """The first check of a USERNAME: its generation and the receiver's key (None: no
        'a:b' USERNAME, the check is no ICE check)."""
        if ":" not in username:
            return None
        u1, _, u2 = username.partition(":")
        gkey = (min(u1, u2), max(u1, u2))
        gen = self.gens.get(gkey)
        if gen is None:
            gen = self.gens[gkey] = IceGeneration(gkey, (ev.frame, ev.time))
        keys = self.keys
        if u1 not in keys:
            pwd = self.pwds.get(u1)
            keys[u1] = (pwd.encode(), {}) if pwd is not None else None
        user = self.users[username] = (gen, keys[u1], {})
        return user

    def pair(self, ev: StunEvent, gen: IceGeneration, flows: dict[str, _Seen]) -> CandidatePair:
        """The first check of a USERNAME on a flow (or odd events): its pair, made if new."""
        src, dst = ev.src, ev.dst
        found = gen.index.get((src, dst))
        if found is None:
            found = CandidatePair(src, dst, ev.relayed, first_check=(ev.frame, ev.time))
            types = self.types
            found.types = (types.get(src, "unknown"), types.get(dst, "unknown"))
            gen.pairs.append(found)
            gen.index[(src, dst)] = gen.index[(dst, src)] = found
        flows[ev.flow] = (src, dst, found)
        return found

    def kind(self, m: StunMessage) -> list[object]:
        """The first message of its kind: its kind's list (in `kinds` or `classic`, and
        named in `named`)."""
        kinds = self.classic if m.classic else self.kinds
        messages: list[object] = []
        kinds.setdefault(m.method, {})[m.cls] = messages
        self.named.append((kind_name(m.classic, m.method, m.cls), messages))
        return messages

    def walk(self, events: list[StunEvent], start: int = 0) -> None:
        """The pass, from `events[start]` (the reference for `_iceloop.run`)."""
        users, pending, kinds, classic = self.users, self.pending, self.kinds, self.classic
        failures, check = self.failures, self.check
        for i in range(start, len(events)):
            ev = events[i]
            m = ev.msg
            method, cls = m.method, m.cls
            try:
                (classic if m.classic else kinds)[method][cls].append(m)
            except KeyError:
                self.kind(m).append(m)
            if m.fingerprint_ok is False:
                failures.append(ev.frame)
            if method != "Binding":
                continue
            if cls == "request":
                username = m.username or ""
                user = users.get(username)
                if user is None:
                    user = self.user(ev, username)
                    if user is None:
                        continue
                gen, key, flows = user
                seen = flows.get(ev.flow)
                if seen is not None and seen[0] is ev.src and seen[1] is ev.dst:
                    pair = seen[2]
                else:
                    pair = self.pair(ev, gen, flows)
                pair.requests += 1
                pending[m.txid] = (pair, m.use_candidate, key)
            elif cls == "success" or cls == "error":
                p = pending.get(m.txid)
                if p is None:
                    continue
                pair, use, key = p
            else:
                continue
            # MESSAGE-INTEGRITY of a check or its answer, keyed by the receiver's ice-pwd
            # (RFC 8445 7.2.2)
            raw = ev.raw
            if key is not None and raw:
                verdicts = key[1]
                ok = verdicts.get(raw)
                if ok is None and raw not in verdicts:
                    ok = verdicts[raw] = check(raw, key[0], m)
                if ok is not None:
                    pair.integrity_checked += 1
                    if not ok:
                        pair.integrity_failures.append(ev.frame)
            if cls == "success":
                pair.successes += 1
                if pair.first_success is None:
                    pair.first_success = (ev.frame, ev.time)
                pair.nominated = pair.nominated or use
            elif cls == "error":
                pair.errors.append((ev.frame, m.error_code or 0))


if _iceloop is not None and not _iceloop.setup(StunEvent, StunMessage, CandidatePair):
    _iceloop = None  # classes whose slots are not the ones it reads: walk does it all


def _from_sdp(s: Session) -> dict[str, str]:
    """Candidate types by address (into `s`), and ice-ufrag -> ice-pwd (returned, the
    short-term keys of the checks), from every captured SDP in one pass."""
    pwds: dict[str, str] = {}
    types = s.candidate_types
    for ev in s.analysis.sdp:
        sdp = ev.sdp
        for _, address, port, kind in sdp.ice_candidates:
            types[address, port] = kind
        for m in sdp.media:
            ufrag, pwd, _, _ = m.transport
            if ufrag and pwd:
                pwds.setdefault(ufrag, pwd)
    return pwds


def _media(s: Session) -> None:
    """First media on each pair after its first check, and the SSRCs each generation carried."""
    streams: dict[frozenset[Address], list[tuple[float, int, float, int, int]]] = {}
    for f in s.analysis.flows:
        for st in f.streams.values():
            item = (st.first_t, st.first_frame, st.last_t, st.last_frame, st.ssrc)
            streams.setdefault(frozenset((f.src, f.dst)), []).append(item)
    for g in s.generations:
        for p in g.pairs:
            seen = []
            for first_t, first_n, last_t, last_n, ssrc in streams.get(frozenset((p.a, p.b)), []):
                if last_t < p.first_check[1]:
                    continue
                g.ssrcs.add(ssrc)
                # A stream older than this pair's checks (a restart on the same 5-tuple):
                # media is seen again at the latest at its last packet.
                seen.append((first_t, first_n) if first_t >= p.first_check[1] else (last_t, last_n))
            if seen:
                t, n = min(seen)
                p.first_media = (n, t)


def _restarts(s: Session) -> None:
    """A generation restarts an earlier one when they share a ufrag, a signalling dialog or
    an SSRC (media continues across an ICE restart); unrelated calls stay apart."""
    gens = s.generations
    for g, j in zip(gens, restarted_from(gens), strict=True):
        if j is None:
            continue
        started = g.first
        if g.sdp_time and g.sdp_time[1] <= started[1]:
            started = g.sdp_time
        s.restarts.append(
            IceRestart(
                len(s.restarts) + 1, gens[j].ufrags, g.ufrags, started, g.connected, g.first_media
            )
        )
    s.restarts = _fold_half_steps(s.restarts)


def restarted_from(gens: list[IceGeneration]) -> list[int | None]:
    """For each generation, the latest earlier one sharing a ufrag, a dialog or an SSRC.

    The latest generation holding each of them is kept in an index, so a capture of many
    calls costs one pass, not a scan back over every earlier generation.
    """
    latest: dict[tuple[int, object], int] = {}  # (kind, ufrag | dialog | ssrc) -> generation
    out: list[int | None] = []
    for i, g in enumerate(gens):
        keys: list[tuple[int, object]] = []  # loops, not generators: one per generation
        for u in g.ufrags:
            keys.append((0, u))
        for d in g.sdp_dialogs:
            keys.append((1, d))
        for x in g.ssrcs:
            keys.append((2, x))
        j = -1
        for k in keys:
            n = latest.get(k, -1)
            if n > j:
                j = n
        out.append(j if j >= 0 else None)
        for k in keys:
            latest[k] = i
    return out


def _fold_half_steps(restarts: list[IceRestart], window: float = 5.0) -> list[IceRestart]:
    """One restart seen as several generations is one restart.

    While a restart is under way each agent may check with its new ufrag and the far
    side's old one (before the answer arrives, or before the far side applied it), so
    one restart shows up as up to three ufrag pairs within a moment (seen from
    Chromium, and in the Janus forum report). Generations that appear within `window`
    seconds of a restart's start and share a ufrag with it are folded into it; the
    pairs that keep an old ufrag are kept as `transitional` evidence, and the new
    ufrags are those of the pair where both sides changed.
    """
    out: list[IceRestart] = []
    for r in restarts:
        g = out[-1] if out else None
        if g is not None and r.started[1] - g.started[1] <= window:
            seen = {g.new_ufrags, *g.transitional}
            ufrags = {u for pair in seen for u in pair} | set(g.old_ufrags)
            if set(r.old_ufrags) & ufrags or set(r.new_ufrags) & ufrags:
                pairs = [*seen, r.new_ufrags]
                fresh = [p for p in pairs if not set(p) & set(g.old_ufrags)]
                new = fresh[-1] if fresh else r.new_ufrags
                full = r if r.new_ufrags == new else g
                out[-1] = IceRestart(
                    g.index,
                    g.old_ufrags,
                    new,
                    g.started,
                    full.connected or r.connected or g.connected,
                    full.media or r.media or g.media,
                    [p for p in dict.fromkeys(pairs) if p != new],
                )
                continue
        out.append(r)
    for i, r in enumerate(out, 1):
        r.index = i
    return out


def _dtls(s: Session) -> None:
    # each handshake with what only this pass reads: its `frames` as a set, its message
    # counts (a plain dict), kept beside it rather than by id() (an audited call)
    by_random: dict[tuple[frozenset[Address], bytes], _Building] = {}
    current: dict[frozenset[Address], _Building] = {}
    building: list[_Building] = []
    # flow label -> (src, dst, the 5-tuple's ends): one frozenset for both directions, made
    # once per flow, so a look-up takes its kept hash and finds it by identity
    flows: dict[str, tuple[Address, Address, frozenset[Address]]] = {}
    same: dict[frozenset[Address], frozenset[Address]] = {}
    for ev in s.analysis.dtls:
        src, frame = ev.src, ev.frame
        kept = flows.get(ev.flow)
        if kept is not None and kept[0] is src and kept[1] is ev.dst:
            ends = kept[2]
        else:
            ends = frozenset((src, ev.dst))
            ends = same.setdefault(ends, ends)
            flows[ev.flow] = (src, ev.dst, ends)
        b = current.get(ends)  # changes only with a ClientHello, so is kept here
        framed = None  # the handshake this frame was last added to
        records = ev.steps if ev.steps is not None else dtls.steps(ev.records)
        for content_type, alert, hss in records:
            for hs in hss:
                random = hs[2]  # a ClientHello's, from its whole first fragment
                if random is not None:
                    key = (ends, random)
                    b = by_random.get(key)
                    if b is None:
                        h = DtlsHandshake(src, ev.dst, ev.relayed, (frame, ev.time))
                        b = by_random[key] = (h, set(), {})
                        building.append(b)
                        s.handshakes.append(h)
                    current[ends] = b
            if b is None:
                continue
            h, seen, n = b
            if h is not framed:
                framed = h
                if frame not in seen:
                    seen.add(frame)
                    h.frames.append(frame)
            if content_type == 20:  # ChangeCipherSpec
                h.ccs_from.add("client" if src == h.client else "server")
            if alert:
                h.alerts.append((frame, *alert))
            for t, offset, _, ems, srtp_profile in hss:
                if offset == 0:
                    n[t] = n.get(t, 0) + 1
                    if t == "ClientHello" or t == "ServerHello":
                        side = "client" if src == h.client else "server"
                        h.extended_master_secret[side] = ems
                        if t == "ServerHello" and srtp_profile:
                            h.srtp_profile = srtp_profile
                if t == "Finished":
                    h.end = (frame, ev.time)
        if ev.certificate_fingerprint and b is not None:
            h = b[0]
            side = "client" if src == h.client else "server"
            h.fingerprints[side] = (frame, ev.certificate_fingerprint)
    for h, _, n in building:
        h.messages.update(n)


def _sip(s: Session) -> None:
    dialogs: dict[str, Dialog] = {}
    txs: dict[tuple[str, str], Transaction] = {}
    for ev in s.analysis.sip:
        m = ev.msg
        call_id = m.call_id
        d = dialogs.get(call_id)
        if d is None:
            d = dialogs[call_id] = Dialog(call_id, m.from_tag)
            s.dialogs.append(d)
        if not d.to_tag:
            d.to_tag = m.to_tag
        d.events.append(ev)
        branch = m.branch
        key = (branch, m.cseq[1])
        if m.status is None:  # a request
            if m.method == "ACK":
                continue
            t = txs.get(key)
            if t is None:
                t = txs[key] = Transaction(branch, m.method, ev.frame)
                d.transactions.append(t)
            else:
                t.requests += 1
                t.retransmissions.append(ev.frame)
        elif key in txs:
            txs[key].responses.append((ev.frame, m.status or 0))
    for sdp_ev in s.analysis.sdp:
        if sdp_ev.dialog in dialogs:
            dialogs[sdp_ev.dialog].sdps.append(sdp_ev)
