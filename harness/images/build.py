"""Build images without a registry: debootstrap a Debian base, `docker import` it, then
build each kind's Dockerfile on it. A content hash label makes rebuilds incremental."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UnsupportedError
from harness.images.catalog import KINDS, MIRROR, ImageError, Kind, base_name, image_name

#: The label that holds what an image was built from; equal label = nothing to do.
HASH_LABEL = "org.rtc-harness.source-hash"
#: Bump when the base recipe below changes (that rebuilds every image).
BASE_RECIPE = "debootstrap-minbase-v2"
#: Written into the base: old mirror Release files, no recommends, no docs.
BASE_FILES = {
    "etc/apt/apt.conf.d/90rtc-harness": (
        'Acquire::Check-Valid-Until "false";\n'
        'APT::Install-Recommends "false";\n'
        'APT::Install-Suggests "false";\n'
    ),
    "etc/dpkg/dpkg.cfg.d/90rtc-harness-nodoc": (
        "path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\n"
        "path-exclude /usr/share/info/*\n"
    ),
}
TAIL = 25


def sources(suite: str) -> str:
    """A released suite gets its updates and security fixes, as a Debian host has them."""
    lines = [f"deb {MIRROR} {suite} main"]
    if suite != "sid":
        lines += [
            f"deb {MIRROR} {suite}-updates main",
            f"deb {MIRROR.replace('/debian', '/debian-security')} {suite}-security main",
        ]
    return "\n".join(lines) + "\n"


#: Seconds of a long build step after which its latest output line is shown.
HEARTBEAT = 10.0
#: debootstrap lines worth showing as progress (not one per package).
DEBOOTSTRAP_PHASES = (
    "I: Retrieving Packages",
    "I: Installing core",
    "I: Unpacking required",
    "I: Configuring required",
    "I: Unpacking the base",
    "I: Configuring the base",
    "I: Base system",
)

Progress = Callable[[str], None]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Built:
    """What happened to one image: built (with seconds), or already up to date."""

    name: str
    action: str  # "built" | "up to date"
    seconds: float
    size_mb: float


def _client() -> Any:
    """The engine's client (with a long timeout: builds take minutes); no engine is an
    error here, with the way to start one."""
    from harness.runtime import engine

    try:
        engine.client()
    except UnsupportedError as exc:
        raise ImageError(f"{exc.reason}; fix: {exc.fix}") from None
    import docker

    return docker.from_env(timeout=600)


def _label(client: Any, name: str) -> str | None:
    """The source hash of a local image, None when there is no such image."""
    import docker

    try:
        img = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    return (img.labels or {}).get(HASH_LABEL, "")


def context_hash(context: Path, *extra: str) -> str:
    """sha256 over every file of a build context (names and bytes) plus `extra`."""
    h = hashlib.sha256()
    for part in extra:
        h.update(part.encode() + b"\0")
    for f in sorted(p for p in context.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(context)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


class Builder:
    """Builds base and kind images for a set of suites, reporting progress as it goes."""

    def __init__(self, progress: Progress = print, *, force: bool = False) -> None:
        self.client = _client()
        self.progress = progress
        self.force = force

    def wanted(self, kind: str, suite: str, spec: Kind | None = None) -> str:
        """The source hash an up-to-date image carries ("" when its base is missing)."""
        if kind == "base":
            return hashlib.sha256(f"{BASE_RECIPE} {suite} {MIRROR}".encode()).hexdigest()[:16]
        base = _label(self.client, base_name(suite))
        if base is None:
            return ""
        base_id = self.client.images.get(base_name(suite)).id
        return context_hash((spec or KINDS[kind]).context, suite, base_id)

    # ---------------------------------------------------------------- base

    def base(self, suite: str) -> Built:
        name = base_name(suite)
        want = self.wanted("base", suite)
        if not self.force and _label(self.client, name) == want:
            return self._done(name, "up to date", 0.0)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"rh-base-{suite}-", dir="/var/tmp") as tmp:
            root = Path(tmp, "root")
            self.progress(f"{name}: debootstrap --variant=minbase {suite} (about 30 s)")
            self._debootstrap(suite, root)
            for rel, text in {**BASE_FILES, "etc/apt/sources.list": sources(suite)}.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
            self.progress(f"{name}: docker import")
            tar = Path(tmp, "root.tar")
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(root), "-cf", str(tar), "."], check=True
            )
            changes = [
                f"LABEL {HASH_LABEL}={want}",
                "ENV DEBIAN_FRONTEND=noninteractive",
                'CMD ["/bin/bash"]',
            ]
            self.client.api.import_image_from_file(
                str(tar), repository=name.split(":")[0], tag=suite, changes=changes
            )
        return self._done(name, "built", time.monotonic() - t0)

    def _debootstrap(self, suite: str, root: Path) -> None:
        argv = ["debootstrap", "--variant=minbase", suite, str(root), MIRROR]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: deque[str] = deque(maxlen=TAIL)
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            if line.startswith(DEBOOTSTRAP_PHASES):
                self.progress(f"  {line.strip()}")
        if proc.wait() != 0:
            raise ImageError(
                f"debootstrap {suite} failed (exit {proc.returncode}):\n" + "\n".join(tail)
            )
        for junk in ("var/cache/apt", "var/lib/apt/lists"):
            subprocess.run(
                ["find", str(root / junk), "-mindepth", "1", "-type", "f", "-delete"], check=True
            )

    # ---------------------------------------------------------------- kinds

    def kind(self, kind: str, suite: str, spec: Kind | None = None) -> Built:
        """Build `rtc-harness/<kind>:<suite>` unless its Dockerfile, context and base
        are what the existing image was built from."""
        spec = spec or KINDS[kind]
        dockerfile = spec.context / "Dockerfile"
        if not dockerfile.is_file():
            raise ImageError(f"{kind}: no Dockerfile at {dockerfile}")
        want = self.wanted(kind, suite, spec)
        name = image_name(kind, suite)
        if not self.force and _label(self.client, name) == want:
            return self._done(name, "up to date", 0.0)
        t0 = time.monotonic()
        tail: deque[str] = deque(maxlen=TAIL)
        stream = self.client.api.build(
            fileobj=_context_tar(spec.context),
            custom_context=True,
            tag=name,
            buildargs={"SUITE": suite},
            labels={HASH_LABEL: want, "org.rtc-harness.kind": kind},
            rm=True,
            forcerm=True,
            decode=True,
        )
        last = time.monotonic()
        for chunk in stream:
            if "error" in chunk:
                raise ImageError(
                    f"{name}: build of {dockerfile} failed: {ANSI.sub('', chunk['error']).strip()}\n"
                    + "--- build output tail ---\n"
                    + "\n".join(tail)
                )
            for line in ANSI.sub("", chunk.get("stream", "")).splitlines():
                tail.append(line)
                quiet = time.monotonic() - last
                if line.startswith("Step ") or (quiet > HEARTBEAT and line.strip()):
                    self.progress(f"  {name}: {line.strip()[:100]}")
                    last = time.monotonic()
        return self._done(name, "built", time.monotonic() - t0)

    def _done(self, name: str, action: str, seconds: float) -> Built:
        size = self.client.images.get(name).attrs.get("Size", 0) / 1e6
        built = Built(name, action, seconds, size)
        self.progress(f"{name}: {action}" + (f" in {seconds:.1f} s" if seconds else ""))
        return built


#: The host's trusted CAs (a TLS-inspecting proxy's too): pip in a build trusts what the
#: host's pip trusts. Added to every context as `host-ca.crt`, not hashed (host-specific).
HOST_CA = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))


def _context_tar(context: Path) -> io.BytesIO:
    """The build context as a tar, plus `host-ca.crt`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(p for p in context.rglob("*") if p.is_file()):
            tar.add(f, arcname=str(f.relative_to(context)))
        data = HOST_CA.read_bytes() if HOST_CA.is_file() else b""
        info = tarfile.TarInfo("host-ca.crt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build(
    pairs: list[tuple[str, str]], progress: Progress = print, *, force: bool = False
) -> tuple[list[Built], list[ImageError]]:
    """Build the bases the pairs need, then the pairs. A failed image does not stop the
    others (except what needs a missing base); every failure is returned."""
    b = Builder(progress, force=force)
    done: list[Built] = []
    failed: list[ImageError] = []
    bases: set[str] = set()
    for suite in dict.fromkeys(s for _, s in pairs):
        try:
            done.append(b.base(suite))
            bases.add(suite)
        except ImageError as exc:
            progress(f"[red]{exc}[/]")
            failed.append(exc)
    for kind, suite in pairs:
        if suite not in bases:
            continue
        try:
            done.append(b.kind(kind, suite))
        except ImageError as exc:
            progress(f"[red]{exc}[/]")
            failed.append(exc)
    return done, failed
