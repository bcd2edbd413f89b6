"""Which labs exist on this machine, who owns them, and cleaning up after crashes.

Each lab writes a state file before it creates anything, so `harness lab gc` can
tell a lab whose owner died (remove it) from one that is in use (leave it) and
from one started with `harness lab up` (kept until `lab down`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.runtime.base import SOCKET_DIR
from harness.runtime.engine import LAB_LABEL, lab_containers, remove_lab_containers
from harness.runtime.netns import destroy_lab_namespaces, lab_of_netns
from harness.runtime.nsutil import list_netns

STATE_DIR = Path(os.environ.get("HARNESS_STATE_DIR", "/run/rtc-harness/labs"))


@dataclass
class LabState:
    name: str
    runtime: str
    topology_file: str
    topology_text: str
    run_dir: str
    owner_pid: int
    owner_start: int
    detached: bool = False
    created: float = 0.0
    seed: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return STATE_DIR / f"{self.name}.json"

    def save(self, *, claim: bool = False) -> None:
        """Write the state whole (gc never reads half a file); with `claim`, only if no lab
        of this name exists: labs started at once by parallel runs never share a name."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = STATE_DIR / f".{self.name}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1))
        try:
            if claim:
                os.link(tmp, self.path)  # atomic, and fails if the name is taken
            else:
                tmp.replace(self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def owner_alive(self) -> bool:
        return process_start(self.owner_pid) == self.owner_start


def process_start(pid: int) -> int:
    """Start time of a process in clock ticks (0 if gone): tells pid reuse apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def load_state(name: str) -> LabState | None:
    path = STATE_DIR / f"{name}.json"
    try:
        return LabState(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def all_states() -> list[LabState]:
    if not STATE_DIR.exists():
        return []
    out = []
    for p in sorted(STATE_DIR.glob("*.json")):
        try:
            out.append(LabState(**json.loads(p.read_text())))
        except (OSError, ValueError, TypeError):
            p.unlink(missing_ok=True)
    return out


@dataclass
class GcReport:
    removed_labs: list[str] = field(default_factory=list)
    removed_namespaces: list[str] = field(default_factory=list)
    removed_containers: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def gc(everything: bool = False) -> GcReport:
    """Remove labs whose owner died, and namespaces no lab claims.

    Labs from `harness lab up` (detached) and labs of live processes are kept
    unless `everything` is set.
    """
    report = GcReport()
    # Namespaces and containers first, states second: a lab writes its state before its
    # first namespace or container, so everything seen here has its state on disk by the
    # time states are read. The other order destroyed labs that were coming up meanwhile
    # (a concurrent gc broke 11 of 20 lab lifetimes in a loop).
    namespaces = list_netns()
    containers = lab_containers()
    known: set[str] = set()
    # Namespaces and containers first, states second: a lab saves its state before it
    # makes either, so one born between the reads is known, never taken for an orphan.
    namespaces = list_netns()
    containers = lab_containers()
    for st in all_states():
        known.add(st.name)
        if not everything and (st.detached or st.owner_alive()):
            report.kept.append(st.name)
            continue
        report.removed_containers += remove_lab_containers(st.name)
        report.removed_namespaces += destroy_lab_namespaces(st.name)
        shutil.rmtree(SOCKET_DIR / st.name, ignore_errors=True)
        st.remove()
        report.removed_labs.append(st.name)
    orphans = {lab_of_netns(ns) for ns in namespaces} - known - {None}
    orphans |= {c.labels.get(LAB_LABEL) for c in containers} - known - {None}
    for lab in sorted(o for o in orphans if o):
        report.removed_containers += remove_lab_containers(lab)
        report.removed_namespaces += destroy_lab_namespaces(lab)
        shutil.rmtree(SOCKET_DIR / lab, ignore_errors=True)
        report.removed_labs.append(lab)
    return report
