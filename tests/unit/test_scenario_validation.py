"""Every class of scenario mistake is caught before any lab exists, with file:line:key.

Each case goes through `harness validate` and `harness run` (the same validation);
`run` must exit 2 with the same location and leave nothing: no run directory, no lab
state file. The scenario lives outside the repository and names a shipped topology.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.assertions.checks import STUN_METHODS
from harness.assertions.params import ADDRESS_PREFIX, YES_NO_EITHER, Choice
from harness.cli import main
from harness.config.scenario import load_scenarios, parse_scenario
from harness.errors import ConfigError
from harness.lab.registry import all_states

BASE = """\
name: t
topology: open-internet
components:
  turn: {kind: coturn, node: server}
  kam: {kind: kamailio, node: server}
peers:
  alice: {kind: aiortc, node: peer-a, ice_servers: [turn]}
  bob: {kind: aiortc, node: peer-b, ice_servers: [turn]}
capture: [peer-a.eth0, server.eth0]
links:
  peer-a.eth0: {profile: 4g}
steps:
  - call: {caller: alice, callee: bob, timeout: 15}
  - interface: {node: peer-a, iface: eth0, state: up}
expect:
  - dtls_handshakes: {count: 1, capture: peer-a.eth0}
  - peer_received_tone: {peer: bob, hz: 440}
