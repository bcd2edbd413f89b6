"""Session model and `expect:` checks on the committed captures of real calls."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis.analyzer import analyze_bytes, analyze_file
from harness.analysis.model import StunEvent, wall_clock
from harness.analysis.session import IceGeneration, Session, _from_sdp, _ice, build, restarted_from
from harness.analysis.stun import StunMessage
from harness.assertions.evaluate import check_file, run_expects
from harness.assertions.registry import CheckError, run_check
from tests.fuzzing import FAST

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"


@cache
def session(name: str) -> Session:
    return build(analyze_file(PCAPS / name))


def test_direct_call_model() -> None:
    s = session("aiortc-direct.pcap")
    assert len(s.generations) == 1 and not s.restarts
    g = s.generations[0]
    assert g.selected is not None and g.selected.kind == "host" and g.selected.nominated
    assert g.sdp_time is not None and g.sdp_time[1] <= g.first[1]  # the offer came first
    assert len(s.handshakes) == 1
    h = s.handshakes[0]
    assert (
        h.complete
        and h.srtp_profile
        and h.extended_master_secret == {"client": True, "server": True}
    )
    assert set(h.fingerprints) == {"client", "server"}
    assert [e.type for e in s.analysis.sdp] == ["offer", "answer"]


def test_relayed_call_model() -> None:
    s = session("aiortc-relayed.pcap")
    g = s.generations[0]
    assert g.selected is not None and g.selected.relayed and g.selected.kind == "relay"
    kinds = {e.msg.kind for e in s.analysis.stun}
    assert {
        "Allocate request",
        "Allocate error",
        "Allocate success",
        "ChannelBind request",
    } <= kinds
    assert all(e.msg.fingerprint_ok is not False for e in s.analysis.stun)
    assert all(st.relayed for st in s.analysis.rtp_streams)
    assert s.handshakes[0].relayed


def test_sip_dialog_model() -> None:
    for name in ("sipp-udp.pcap", "sipp-tcp.pcap"):
        s = session(name)
        assert len(s.dialogs) == 1
        d = s.dialogs[0]
        assert d.state == "terminated"
        assert [(t.method, t.final) for t in d.transactions] == [("INVITE", 200), ("BYE", 200)]
        assert [e.type for e in d.sdps] == ["offer", "answer"]
        assert not d.reinvites


def test_sip_over_websocket() -> None:
    s = session("sip-ws.pcap")
    assert [(e.transport, e.msg.summary) for e in s.analysis.sip] == [
        ("ws", "REGISTER sip:198.18.0.12"),
        ("ws", "200 OK (REGISTER)"),
        ("ws", "OPTIONS sip:198.18.0.12"),
        ("ws", "200 Keepalive (OPTIONS)"),
    ]
    assert [d.state for d in s.dialogs] == ["REGISTER 200", "OPTIONS 200"]


@pytest.mark.parametrize(
    ("name", "check", "params"),
    [
        ("aiortc-direct.pcap", "dtls_handshakes", {"count": 1, "complete": True}),
        ("aiortc-direct.pcap", "dtls_fingerprint_matches_sdp", {}),
        ("aiortc-direct.pcap", "selected_pair_type", {"type": "host"}),
        ("aiortc-direct.pcap", "ice_connected", {}),
        ("aiortc-direct.pcap", "ice_integrity", {}),
        ("aiortc-relayed.pcap", "ice_integrity", {}),
        ("aiortc-direct.pcap", "ice_restarts", {"count": 0}),
        ("aiortc-direct.pcap", "rtp_flowing", {"after_s": 3.0}),
        ("aiortc-direct.pcap", "rtp_loss", {"max_percent": 1}),
        ("aiortc-direct.pcap", "sdp_conformance", {"profile": "webrtc"}),
        ("aiortc-relayed.pcap", "selected_pair_type", {"type": ["relay"]}),
        ("aiortc-relayed.pcap", "dtls_fingerprint_matches_sdp", {}),
        ("aiortc-relayed.pcap", "stun_errors", {"method": "Allocate", "code": 401, "count": 1}),
        ("sipp-udp.pcap", "sip_dialog_state", {"state": "terminated"}),
        ("sipp-tcp.pcap", "sip_reinvite", {"count": 0}),
        ("sipp-udp.pcap", "max_media_gap", {"max_s": 0.5}),
    ],
)
def test_checks_pass(name: str, check: str, params: dict[str, object]) -> None:
    o = run_check(check, session(name), params)
    assert o.passed, (o.message, o.evidence)


@pytest.mark.parametrize("check", ["ice_connected", "selected_pair_type"])
@pytest.mark.parametrize("generation", [1, -2, 0])
def test_a_generation_the_capture_lacks_fails(check: str, generation: int) -> None:
    """A capture without an ICE restart has one generation: asking for the second (a
    restart that never happened) is a failed check that says so, not an IndexError."""
    s = session("aiortc-direct.pcap")
    assert len(s.generations) == 1
    o = run_check(
        check,
        s,
        {"generation": generation, "type": "host"}
        if "pair" in check
        else {"generation": generation},
    )
    if generation == 0:
        assert o.passed, o.message
    else:
        assert not o.passed and f"no ICE generation {generation}: the capture has 1" in o.message
        assert any("generation" in line for line in o.evidence)


def test_failed_checks_carry_evidence() -> None:
    s = session("aiortc-direct.pcap")
    o = run_check("selected_pair_type", s, {"type": "relay"})
    assert not o.passed and "is host" in o.message
    assert any("198.18.0." in line for line in o.evidence)
    o = run_check("max_media_gap", s, {"max_s": 0.001})
    assert not o.passed and any("frames" in line for line in o.evidence)
    o = run_check("rtp_flowing", s, {"after_s": 60.0})
    assert not o.passed
    # sipp's UAS answers PCMU to a PCMA offer: a real finding, quoted with its line.
    o = run_check("sdp_conformance", session("sipp-udp.pcap"), {"profile": "sip"})
    assert not o.passed
    assert any(
        "line 6: 'm=audio 6000 RTP/AVP 0'" in e and "no codec in common" in e for e in o.evidence
    )
    o = run_check("sip_reinvite", session("sipp-udp.pcap"), {})
    assert not o.passed and "0 re-INVITE" in o.message


def test_media_on_two_different_pairs_is_named() -> None:
    """CI's aiortc -> Chromium call on port-restricted NATs (2026-12-03, seed 334608537):
    alice sent from her relay to Chromium's relay, Chromium from its NAT's address to
    alice's relay, and after the ICE restart alice moved to new relays while Chromium stayed.
    Both tones were heard, so "one way" would be false: the check names both paths."""
    s = session("aiortc-chromium-crossed-paths.pcap")
    out = "udp 198.18.0.12:49404 > 198.18.0.12:49289 (in udp 192.168.1.10:38903 > 198.18.0.12:3478)"
    new = "udp 198.18.0.12:49179 > 198.18.0.12:49363 (in udp 192.168.1.10:39313 > 198.18.0.12:3478)"
    back = (
        "udp 198.18.0.11:48000 > 198.18.0.12:49404 (in udp 198.18.0.12:3478 > 192.168.1.10:38903)"
    )
    o = run_check("rtp_flowing", s, {})
    assert not o.passed and o.rfc == "RFC 8445 12.1"
    assert o.message.startswith("RTP after t=0.0s flows both ways, on different paths: ")
    assert o.evidence[:2] == [
        f"{back} one way, {new} the other",
        f"{back} one way, {out} the other",
    ]
    o = run_check("rtp_flowing", s, {"after_s": 7.5})  # alice's first relay has stopped
    assert o.evidence[0] == f"{back} one way, {new} the other" and "the other" not in o.evidence[1]
    o = run_check("rtp_flowing", s, {"after_s": 9.12})  # Chromium's RTP only: one way
    assert not o.passed and o.message == "RTP after t=9.12s flows one way only on every path"
    assert run_check("rtp_flowing", s, {"both_ways": False}).passed
    # a relayed call whose ends agree on the pair: both ways on one path
    assert run_check("rtp_flowing", session("aiortc-relayed.pcap"), {}).passed


def test_fingerprint_mismatch_is_caught() -> None:
    """Change one hex digit of the offer's a=fingerprint in the capture bytes: the check fails."""
    data = bytearray((PCAPS / "aiortc-direct.pcap").read_bytes())
    s = session("aiortc-direct.pcap")
    fp = s.analysis.sdp[0].sdp.fingerprints[0].split(" ")[1]
    at = data.find(fp.encode())
    assert at > 0
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    o = run_check("dtls_fingerprint_matches_sdp", build(analyze_bytes(bytes(data))), {})
    assert not o.passed and any("is in no SDP" in line for line in o.evidence)


