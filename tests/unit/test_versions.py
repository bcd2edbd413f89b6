"""Versions are read from the programs themselves (harness/components/versions.py)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness.components.versions import PROBES, host_version

# What the programs printed here (Debian 12 packages and the sid image), verbatim.
OUTPUTS = {
    "janus": ("Janus version: 1102 (1.1.2)\nJanus commit: not-a-git-repo\n", "1.1.2"),
    "kamailio": ("version: kamailio 5.6.3 (x86_64/linux) \nflags: USE_TCP", "5.6.3"),
    "rtpengine": ("Version: 10.5.3.5-1+deb12u1\n", "10.5.3.5-1+deb12u1"),
    "coturn": ("4.6.1\n", "4.6.1"),
    "baresip": ("baresip v1.0.0 Copyright (C) 2010 - 2020 Alfred E. Heggestad", "1.0.0"),
    "sipp": ("\n SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.\n", "3.6.1"),
    "chromium": ("Chromium 156.0.8078.114 built on Debian GNU/Linux 12", "156.0.8078.114"),
    "asterisk": ("Asterisk 22.10.1+dfsg+~cs6.17.60671434-1\n", "22.10.1"),
}


@pytest.mark.parametrize("kind", sorted(OUTPUTS))
def test_parse_real_outputs(kind: str) -> None:
    text, want = OUTPUTS[kind]
    assert PROBES[kind].parse(text) == want


def test_unparseable_output_is_none() -> None:
    assert PROBES["janus"].parse("Unknown option --version\n") is None


# Independent oracle: the Debian package database of this machine.
PACKAGES = {"janus": "janus", "kamailio": "kamailio", "coturn": "coturn", "sipp": "sip-tester"}


@pytest.mark.parametrize("kind", sorted(PACKAGES))
def test_host_version_matches_the_installed_package(kind: str) -> None:
    if shutil.which("dpkg-query") is None or host_version(kind) is None:
        pytest.skip(f"{kind} is not installed here")
    pkg = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", PACKAGES[kind]], capture_output=True, text=True
    ).stdout
    upstream = pkg.split(":")[-1].split("-")[0].split("+")[0]
    assert host_version(kind) == upstream
