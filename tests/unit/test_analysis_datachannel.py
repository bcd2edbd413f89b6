"""Data channels decrypted from DTLS with a key log equal what tshark reads.

tests/data/pcaps/aiortc-datachannel.pcap (peer-a's wire, direct pair) and
aiortc-datachannel-turn.pcap (coturn's wire, both peers relayed, so every packet
appears twice: in from one peer, out to the other) are the STUN and DTLS frames of
scenarios/p2p/calls.yaml cells p2p-aiortc-aiortc-open-internet and
...-relay-only (seed 7), with the key logs the two aiortc agents wrote
(harness/peers/aiortc_agent/keylog.py); RTP was filtered out with
`tshark -Y "dtls or stun"` (the TURN file: `dtls or (stun and not stun.channel)` with
`--enable-heuristic dtls_stun`). aiortc-datachannel-fragments.pcap is peer-a's wire of
tests/data/datachannel-fragments.yaml (seed 3): a 3780-byte message SCTP cuts into four
DATA chunks, and a JSON message the other way. firefox-aiortc-datachannel.pcap is the same
exchange from Firefox (caller) to aiortc (tests/data/datachannel-firefox-aiortc.yaml, seed
5), with Firefox's key log alone (SSLKEYLOGFILE): Firefox logs its WebRTC DTLS secrets.
firefox-datachannel-dtls13.pcap is Firefox to Firefox (datachannel-firefox.yaml, seed 5):
DTLS 1.3 and SCTP I-DATA (RTP left out with `-Y "udp and not (udp.payload[0:1] >= 80 and
udp.payload[0:1] <= bf)"`), which tshark 4.0 reads neither of; there the reference is what
the scenario sent, and the AEAD tags (a wrong key or nonce never authenticates).

The oracle is tshark 4.0 in two steps, as it has no way to hand DTLS plaintext to
its SCTP dissector on a dynamic port: it decrypts the DTLS records with the key
log (`-o tls.keylog_file`), each plaintext is wrapped in an IPv4 header (protocol
132) into a new capture, and tshark dissects SCTP, DCEP (rtcdc) and the PPIDs there.
Compared: DTLS records decrypted, SCTP chunks by type, channel opens by label, and per
(stream, PPID) the messages (DATA chunks with the E flag) and their bytes, counting each
TSN once (retransmissions and the relay's second leg are the same chunk).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from harness.analysis.analyzer import analyze_file
from harness.analysis.datachannels import NotSctp
from harness.analysis.dtls import ALERTS
from harness.analysis.sctp import CHUNK_TYPES

PCAPS = Path(__file__).resolve().parents[1] / "data" / "pcaps"
FILES = [
    "aiortc-datachannel",
    "aiortc-datachannel-turn",
    "aiortc-datachannel-fragments",
    "firefox-aiortc-datachannel",
]
#: what we read that tshark does not, per file and count: the SCTP ABORT of the hang-up,
#: sent after alice's ICE restart moved DTLS to a new 5-tuple without a new handshake.
#: tshark keys DTLS sessions by 5-tuple and leaves it encrypted; we find the session whose
#: keys open it (the AEAD tag decides; dtlsdecrypt.DtlsAssociation.adopt). On coturn's
#: wire the ABORT passes twice, in from alice and out to bob.
ONLY_OURS: dict[str, dict[str, Counter[object]]] = {
    "aiortc-datachannel": {
        "records": Counter({"dtls-records": 1}),
        "chunks": Counter({"ABORT": 1}),
    },
    "aiortc-datachannel-fragments": {},
    "firefox-aiortc-datachannel": {},
    "aiortc-datachannel-turn": {
        "records": Counter({"dtls-records": 2}),
        "chunks": Counter({"ABORT": 2}),
    },
}
needs_tshark = pytest.mark.skipif(not shutil.which("tshark"), reason="tshark is not installed")


def _tshark(*argv: str) -> list[list[str]]:
    out = subprocess.run(
        ["tshark", "-n", *argv], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


@cache
def _oracle(name: str, tmp: Path) -> dict[str, Counter[object]]:
    """tshark's counts: decrypted records, SCTP chunks, DCEP opens, messages per direction."""
    rows = _tshark(
        "--enable-heuristic", "dtls_stun", "-r", str(PCAPS / f"{name}.pcap"), "-o", f"tls.keylog_file:{PCAPS / f'{name}.keys'}",
        "-Y", "dtls.app_data", "-T", "fields",
        "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst", "-e", "udp.dstport", "-e", "data.data",
    )  # fmt: skip
    ends: dict[tuple[str, str], int] = {}
    frames = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 228))
    records = 0
    for src, sport, dst, dport, data in rows:
        a = ends.setdefault((src, sport), len(ends) + 1)
        b = ends.setdefault((dst, dport), len(ends) + 1)
        for hexdata in filter(None, data.split(",")):
            records += 1
            body = bytes.fromhex(hexdata)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, 132, 0,
                             bytes([192, 0, 2, a]), bytes([192, 0, 2, b]))  # fmt: skip
            frames += struct.pack("<IIII", 0, 0, 20 + len(body), 20 + len(body)) + ip + body
    wrapped = tmp / f"{name}-sctp.pcap"
    wrapped.write_bytes(frames)
    counts: dict[str, Counter[object]] = {
        "records": Counter({"dtls-records": records}),
        "chunks": Counter(),
        "opens": Counter(),
        "messages": Counter(),
        "bytes": Counter(),
    }
    seen: set[tuple[str, str]] = set()
    for row in _tshark(
        "-r", str(wrapped), "-T", "fields", "-E", "occurrence=a",
        "-e", "sctp.chunk_type", "-e", "sctp.chunk_length", "-e", "sctp.data_tsn",
        "-e", "sctp.data_sid", "-e", "sctp.data_payload_proto_id", "-e", "sctp.data_e_bit",
        "-e", "rtcdc.message_type", "-e", "rtcdc.label",
    ):  # fmt: skip
        types, lengths, tsns, sids, ppids, e_bits, dcep_types, labels = row
        data_lengths = []
        for t, n in zip(types.split(","), lengths.split(","), strict=True):
            counts["chunks"][CHUNK_TYPES.get(int(t), t)] += 1
            if t == "0":
                data_lengths.append(int(n) - 16)  # chunk header 4 + TSN, SID, SSN, PPID 12
        fields = [x.split(",") if x else [] for x in (tsns, sids, ppids, e_bits)]
        for tsn, sid, ppid, end, n in zip(*fields, data_lengths, strict=True):
            if (tsn, sid) in seen:  # a retransmission, or the relay's second leg
                continue
            seen.add((tsn, sid))
            channel = (int(sid, 0), int(ppid))
            counts["bytes"][channel] += n
            if end in ("1", "True"):  # the last fragment: one whole message
                counts["messages"][channel] += 1
        if "3" in dcep_types.split(","):
            counts["opens"][labels] += 1
    return counts


