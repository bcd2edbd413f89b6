"""What a scenario needs from this machine, and what is missing for it.

A scenario whose needs are not met is never run half-way: its verdict is
"unsupported" with these reasons, and `harness doctor --scenarios` lists the
fixes that would turn it into a real run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.config.scenario import Scenario

Need = tuple[str, str]
"""(what is missing, how to get it)."""

PEER_NEEDS: dict[str, list[tuple[str, str, str]]] = {
    # peer kind -> (binary or python module, how to tell, fix)
    "aiortc": [("aiortc", "module", "pip install -e . (aiortc)")],
    "chromium": [
        ("chromium", "binary", "apt-get install -y chromium"),
        ("playwright", "module", "pip install -e . (playwright)"),
    ],
    "firefox": [("firefox-esr", "binary", "apt-get install -y firefox-esr")],
}


def _package_of(kind: str, binary: str) -> str:
    """The Debian package that brings a component kind's program (harness doctor's table)."""
    from harness.doctor import COMPONENTS

    return next((pkg for name, pkg in COMPONENTS if name == kind), binary)


def unsupported_reasons(scenario: Scenario) -> list[Need]:
    """Everything this machine lacks for `scenario` (empty: it can run here)."""
    from harness.components import COMPONENTS

    out: list[Need] = []
    if os.geteuid() != 0:
        out.append(("labs need root (network namespaces)", "run as root"))
    if shutil.which("ip") is None:
        out.append(("iproute2 is missing", "apt-get install -y iproute2"))
    if shutil.which("tcpdump") is None:
        out.append(("tcpdump is missing (captures)", "apt-get install -y tcpdump"))
    spec = scenario.spec
    for name, comp in spec.components.items():
        cls = COMPONENTS.get(comp.kind)
        binary = getattr(cls, "binary", "")
        if comp.image or spec.runtime != "process" or not binary:
            continue  # an image brings its own program (the runtime says if it can run here)
        if shutil.which(binary) is None:
            out.append(
                (
                    f"component {name} ({comp.kind}) needs {binary}, not installed",
                    f"apt-get install -y {_package_of(comp.kind, binary)}",
                )
            )
    local = {p.kind for p in spec.peers.values() if not p.image and spec.runtime == "process"}
    for kind in sorted(local):
        for what, how, fix in PEER_NEEDS.get(kind, []):
            present = (
                shutil.which(what) is not None
                if how == "binary"
                else importlib.util.find_spec(what) is not None
            )
            if not present:
                out.append((f"{kind} peers need {what}, not installed", fix))
    return list(dict.fromkeys(out))