"""

RESTART = "  - restart_media_stop: {sender: bob, cell: x, cells: "
# (case id, text replaced, replacement, line, key, message fragment)
CASES = [
    ("component-option-unknown", "node: server}\n  kam", "node: server, options: {prot: 1}}\n  kam",
     4, "components.turn.options.prot", "unknown key"),
    ("component-option-type", "node: server}\n  kam", "node: server, options: {port: abc}}\n  kam",
     4, "components.turn.options.port", "integer"),
    ("component-kind", "kind: kamailio", "kind: kamailo", 5, "components.kam.kind",
     "unknown component kind"),
    ("check-name", "- dtls_handshakes:", "- dtls_handshake:", 16, "expect[0].dtls_handshake",
     "unknown check"),
    ("check-param-typo", "{count: 1,", "{cuont: 1,", 16, "expect[0].dtls_handshakes.cuont",
     "did you mean 'count'"),
    ("check-param-type", "{count: 1,", "{count: one,", 16, "expect[0].dtls_handshakes.count",
     "wrong type"),
    ("check-param-missing", "  - peer_received_tone:",
     "  - turn_relayed_address: {capture: server.eth0}\n  - peer_received_tone:", 17,
     "expect[1].turn_relayed_address", "turn_relayed_address needs `address`"),
    ("peer-check-param", "hz: 440}", "hertz: 440}", 17, "expect[1].peer_received_tone.hertz",
     "unknown parameter"),
    ("peer-check-peer", "{peer: bob, hz", "{peer: carol, hz", 17,
     "expect[1].peer_received_tone.peer", "needs `peer`"),
    ("peer-check-peer-list", "{peer: bob, hz", "{peer: [bob], hz", 17,
     "expect[1].peer_received_tone.peer", "needs `peer`"),
    ("step-kind", "- call:", "- dial:", 13, "steps[0].dial", "unknown step"),
    ("step-arg", "{caller: alice,", "{calller: alice,", 13, "steps[0].call.calller",
     "unknown key (did you mean 'caller'?)"),
    ("step-peer", "callee: bob", "callee: carol", 13, "steps[0].call", "no peer 'carol'"),
    ("step-node", "{node: peer-a, iface", "{node: peer-z, iface", 14, "steps[1].interface",
     "no node 'peer-z'"),
    ("step-iface", "iface: eth0, state", "iface: wlan0, state", 14, "steps[1].interface",
     "no interface 'wlan0'"),
    ("peer-node", "node: peer-b,", "node: peer-q,", 8, "peers.bob.node", "no node 'peer-q'"),
    ("ice-server-unknown", "peer-b, ice_servers: [turn]", "peer-b, ice_servers: [stun]", 8,
     "peers.bob.ice_servers[0]", "no component 'stun'"),
    ("ice-server-not-turn", "peer-b, ice_servers: [turn]", "peer-b, ice_servers: [kam]", 8,
     "peers.bob.ice_servers[0]", "is no TURN server"),
    ("ice-server-transport-off", "peer-b, ice_servers: [turn]",
     "peer-b, ice_servers: [{component: turn, transport: tls}]", 8, "peers.bob.ice_servers[0]",
     "does not serve tls (options.tls is false)"),
    ("capture-colon", "[peer-a.eth0,", "[peer-a:eth0,", 9, "capture[0]", "write peer-a.eth0"),
    ("capture-iface", "[peer-a.eth0,", "[peer-a.eth9,", 9, "capture[0]", "no interface 'eth9'"),
    ("link-colon", "  peer-a.eth0: {profile", "  peer-a:eth0: {profile", 11, "links.peer-a:eth0",
     "write peer-a.eth0"),
    ("link-option", "{profile: 4g}", "{profil: 4g}", 11, "links.peer-a.eth0.profil", "unknown key"),
    ("expect-capture-file-name", "capture: peer-a.eth0}", "capture: peer-a-eth0}", 16,
     "expect[0].dtls_handshakes.capture", "write peer-a.eth0"),
    ("expect-capture-not-captured", "capture: peer-a.eth0}", "capture: peer-b.eth0}", 16,
     "expect[0].dtls_handshakes.capture", "no capture 'peer-b.eth0'"),
    ("topology", "topology: open-internet", "topology: open-internets", 2, "topology",
     "no topology"),
    ("check-param-not-a-name", "{count: 1,", "{false: 1,", 16, "expect[0].dtls_handshakes.False",
     "unknown parameter False"),
    # a matrix cell's overrides of a check's parameters: checked as the parameters are, and
    # what the check needs looked for after the cell's own (a typo there once ran silently)
    ("check-cell-override-typo", "  - peer_received_tone:", f"{RESTART}{{x: {{stoped: true}}}}}}\n"
     "  - peer_received_tone:", 17, "expect[1].restart_media_stop.cells.x.stoped",
     "did you mean 'stopped'"),
    ("check-cell-override-type", "  - peer_received_tone:", f"{RESTART}{{x: {{min_s: soon}}}}}}\n"
     "  - peer_received_tone:", 17, "expect[1].restart_media_stop.cells.x.min_s", "wrong type"),
    ("check-cell-override-cell", "  - peer_received_tone:", f"{RESTART}{{x: {{cell: y}}}}}}\n"
     "  - peer_received_tone:", 17, "expect[1].restart_media_stop.cells.x.cell",
     "a cell's overrides cannot set cell"),
    ("check-cell-needs", "  - peer_received_tone:",
     "  - restart_media_stop: {cell: x, cells: {y: {sender: bob}}}\n  - peer_received_tone:", 17,
     "expect[1].restart_media_stop", "restart_media_stop needs `sender`"),
    # a parameter of a few values: a misspelt one would have judged by the check's default
    ("check-param-choice", "  - peer_received_tone:",
     "  - selected_pair_type: {not_type: rellay}\n  - peer_received_tone:", 17,
     "expect[1].selected_pair_type.not_type", "is one of host, srflx, prflx, relay"),
    ("check-param-choice-list", "  - peer_received_tone:",
     "  - selected_pair_type: {type: [relay, hots]}\n  - peer_received_tone:", 17,
     "expect[1].selected_pair_type.type", "not ['relay', 'hots']"),
    ("check-cell-override-choice", "  - peer_received_tone:",
     f"{RESTART}{{x: {{stopped: maybe}}}}}}\n  - peer_received_tone:", 17,
     "expect[1].restart_media_stop.cells.x.stopped", "is one of true, false, either"),
    ("peer-check-choice", "  - peer_received_tone:",
     "  - peer_selected_pair: {peer: alice, local: rellay}\n  - peer_received_tone:", 17,
     "expect[1].peer_selected_pair.local", "is one of host, srflx, prflx, relay"),
    ("peer-check-by-kind-typo", "  - peer_received_tone:",
     "  - peer_selected_pair: {peer: alice, kind: aiortc, by_kind: {aiortc: {locl: [relay]}}}\n"
     "  - peer_received_tone:", 17, "expect[1].peer_selected_pair.by_kind.aiortc.locl",
     "did you mean 'local'"),
    ("peer-check-by-kind-choice", "  - peer_received_tone:",
     "  - peer_selected_pair: {peer: alice, by_kind: {aiortc: {either: [relay, srfx]}}}\n"
     "  - peer_received_tone:", 17, "expect[1].peer_selected_pair.by_kind.aiortc.either",
     "is one of host, srflx, prflx, relay"),
    ("check-param-stun-method", "  - peer_received_tone:",
     "  - stun_errors: {method: Alocate, max: 0}\n  - peer_received_tone:", 17,
     "expect[1].stun_errors.method", "is one of Binding, Allocate"),
    ("check-param-tls-alert", "  - peer_received_tone:",
     "  - tls_connections: {port: 5061, alert: certificate_unkown, count: 0}\n"
     "  - peer_received_tone:", 17, "expect[1].tls_connections.alert",
     "is one of close_notify"),
    ("check-param-regex", "  - peer_received_tone:",
     "  - sip_messages: {header: 'Contact: <sip:(bob'}\n  - peer_received_tone:", 17,
     "expect[1].sip_messages.header", "is a bad regex"),
    ("check-param-address", "  - peer_received_tone:",
     "  - no_rtp: {src: alice}\n  - peer_received_tone:", 17, "expect[1].no_rtp.src",
     "is an address or address:port prefix, not 'alice'"),
    ("check-param-host", "  - peer_received_tone:",
     "  - sip_messages: {from_host: kam, request: true, count: 0}\n  - peer_received_tone:", 17,
     "expect[1].sip_messages.from_host", "is an IP address, not 'kam'"),
    ("yaml-syntax", "state: up}", "state: up}}", 14, "", "invalid YAML"),
    ("duplicate-key", "  bob: {kind", "  alice: {kind", 8, "peers.alice", "duplicate key"),
]  # fmt: skip


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory outside the repository, with its own captures folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_CAPTURES", str(tmp_path / "captures"))
    return tmp_path


def test_the_base_scenario_is_valid(outside: Path) -> None:
    f = outside / "base.yaml"
    f.write_text(BASE)
    assert main(["validate", str(f)]) == 0


def test_a_cell_may_supply_what_a_check_needs(outside: Path) -> None:
    f = outside / "cell.yaml"
    f.write_text(
        BASE.replace(
            "  - peer_received_tone:",
            "  - restart_media_stop: {cell: x, cells: {x: {sender: bob}}}\n  - peer_received_tone:",
        )
    )
    assert main(["validate", str(f)]) == 0


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_mistake_names_file_line_key_and_starts_nothing(
    outside: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    line: int,
    key: str,
    fragment: str,
) -> None:
    assert old in BASE
    f = outside / "bad.yaml"
    f.write_text(BASE.replace(old, new, 1))
    where = f"{f}:{line}: {key}:" if key else f"{f}:{line}:"
    for cmd in (["validate", str(f)], ["run", str(f), "--no-report"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.replace("\n", "")
        assert where in err and fragment in err, err
    assert not (outside / "captures").exists()  # no run directory: no lab was made
    assert [s.name for s in all_states() if s.owner_pid == os.getpid()] == []


@pytest.mark.parametrize(
    ("option", "kind", "says"),
    [
        ("--report", "file", "not a directory"),
        ("--alluredir", "file", "not a directory"),
        ("--out", "file", "not a directory"),
        ("--junit", "dir", "a directory, not a file"),
        ("--json", "dir", "a directory, not a file"),
    ],
)
def test_an_output_of_the_wrong_kind_starts_nothing(
    outside: Path, capsys: pytest.CaptureFixture[str], option: str, kind: str, says: str
) -> None:
    """Results cannot go where a file (or a directory) already is: said before any lab,
    not after the runs (--report raised FileExistsError once every scenario had run)."""
    f = outside / "base.yaml"
    f.write_text(BASE)
    there = outside / "taken"
    there.mkdir() if kind == "dir" else there.write_text("x")
    assert main(["run", str(f), option, str(there)]) == 2
    assert f"{option} {there}: {says}" in capsys.readouterr().err
    assert not (outside / "captures").exists()
    assert [s.name for s in all_states() if s.owner_pid == os.getpid()] == []


def _matrix(values: str) -> str:
    return (
        "name: m-${n}\ntopology: open-internet\ndescription: ${text}\n"
        f"matrix:\n  cell:\n{values}"
        "peers:\n  a: {kind: aiortc, node: peer-a}\n  b: {kind: aiortc, node: peer-b}\n"
        'steps:\n  - call: {caller: a, callee: b, timeout: "${t}"}\n  - ${extra}\n'
    )


def test_matrix_values_are_yaml_values_not_text(outside: Path) -> None:
    f = outside / "m.yaml"
    f.write_text(
        _matrix(
            '    - {n: one, text: "a # not a comment: still text", t: 15, extra: {wait: {seconds: 1}}}\n'
            "    - {n: two, text: '[not, a, list]', t: 2.5, extra: {hangup: {peer: a}}}\n"
        )
    )
    one, two = load_scenarios(f)
    assert one.spec.description == "a # not a comment: still text"
    assert two.spec.description == "[not, a, list]"
    assert one.steps[0].action.timeout == 15 and two.steps[0].action.timeout == 2.5
    assert one.steps[1].kind == "wait" and two.steps[1].kind == "hangup"
    assert two.steps[1].line == 13  # the line of `- ${extra}` in the file


def test_matrix_unknown_variable_and_bad_value_name_the_line(outside: Path) -> None:
    f = outside / "m.yaml"
    f.write_text(_matrix("    - {n: one, text: x, t: 15}\n"))
    with pytest.raises(ConfigError) as info:
        load_scenarios(f)
    assert (info.value.line, info.value.key) == (12, "extra")
    f.write_text(_matrix("    - {n: one, text: x, t: soon, extra: {wait: {seconds: 1}}}\n"))
    with pytest.raises(ConfigError) as info:
        load_scenarios(f)
    assert (info.value.line, info.value.key) == (11, "steps[0].call.timeout")


def test_yaml_1_1_booleans_stay_strings(outside: Path) -> None:
    text = BASE.replace(
        "links:\n", "conditions:\n  - {on: {step: 1}, link: peer-a.eth0, blackout: 1}\nlinks:\n"
    ).replace("state: up}", "state: up, signal: yes}")
    sc = parse_scenario(text, outside / "s.yaml")
    assert sc.spec.conditions[0].on is not None and sc.spec.conditions[0].on.step == 1
    assert sc.steps[1].action.signal is True  # boolean fields still take yes/no
    assert sc.source.data["steps"][1]["interface"]["signal"] == "yes"


def test_shipped_scenarios_are_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "scenarios").glob("*/*.yaml"))
    assert files
    for f in files:
        assert load_scenarios(f)


def test_matrix_expands_and_names_each_combination() -> None:
    root = Path(__file__).resolve().parents[2]
    scenarios = load_scenarios(root / "scenarios/p2p/calls.yaml")
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names)) == 9 * 8  # 3 x 3 stacks on the 8 shipped topologies
    assert "p2p-aiortc-chromium-udp-blocked" in names
    sc = next(s for s in scenarios if s.name == "p2p-chromium-chromium-symmetric")
    assert sc.spec.peers["alice"].kind == "chromium" and sc.topology.name == "symmetric"


RUNNER_HERE = Path(__file__).resolve().parents[2] / "scenarios/test-inline.yaml"
RUNNER_BASE = """\
name: t
topology: open-internet
components:
  turn: {kind: coturn, node: server}
