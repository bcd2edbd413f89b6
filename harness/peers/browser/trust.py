"""Browsers trust the run's own CA (harness/components/pki.py), as a provisioned device would.

Both engines read trust anchors from an NSS database: Chromium on Linux from
$HOME/.pki/nssdb (the agent gives it a HOME of its own), Firefox from its profile.
`certutil` (libnss3-tools) adds the run's CA to that database before the launch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.components import pki


def run_ca(workdir: Path) -> Path | None:
    """The run's CA certificate, found above the agent's work directory (run_dir/pki/ca.pem)."""
    return pki.anchor_above(workdir)


def add_to_nssdb(db: Path, ca: Path) -> None:
    """Trust `ca` for TLS servers in the NSS database at `db` (created when missing)."""
    db.mkdir(parents=True, exist_ok=True)
    certutil = ["certutil", "-d", f"sql:{db}"]
    if not (db / "cert9.db").is_file():
        subprocess.run([*certutil, "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        [*certutil, "-A", "-n", "rtc-harness run CA", "-t", "C,,", "-i", str(ca)],
        check=True,
        capture_output=True,
        timeout=20,
    )
