"""Engine choice and the doctor line (the netem probe uses a scratch namespace)."""

import os
import subprocess

import pytest

from harness.conditions.control import EngineError
from harness.conditions.engines import choose_engine, describe, kernel_has_netem
from harness.conditions.model import LinkSpec

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def test_auto_is_the_relay_and_netem_fails_loudly() -> None:
    assert choose_engine(LinkSpec()) == "relay"
    with pytest.raises(EngineError, match="netem is not implemented"):
        choose_engine(LinkSpec(engine="netem"))


def test_doctor_line_matches_the_kernel() -> None:
    line = describe()
    assert "relay" in line
    assert ("kernel netem present" in line) == kernel_has_netem()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"tcnd-probe-{os.getpid()}" not in left