def test_wrong_ice_pwd_is_caught() -> None:
    """Change the answer's a=ice-pwd in the capture bytes: the peer's checks no longer verify."""
    data = bytearray((PCAPS / "aiortc-direct.pcap").read_bytes())
    pwd = session("aiortc-direct.pcap").analysis.sdp[1].sdp.attr("ice-pwd") or ""
    pwd = pwd or session("aiortc-direct.pcap").analysis.sdp[1].sdp.media[0].attr("ice-pwd") or ""
    at = data.find(pwd.encode())
    assert pwd and at > 0
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    o = run_check("ice_integrity", build(analyze_bytes(bytes(data))), {})
    assert not o.passed and "does not verify" in o.evidence[0]


def test_bad_expectations_are_errors() -> None:
    with pytest.raises(CheckError):
        run_check("no_such_check", session("aiortc-direct.pcap"), {})
    with pytest.raises(CheckError):
        run_check("dtls_handshakes", session("aiortc-direct.pcap"), {"maximum": 1})
    with pytest.raises(CheckError):
        run_check("dtls_handshakes", session("aiortc-direct.pcap"), {"max": "one"})


def test_run_expects_picks_the_capture() -> None:
    files = [PCAPS / "sipp-udp.pcap", PCAPS / "aiortc-relayed.pcap"]
    results = run_expects(
        [
            ("selected_pair_type", {"type": "relay", "capture": "aiortc.relayed"}, 3),
            ("sip_dialog_state", {}, 4),
            ("dtls_handshakes", {"capture": "nope"}, 5),
        ],
        files,
    )
    assert [r[3].passed for r in results] == [True, True, False]
    assert results[0][4] == "aiortc-relayed.pcap" and "bad expectation" in results[2][3].message
    assert check_file(files[1], "dtls_handshakes", max=1).passed
    # each verdict's evidence says when its capture's t=0 was, to line it up with logs
    first = analyze_file(files[1]).start_time
    assert results[0][3].evidence[0] == f"capture: aiortc-relayed.pcap (t=0 at {wall_clock(first)})"
    assert results[2][3].evidence[0] == "capture: -"