peers:
  alice: {kind: aiortc, node: peer-a, ice_servers: [turn]}
  bob: {kind: aiortc, node: peer-b, ice_servers: [turn]}
steps:
  - call: {caller: alice, callee: bob, timeout: 15}
"""


def test_unknown_peer_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(
            RUNNER_BASE.replace("kind: aiortc, node: peer-b", "kind: safari, node: peer-b"),
            RUNNER_HERE,
        )
    assert info.value.line == 7 and info.value.key == "peers.bob.kind"
    assert "unknown peer kind 'safari'" in info.value.message


def test_unknown_step_node_and_component_are_config_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"test-inline.yaml:9: steps\[0\].dial: unknown step 'dial'"
    ):
        parse_scenario(RUNNER_BASE.replace("- call:", "- dial:"), RUNNER_HERE)
    with pytest.raises(ConfigError, match="no node 'peer-z'"):
        parse_scenario(RUNNER_BASE.replace("node: peer-b", "node: peer-z"), RUNNER_HERE)
    with pytest.raises(ConfigError, match="no peer 'carol'"):
        parse_scenario(RUNNER_BASE.replace("callee: bob", "callee: carol"), RUNNER_HERE)
    with pytest.raises(ConfigError, match=r"components.turn.kind: unknown component kind"):
        parse_scenario(RUNNER_BASE.replace("kind: coturn", "kind: stund"), RUNNER_HERE)


def test_an_odd_top_level_key_is_a_clear_error(outside: Path) -> None:
    """Found by bench_reliability fuzz-yaml (seed 2): a key with `[` in it crashed the report."""
    f = outside / "t.yaml"
    f.write_text(":[name: x\nnetworks:\n  internet: {subnet: 198.18.0.0/24}\n")
    with pytest.raises(ConfigError) as info:
        main_load(f)
    assert info.value.line == 1


def main_load(f: Path) -> object:
    from harness.config.loader import load_any

    return load_any(f)


def test_a_choice_takes_its_values_not_their_lookalikes() -> None:
    yes_no = YES_NO_EITHER
    assert yes_no.allows(True) and yes_no.allows(False) and yes_no.allows("either")
    assert not yes_no.allows(1) and not yes_no.allows("true") and not yes_no.allows([True])
    types = Choice(("host", "relay"), many=True)
    assert types.allows("relay") and types.allows(["host", "relay"])
    assert not types.allows([]) and not types.allows(["relay", "srflx"])
    assert str(types) == "one of host, relay (or a list of them)"
    prefix = ADDRESS_PREFIX
    assert prefix.allows("198.18.0.11") and prefix.allows("[2001:db8::1]:5000")
    assert prefix.allows("198.18.") and not prefix.allows("alice") and not prefix.allows("")
    methods = STUN_METHODS  # named, or unnamed as the analyser writes them
    assert methods.allows("Allocate") and methods.allows("0x00d")
    assert not methods.allows("allocate") and not methods.allows("0x00D1")