def _ours(name: str) -> dict[str, Counter[object]]:
    a = analyze_file(PCAPS / f"{name}.pcap", PCAPS / f"{name}.keys")
    ppid = {"open": 50, "ack": 50, "string": 51, "binary": 53, "empty-string": 56}
    msgs: Counter[object] = Counter((e.stream, ppid.get(e.kind, -1)) for e in a.datachannel)
    sizes: Counter[object] = Counter()
    for e in a.datachannel:
        sizes[(e.stream, ppid.get(e.kind, -1))] += e.size
    opens: Counter[object] = Counter(e.label for e in a.datachannel if e.kind == "open")
    chunks: Counter[object] = Counter(
        {k[5:]: v for k, v in a.decrypted.items() if k[5:] in CHUNK_TYPES.values()}
    )
    return {
        "records": Counter({"dtls-records": a.decrypted["dtls-records"]}),
        "chunks": chunks,
        "opens": opens,
        "messages": msgs,
        "bytes": sizes,
    }


@needs_tshark
@pytest.mark.parametrize("name", FILES)
def test_same_as_tshark(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    theirs = _oracle(name, tmp_path_factory.mktemp(name))
    ours = _ours(name)
    for what in theirs:
        expected = theirs[what] + ONLY_OURS[name].get(what, Counter())
        assert ours[what] == expected, f"{name} {what}: ours {ours[what]} tshark {theirs[what]}"
    assert theirs["records"]["dtls-records"] > 0 and theirs["opens"]["harness"] == 2


@pytest.mark.parametrize("name", FILES[:2])
def test_channel_messages(name: str) -> None:
    """Both aiortc peers open a channel labelled "harness"; alice sends "hello bob" on hers."""
    a = analyze_file(PCAPS / f"{name}.pcap", PCAPS / f"{name}.keys")
    (hello,) = [e for e in a.datachannel if e.kind == "string"]
    assert (hello.text, hello.size, hello.label) == ("hello bob", 9, "harness")
    assert [e.kind for e in a.datachannel].count("ack") == 2
    assert not a.malformed, a.malformed


def test_long_message_reassembled() -> None:
    """tests/data/datachannel-fragments.yaml: 3780 bytes from alice (SCTP cuts it into 4
    DATA chunks) and a JSON message from bob, whole and in order."""
    name = "aiortc-datachannel-fragments"
    a = analyze_file(PCAPS / f"{name}.pcap", PCAPS / f"{name}.keys")
    long, doc = [e for e in a.datachannel if e.kind == "string"]
    assert long.size == 3780 and long.text.startswith("line 0000 of a long")
    assert a.decrypted["sctp-DATA"] == 4 + 4 + 1  # two opens, two acks, 4 + 1 messages
    assert doc.text == '{"type": "chat", "to": "bob", "body": "xxxxxxxxxxxxxxxxxxxx"}'
    assert (doc.src, doc.dst) == (long.dst, long.src)


def test_without_keys_nothing_decrypted() -> None:
    a = analyze_file(PCAPS / "aiortc-datachannel.pcap")
    assert not a.datachannel and not a.decrypted


def test_wrong_keys_reported() -> None:
    """A key log for other sessions: every record stays closed and the reason is given."""
    a = analyze_file(PCAPS / "aiortc-datachannel.pcap", PCAPS / "sip-tls12.keys")
    assert not a.datachannel
    assert a.skipped["dtls: no key log entry for this session"] >= 1


def test_analyze_prints_channels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`harness analyze --keylog`: the channels in the text and JSON summaries and the ladder."""
    from harness.analysis.cli import main

    name = "aiortc-datachannel-fragments"
    args = ["analyze", str(PCAPS / f"{name}.pcap"), "--keylog", str(PCAPS / f"{name}.keys")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Data channel 'harness' stream 0 on 198.18.0.10:43500 <-> 198.18.0.11:43560" in out
    assert "198.18.0.10:43500 > 198.18.0.11:43560: 1 message(s), 3780 bytes" in out
    assert main([*args, "--json", "--html", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    (ch,) = [
        c
        for c in data["datachannels"]
        if c["directions"].get("198.18.0.11:43560 > 198.18.0.10:43500")
    ]
    assert ch["label"] == "harness" and ch["acked"] and ch["messages"][0]["kind"] == "string"
    assert data["dtls_decrypted"]["dtls-records"] == 27
    ladder = (tmp_path / "runs" / "capture" / "ladder.svg").read_text()
    assert (
        "DC &#x27;harness&#x27; string 3780 B" in ladder or "DC 'harness' string 3780 B" in ladder
    )


@needs_tshark
@pytest.mark.parametrize("name", FILES)
def test_alerts_same_as_tshark(name: str) -> None:
    """Encrypted alerts read with the key log (close_notify at hang-up), as tshark reads them;
    after the ICE restart (aiortc-datachannel*, ONLY_OURS) only we can, and do."""
    rows = _tshark(
        "--enable-heuristic", "dtls_stun", "-r", str(PCAPS / f"{name}.pcap"),
        "-o", f"tls.keylog_file:{PCAPS / f'{name}.keys'}", "-Y", "dtls.record.content_type==21",
        "-T", "fields", "-e", "frame.number", "-e", "dtls.alert_message.desc",
    )  # fmt: skip
    theirs = {int(f): ALERTS[int(d)] if d else "encrypted" for f, d in rows}
    a = analyze_file(PCAPS / f"{name}.pcap", PCAPS / f"{name}.keys")
    ours = {e.frame: r.alert[1] for e in a.dtls for r in e.records if r.alert}
    assert ours.keys() == theirs.keys()
    differ = {f: (ours[f], theirs[f]) for f in ours if ours[f] != theirs[f]}
    assert all(t == "encrypted" and o == "close_notify" for o, t in differ.values()), differ
    assert len(differ) == ONLY_OURS[name].get("chunks", Counter())["ABORT"]
    assert "close_notify" in ours.values()


def test_firefox_dtls13_idata() -> None:
    """Firefox to Firefox: DTLS 1.3 records and I-DATA chunks; the messages are the
    scenario's texts, byte for byte, on the channel it opened."""
    import yaml

    name = "firefox-datachannel-dtls13"
    scenario = yaml.safe_load((PCAPS.parent / "datachannel-firefox.yaml").read_text())
    long_text, doc = (s["send_data"]["text"] for s in scenario["steps"] if "send_data" in s)
    a = analyze_file(PCAPS / f"{name}.pcap", PCAPS / f"{name}.keys")
    assert a.decrypted["sctp-I_DATA"] > 0 and "sctp-DATA" not in a.decrypted
    strings = [e for e in a.datachannel if e.kind == "string"]
    assert [(e.size, e.label) for e in strings] == [
        (len(long_text), "harness"),
        (len(doc), "harness"),
    ]
    assert strings[0].text == long_text[:200] and strings[1].text == doc
    assert [e.kind for e in a.datachannel].count("open") == 1 and not a.malformed
    assert not [k for k in a.skipped if k.startswith("dtls:")], a.skipped


def test_dtls_of_another_protocol_is_no_malformed_sctp() -> None:
    """ndpi-dtls.pcap's DTLS 1.3 session (wolfSSL's example client and server, keys in the
    pcapng) carries "hello wolfssl!" and its answer: no SCTP, and nothing malformed."""
    a = analyze_file(PCAPS.parent / "thirdparty" / "ndpi-dtls.pcap")
    assert a.decrypted["dtls-records"] == 2
    assert a.decrypted["application-data-not-sctp"] == 2
    assert "sctp" not in a.malformed and "sctp-packets" not in a.decrypted


def test_no_sctp_in_an_association_of_sctp_is_malformed() -> None:
    """Held until the association shows what it carries, in either order."""
    kinds = NotSctp()
    assert kinds.other(b"A") == 0 and kinds.other(b"A") == 0  # held: nothing known yet
    assert kinds.sctp(b"A") == 2  # SCTP after all: the two were malformed SCTP
    assert kinds.other(b"A") == 1 and kinds.sctp(b"A") == 0  # now at once
    assert kinds.other(b"B") == 0  # another association, never SCTP
    assert kinds.others() == 1
    # the walk's own counters, on a capture whose associations all carry SCTP
    a = analyze_file(PCAPS / "aiortc-datachannel.pcap", PCAPS / "aiortc-datachannel.keys")
    assert "application-data-not-sctp" not in a.decrypted and "sctp" not in a.malformed
