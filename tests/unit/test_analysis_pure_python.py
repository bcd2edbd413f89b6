"""Without its C extensions the analyser prints the same bytes as with them.

Each extension is compared with its Python version part by part elsewhere; this runs the
whole `harness analyze --json` twice on real captures, once as installed and once with
every `harness.analysis._*` extension made unimportable (as on a machine without a
compiler), and compares the output byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.analysis import (
    analyzer,
    cli,
    dtls,
    fastpath,
    framing,
    http,
    jsonout,
    net,
    pcapio,
    rtp,
    sdp,
    session,
    sip,
    stun,
    tcpstreams,
)

DATA = Path(__file__).resolve().parents[1] / "data"
EXTENSIONS = {
    "harness.analysis._pcapwalk": pcapio._pcapwalk,
    "harness.analysis._fastpath": fastpath._fastpath,
    "harness.analysis._netdecode": net._netdecode,
    "harness.analysis._stunparse": stun._stunparse,
    "harness.analysis._httpsplit": http._httpsplit,
    "harness.analysis._jsepscan": http._jsepscan,
    "harness.analysis._tcpwalk": tcpstreams._tcpwalk,
    "harness.analysis._sipparse": sip._sipparse,
    "harness.analysis._jsonindent": jsonout._jsonindent,
    "harness.analysis._dtlsscan": dtls._dtlsscan,
    "harness.analysis._sdpscan": sdp._sdpscan,
    "harness.analysis._walkloop": analyzer._walkloop,
    "harness.analysis._flows": analyzer._flows,
    "harness.analysis._iceloop": session._iceloop,
    "harness.analysis._rtpcount": rtp._rtpcount,
    "harness.analysis._hugearenas": cli._hugearenas,
    "harness.analysis._framesync": framing._framesync,
}
#: RTP and TURN (aiortc), SIP over TCP and fragmented UDP, TLS with a key log, Teams TURN,
#: classic STUN, STUN over TCP, VLAN HTTP, IPv6, pcapng with several interfaces
FILES = [
    "pcaps/aiortc-relayed.pcap",
    "pcaps/aiortc-datachannel-turn.pcap",
    "pcaps/janus-dtmf-sip.pcap",
    "pcaps/sipp-tcp.pcap",
    "pcaps/sipp-udp-fragmented.pcap",
    "pcaps/sip-tls12.pcap",
    "pcaps/sip-ws.pcap",
    "thirdparty/ndpi-teams-turn.pcap",
    "thirdparty/ndpi-stun_classic.pcap",
    "thirdparty/ndpi-stun_tcp_multiple_msgs_same_pkt.pcap",
    "thirdparty/zeek-http-vlan-0.pcap",
    "thirdparty/zeek-ipv6.pcap",
    "thirdparty/zeek-pcapng-multi-interface.pcapng",
]
BLOCKED = """
import sys
class NoExtensions:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("harness.analysis._"):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoExtensions())
from harness.cli import main
sys.argv[0] = "harness"
sys.exit(main())
"""
AS_INSTALLED = "import sys\nfrom harness.cli import main\nsys.exit(main())\n"


def analyze(program: str, path: Path) -> bytes:
    argv = [sys.executable, "-c", program, "analyze", "--json", str(path)]
    keys = path.with_suffix(".keys")
    argv += ["--keylog", str(keys)] if keys.is_file() else []
    done = subprocess.run(argv, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout


@pytest.mark.skipif(
    not any(EXTENSIONS.values()), reason="no C extension is built: nothing to compare"
)
@pytest.mark.parametrize("name", FILES)
def test_same_output_without_extensions(name: str) -> None:
    path = DATA / name
    compiled, pure = analyze(AS_INSTALLED, path), analyze(BLOCKED, path)
    assert b'"packets"' in compiled
    if compiled != pure:
        a, b = compiled.decode().splitlines(), pure.decode().splitlines()
        line = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        pytest.fail(
            f"{name}: output differs from line {line + 1} "
            f"(compiled: {a[line : line + 1]}, Python: {b[line : line + 1]})"
        )


def test_the_blocker_blocks() -> None:
    """The Python run really runs without the extensions (else the test compares nothing)."""
    program = BLOCKED.replace(
        "from harness.cli import main",
        "from harness.analysis import dtls, fastpath, http, jsonout, net, pcapio, sdp, sip, stun\n"
        "from harness.analysis import analyzer, cli, rtp, tcpstreams\n"
        "print(sum(m is not None for m in (pcapio._pcapwalk, fastpath._fastpath,"
        " net._netdecode, stun._stunparse, http._httpsplit, sip._sipparse,"
        " jsonout._jsonindent, dtls._dtlsscan, sdp._sdpscan, analyzer._walkloop,"
        " analyzer._flows, tcpstreams._tcpwalk, rtp._rtpcount, cli._hugearenas)))\n"
        "raise SystemExit(0)",
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
    assert done.stdout.strip() == b"0", done.stderr.decode(errors="replace")


@pytest.mark.skipif(
    not os.environ.get("RTC_HARNESS_REQUIRE_EXTENSIONS"),
    reason="only where the install had a compiler (ci/test.sh, after ci/setup.sh)",
)
def test_every_extension_is_built() -> None:
    """The C parts are optional to build, and their tests skip without them: where the set-up
    installed a compiler, a part that did not build is a failure, not a silent skip."""
    missing = sorted(name for name, module in EXTENSIONS.items() if module is None)
    assert not missing, f"not built: {missing} (`pip install -e .` compiles them; its log says why)"


def test_every_extension_is_blocked_and_compared() -> None:
    """A C part added to pyproject.toml must be in EXTENSIONS, so its fallback is compared."""
    project = tomllib.loads((DATA.parents[1] / "pyproject.toml").read_text())
    declared = {m["name"] for m in project["tool"]["setuptools"]["ext-modules"]}
    assert declared == set(EXTENSIONS), declared ^ set(EXTENSIONS)
