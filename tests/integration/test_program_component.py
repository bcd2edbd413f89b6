"""The generic `process` component: a real program the harness has no adapter for, its
files rendered from templates with the lab's facts, its ports and its ready probes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from harness.components.coturn import Coturn
from harness.components.ports import check_port_clashes
from harness.components.program import Container, Program
from harness.errors import ComponentError
from harness.lab import Lab

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
PY = sys.executable
TEMPLATE = """server {{ components.turn.address }} user {{ components.turn.turn.username }}
me {{ me.address }} on {{ me.node }}; peer-a is {{ nodes['peer-a'].address }}
"""
# A UDP echo server, as a stand-in for any UDP program (binds, then logs a line).
UDP_ECHO = (
    "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.bind((sys.argv[1],int(sys.argv[2]))); print('echo ready',flush=True)\n"
    "while True:\n d,a=s.recvfrom(2048); s.sendto(d,a)"
)


def _start(lab: Lab, comps: list, tmp: Path) -> None:
    check_port_clashes(comps)
    everyone = {c.name: c for c in comps}
    for c in comps:
        c.bind(everyone, tmp)
        c.start(lab)


@pytest.mark.lab
def test_http_server_with_rendered_file_and_udp_echo(tmp_path: Path) -> None:
    (tmp_path / "page.j2").write_text(TEMPLATE)
    web = Program(
        "web",
        "server",
        {
            "command": [PY, "-m", "http.server", "--bind", "{{ me.address }}", "8080"],
            "files": {"page.txt": {"template": "page.j2"}},
            "ports": ["tcp/8080"],
            "ready": {"http": "8080/page.txt", "status": 200},
            "version": {"command": [PY, "--version"], "pattern": r"Python (\S+)"},
        },
    )
    echo = Program(
        "echo",
        "server",
        {
            "command": [PY, "-c", UDP_ECHO, "{{ me.address }}", "7000"],
            "ports": ["udp/7000"],
            "ready": {"udp": 7000},
        },
    )
    turn = Coturn("turn", "server", {"port": 3479, "relay_ports": "49200-49209"})
    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        _start(lab, [turn, web, echo], tmp_path)
        got = lab.run(
            "peer-a",
            [
                PY,
                "-c",
                "import urllib.request as u;print(u.urlopen('http://198.18.0.12:8080/page.txt').read().decode())",
            ],
        ).stdout
        assert got.splitlines()[:2] == [
            "server 198.18.0.12 user harness",
            "me 198.18.0.12 on server; peer-a is 198.18.0.10",
        ]
        reply = lab.run(
            "peer-a",
            [
                PY,
                "-c",
                "import socket;s=socket.socket(2,2);s.settimeout(2);"
                "s.sendto(b'ping',('198.18.0.12',7000));print(s.recv(9).decode())",
            ],
        ).stdout.strip()
        assert reply == "ping"
        assert (
            web.program_version()
            == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
        )
        for c in (echo, web, turn):
            c.stop()


@pytest.mark.lab
def test_log_probe_and_early_exit_and_bad_template(tmp_path: Path) -> None:
    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        t0 = time.monotonic()
        slow = Program(
            "slow",
            "peer-b",
            {
                "command": ["sh", "-c", "sleep 0.3; echo listening now; sleep 30"],
                "ready": {"log": "^listening"},
            },
        )
        _start(lab, [slow], tmp_path)
        assert time.monotonic() - t0 >= 0.3
        slow.stop()

        dead = Program(
            "dead",
            "peer-b",
            {"command": ["sh", "-c", "echo cannot open config >&2; exit 3"], "ready": {"tcp": 9}},
        )
        with pytest.raises(ComponentError) as err:
            _start(lab, [dead], tmp_path)
        assert "exited with status 3 before it was ready" in str(err.value)
        assert "cannot open config" in str(err.value)

        bad = Program(
            "bad",
            "peer-b",
            {
                "command": ["true"],
                "files": {"x.conf": {"text": "a {{ components.pbx.address }}"}},
                "ready": {"tcp": 9},
            },
        )
        with pytest.raises(
            ComponentError, match=r"bad: files.x.conf: 'dict object' has no attribute 'pbx'"
        ):
            _start(lab, [bad], tmp_path)


@pytest.mark.lab
def test_port_in_use_in_the_node_is_found_before_start(tmp_path: Path) -> None:
    with Lab(TOPOLOGIES / "open-internet.yaml") as lab:
        squatter = lab.spawn("server", [PY, "-c", UDP_ECHO, "0.0.0.0", "5062"], name="squatter")
        deadline = time.monotonic() + 5
        while "echo ready" not in squatter.log_tail() and time.monotonic() < deadline:
            time.sleep(0.02)
        late = Program(
            "late",
            "server",
            {"command": ["sleep", "30"], "ports": ["udp/5062"], "ready": {"udp": 5062}},
        )
        with pytest.raises(
            ComponentError, match=r"late: ports already in use on node 'server': udp \*:5062"
        ):
            _start(lab, [late], tmp_path)
        assert late.proc is None  # nothing was started


def test_bad_options_name_the_key() -> None:
    with pytest.raises(ComponentError, match="give exactly one of tcp, udp, http, log"):
        Program("p", "server", {"command": ["x"], "ready": {"tcp": 1, "udp": 2}})
    with pytest.raises(ComponentError, match="is not PROTO/PORT"):
        Program("p", "server", {"command": ["x"], "ports": ["sctp/1"], "ready": {"tcp": 1}})
    with pytest.raises(ComponentError, match="live in its work directory"):
        Program(
            "p",
            "server",
            {"command": ["x"], "files": {"/etc/x": {"text": ""}}, "ready": {"tcp": 1}},
        )
    with pytest.raises(ComponentError, match="pbx: a container component needs `image:`"):
        Container("pbx", "server", {"command": ["x"], "ready": {"tcp": 1}})
    a = Program(
        "a", "server", {"command": ["x"], "ports": ["udp/10000-10010"], "ready": {"udp": 10000}}
    )
    b = Program("b", "server", {"command": ["x"], "ports": ["udp/10010"], "ready": {"udp": 10010}})
    with pytest.raises(ComponentError, match="b: port clash on node 'server'"):
        check_port_clashes([a, b])
