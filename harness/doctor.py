"""`harness doctor`: what this machine can do, and how to fix what it can't.

Features that cannot work here are reported loudly, and the scenarios that need
them are skipped with the same reason, never faked.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

APT = "apt-get install -y"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    basic: bool = False  # the lab cannot work without it

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _run(argv: list[str], timeout: float = 10.0) -> tuple[int, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, "not found"
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    return p.returncode, (p.stdout + p.stderr).strip()


def _scratch(script: str) -> tuple[int, str]:
    """Try something in a throw-away network namespace, never in the host's."""
    return _run(["unshare", "--net", "sh", "-c", script])


def version(argv: list[str], pattern: str) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    _, out = _run(argv, timeout=5)
    m = re.search(pattern, out)
    return m.group(1) if m else out.splitlines()[0][:60] if out else "?"


COMPONENTS: list[tuple[str, str]] = [
    # version probe (harness/components/versions.py), Debian package
    ("tcpdump", "tcpdump"),
    ("tshark", "tshark"),
    ("conntrack", "conntrack"),
    ("coturn", "coturn"),
    ("janus", "janus"),
    ("kamailio", "kamailio kamailio-websocket-modules"),
    ("rtpengine", "rtpengine-daemon"),
    ("baresip", "baresip"),
    ("sipp", "sip-tester"),
    ("chromium", "chromium"),
    ("firefox", "firefox-esr"),
]


def checks() -> list[Check]:
    out: list[Check] = []
    root = os.geteuid() == 0
    out.append(
        Check("root", root, "running as root" if root else "not root", "run as root (sudo)", True)
    )
    ip = version(["ip", "-V"], r"iproute2-([\d.]+\d)")
    out.append(Check("iproute2", ip is not None, ip or "missing", f"{APT} iproute2", True))
    rc, msg = _scratch("ip link set lo up") if root else (1, "needs root")
    out.append(
        Check(
            "network namespaces",
            rc == 0,
            "ok" if rc == 0 else msg,
            "a kernel with CONFIG_NET_NS",
            True,
        )
    )
    nft = version(["nft", "--version"], r"nftables v(\S+)")
    rc, msg = _scratch("nft add table ip rh_doctor") if nft and root else (1, "nft missing")
    out.append(
        Check("nftables NAT", rc == 0, f"nft {nft}" if rc == 0 else msg, f"{APT} nftables", True)
    )
    from harness.conditions.engines import kernel_has_netem

    rc = 0 if root and kernel_has_netem() else 1
    out.append(
        Check(
            "kernel netem",
            rc == 0,
            "available: link conditions may use netem"
            if rc == 0
            else "not available: link conditions use the userspace engine",
            "" if rc == 0 else "optional: a kernel with CONFIG_NET_SCH_NETEM (sch_netem)",
        )
    )
    rc, msg = _scratch("iptables -A OUTPUT -p udp -j NFQUEUE --queue-num 7") if root else (1, "")
    out.append(
        Check(
            "NFQUEUE",
            rc == 0,
            "iptables -j NFQUEUE works" if rc == 0 else msg,
            f"{APT} iptables; kernel nfnetlink_queue",
        )
    )
    tun = os.path.exists("/dev/net/tun")
    out.append(Check("TUN/TAP", tun, "/dev/net/tun" if tun else "missing", "modprobe tun"))
    from harness.components.versions import host_version

    for name, pkg in COMPONENTS:
        v = host_version(name)
        out.append(
            Check(name, v is not None, v or "missing", f"{APT} {pkg}", basic=name == "tcpdump")
        )
    out.append(_docker_check())
    for pkg in ("aiortc", "aioice", "scapy", "playwright"):
        try:
            out.append(Check(f"python: {pkg}", True, importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            out.append(Check(f"python: {pkg}", False, "missing", "pip install -e ."))
    out += _engine_checks()
    return out


def _docker_check() -> Check:
    """The container runtime's engine: components and peers with `image:` need it."""
    from harness.runtime.engine import ENGINE_FIX, engine_version

    if shutil.which("dockerd") is None:
        return Check("docker engine", False, "docker.io is not installed", ENGINE_FIX)
    v = engine_version()
    if v is None:
        return Check(
            "docker engine",
            False,
            "installed but not running: scenarios with `image:` or --runtime docker are "
            "reported unsupported",
            ENGINE_FIX,
        )
    return Check("docker engine", True, f"dockerd {v} (container runtime available)")


def _engine_checks() -> list[Check]:
    """Which impairment engine links get (from harness.conditions, when present)."""
    try:
        from harness.conditions import engines
    except ImportError:
        return []
    describe = getattr(engines, "describe", None)
    if describe is None:
        return []
    return [Check("link conditions engine", True, str(describe()))]


def basics_ok(results: list[Check]) -> bool:
    return all(c.ok for c in results if c.basic)


def unsupported_scenarios(paths: list[Path]) -> list[dict[str, Any]]:
    """Per scenario that cannot run here: what it lacks and the fixes (harness/scenario/needs.py)."""
    from harness.config.scenario import load_scenarios
    from harness.errors import ConfigError
    from harness.scenario.needs import unsupported_reasons

    out: list[dict[str, Any]] = []
    for path in paths:
        try:
            scenarios = load_scenarios(path)
        except ConfigError:
            continue  # `harness validate` reports bad files
        for sc in scenarios:
            needs = unsupported_reasons(sc)
            if needs:
                out.append(
                    {
                        "scenario": sc.name,
                        "file": str(path),
                        "missing": [m for m, _ in needs],
                        "fix": sorted({f for _, f in needs if f}),
                    }
                )
    return out