def test_wall_clock_rounds_to_the_millisecond() -> None:
    t = time.mktime((2026, 12, 2, 1, 45, 30, 0, 0, -1))
    assert wall_clock(t + 0.5414) == "01:45:30.541"
    assert wall_clock(t + 0.9996) == "01:45:31.000"


def _restarted_from_by_scan(gens: list[IceGeneration]) -> list[int | None]:
    """The rule as first written: the latest earlier generation sharing a ufrag, a dialog or
    an SSRC, found by scanning back (quadratic in the number of generations)."""
    out: list[int | None] = []
    for i, g in enumerate(gens):
        out.append(
            next(
                (
                    j
                    for j in range(i - 1, -1, -1)
                    if set(gens[j].ufrags) & set(g.ufrags)
                    or gens[j].sdp_dialogs & g.sdp_dialogs
                    or gens[j].ssrcs & g.ssrcs
                ),
                None,
            )
        )
    return out


@FAST
@given(
    st.lists(
        st.tuples(
            st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdef")),
            st.sets(st.sampled_from(["d1", "d2", "d3", "a"])),  # "a" is also a ufrag
            st.sets(st.integers(0, 4)),
        ),
        max_size=12,
    )
)
def test_restarts_follow_the_latest_related_generation(
    spec: list[tuple[tuple[str, str], set[str], set[int]]],
) -> None:
    """The index finds what the scan finds: unrelated generations (a dialog named like a
    ufrag is no match) start no restart."""
    gens = [
        IceGeneration(u, (i, float(i)), sdp_dialogs=set(d), ssrcs=set(x))
        for i, (u, d, x) in enumerate(spec)
    ]
    assert restarted_from(gens) == _restarted_from_by_scan(gens)


def test_restarts_of_many_calls_take_one_pass() -> None:
    """2,000 unrelated calls of one restart each: each restart follows its own call's first
    generation (its speed is benchmarks' business: bench_analyze --cases, case c)."""
    gens = []
    for c in range(2000):
        a, b = f"a{c}", f"b{c}"
        gens.append(IceGeneration((a, b), (2 * c, 10.0 * c), sdp_dialogs={f"call{c}"}))
        gens.append(IceGeneration((a, f"c{c}"), (2 * c + 1, 10.0 * c + 1)))
    assert restarted_from(gens) == [None if i % 2 == 0 else i - 1 for i in range(4000)]


def test_stun_kinds_keep_classic_stun_apart() -> None:
    """RFC 3489 and RFC 5389 messages of one method and class are two kinds, named and
    counted apart in order of first appearance; a bad FINGERPRINT is listed by frame."""
    spec = [(True, None), (False, True), (True, False), (False, None)]
    events = [
        StunEvent(i, float(i), ("10.0.0.1", 1), ("10.0.0.2", 2), "udp", False, msg)
        for i, (classic, fp) in enumerate(spec, 1)
        for msg in [StunMessage("Binding", "request", "t", 0, fingerprint_ok=fp, classic=classic)]
    ]
    a = session("aiortc-direct.pcap").analysis
    s = build(replace(a, stun=events, sdp=[], dtls=[], sip=[], flows=[]))
    assert list(s.stun_kinds.items()) == [("classic Binding request", 2), ("Binding request", 2)]
    assert s.stun_fingerprint_failures == [3]


def test_an_answer_is_verified_with_its_own_checks_key() -> None:
    """The same answer bytes matched (by transaction ID) to the checks of two USERNAMEs:
    each copy is verified with its check's receiver's ice-pwd, not the verdict of the
    other (verdicts are kept by key and bytes)."""
    a = session("aiortc-direct.pcap").analysis
    answer = next(e for e in a.stun if e.msg.cls == "success" and e.msg.integrity)
    check = next(e for e in a.stun if e.msg.cls == "request" and e.msg.txid == answer.msg.txid)
    events = []
    for i, user in enumerate([check.msg.username, "other:x"]):
        src = (f"10.0.0.{i}", 1)
        msg = replace(check.msg, username=user)
        events += [replace(check, frame=2 * i + 1, src=src, msg=msg, raw=b""), answer]
        events[-1] = replace(answer, frame=2 * i + 2)
    pwds = {**_from_sdp(Session(a)), "other": "not the key"}
    s = Session(replace(a, stun=events, sdp=[]))
    _ice(s, pwds)
    found = [(p.integrity_checked, p.integrity_failures) for g in s.generations for p in g.pairs]
    assert found == [(1, []), (1, [4])]
