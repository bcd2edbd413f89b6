"""The Docker engine: one client per process, its absence as an "unsupported" reason,
images checked before anything starts, and the lab's containers found by label.

Every container the harness makes carries the label `org.rtc-harness.lab=<lab>`, so
tear-down and `harness lab gc` find them even after the owner was killed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import socket
import stat
import subprocess
import tarfile
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, UnsupportedError

if TYPE_CHECKING:
    import http.client

LAB_LABEL = "org.rtc-harness.lab"
NODE_LABEL = "org.rtc-harness.node"
ROLE_LABEL = "org.rtc-harness.role"  # "adapter" (holds a node's namespace) or "app"
ADAPTER_IMAGE = "rtc-harness/netns-adapter:1"
#: What the adapter image holds, copied from the host with their libraries (no registry).
ADAPTER_PROGRAMS = ("/usr/bin/nsenter", "/usr/bin/sleep")
ENGINE_FIX = "bash ci/setup.sh (installs docker.io and starts dockerd)"

_lock = threading.Lock()
_checked: dict[tuple[str, str], str | None] = {}


LOCAL_REPO = "rtc-harness"


def default_image(kind: str, suite: str) -> str:
    """The image `harness images build` makes for a kind: `rtc-harness/<kind>:<suite>`."""
    return f"{LOCAL_REPO}/{kind}:{suite}"


class ImageError(HarnessError):
    """An image is missing or cannot run the program a component needs."""


@functools.cache
def _client() -> Any:
    import docker  # the SDK; imported only when a container is wanted

    return docker.from_env(timeout=60)


def client() -> Any:
    """The engine's client; raises UnsupportedError when no engine answers."""
    try:
        import docker.errors
    except ImportError:  # pragma: no cover - a dependency of the harness
        raise UnsupportedError("the docker Python SDK is missing", fix="pip install -e .") from None
    try:
        c = _client()
        c.ping()
    except (docker.errors.DockerException, OSError) as exc:
        _client.cache_clear()
        raise UnsupportedError(
            f"no Docker engine answers ({str(exc).splitlines()[0][:160]})", fix=ENGINE_FIX
        ) from None
    return c


def engine_version() -> str | None:
    """The engine's version, or None when none runs (for `harness doctor`)."""
    try:
        return str(client().version().get("Version"))
    except UnsupportedError:
        return None


def ensure_image(image: str) -> None:
    """The image exists locally, or is pulled where a registry is reachable (never for
    `rtc-harness/...`: those are built here, by `harness images build`)."""
    import docker.errors

    c = client()
    try:
        c.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:  # e.g. an invalid reference
        raise ImageError(f"bad image name {image!r}: {exc.explanation or exc}") from None
    repo, _, tag = image.partition(":")
    if repo.startswith(f"{LOCAL_REPO}/"):
        raise ImageError(
            f"unknown image {image!r}: build it with "
            f"`harness images build {repo.split('/', 1)[1]} --suite {tag or 'bookworm'}`"
        )
    try:
        c.images.pull(image)
    except docker.errors.DockerException as exc:
        reason = str(getattr(exc, "explanation", None) or exc).splitlines()[0][:160]
        raise ImageError(
            f"unknown image {image!r}: not here and not pullable ({reason}); "
            "build or `docker load` it, or reach a registry"
        ) from None


def check_program(image: str, program: str) -> None:
    """Raise ImageError unless `program` is on the image's PATH (checked once per image)."""
    c = client()
    img = c.images.get(image)
    key = (img.id, program)
    if key not in _checked:
        found = _find_in_layers(img.attrs, program)
        if found is None:  # not overlay2: ask a throw-away container
            found = _find_by_running(c, image, program)
        _checked[key] = None if found else f"has no {program!r} on its PATH"
    error = _checked[key]
    if error:
        raise ImageError(f"image {image!r} {error}")


def _find_in_layers(attrs: dict[str, Any], program: str) -> bool | None:
    """Look for `program` in the image's overlay2 layers on the host (no container, ~1 ms);
    None where the storage is not overlay2 or not readable."""
    graph = attrs.get("GraphDriver") or {}
    data = graph.get("Data") or {}
    if graph.get("Name") != "overlay2" or not data.get("UpperDir"):
        return None
    layers = [data["UpperDir"], *filter(None, (data.get("LowerDir") or "").split(":"))]
    if not all(os.path.isdir(d) for d in layers):
        return None
    env = dict(e.split("=", 1) for e in (attrs.get("Config") or {}).get("Env") or [] if "=" in e)
    dirs = env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    candidates = [program] if "/" in program else [f"{d}/{program}" for d in dirs.split(":")]
    for cand in candidates:
        for layer in layers:  # top first: a whiteout hides what lies below
            path = layer + cand
            if os.path.lexists(path):
                st = os.lstat(path)
                if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0):
                    return True
                break
    # /bin, /sbin are symlinks into /usr on merged-/usr systems: the first pass found those
    return False


def _find_by_running(c: Any, image: str, program: str) -> bool:
    import docker.errors

    try:
        out = c.containers.run(
            image,
            [program],
            entrypoint=["sh", "-c", 'command -v "$0"'],
            network_mode="none",
            remove=True,
            labels={ROLE_LABEL: "check"},
        )
    except docker.errors.ContainerError:
        return False
    except docker.errors.APIError:
        return True  # no shell in the image: the start itself will tell
    return bool(out.strip())


def check_images(wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Check (image, program) pairs side by side; {pair: error message} for the bad ones."""
    client()  # no engine: one UnsupportedError, not one per image
    errors: dict[tuple[str, str], str] = {}

    def one(pair: tuple[str, str]) -> None:
        try:
            ensure_image(pair[0])
            if pair[1]:
                check_program(*pair)
        except ImageError as exc:
            errors[pair] = str(exc)

    pairs = list(dict.fromkeys(wanted))
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(pairs)))) as pool:
        list(pool.map(one, pairs))
    return errors


def ensure_adapter_image() -> str:
    """Build the tiny adapter image from the host's nsenter and sleep (once)."""
    import docker.errors

    c = client()
    with _lock:
        try:
            c.images.get(ADAPTER_IMAGE)
            return ADAPTER_IMAGE
        except docker.errors.ImageNotFound:
            pass
        repo, tag = ADAPTER_IMAGE.split(":")
        c.api.import_image_from_data(_adapter_tar(), repository=repo, tag=tag)
    return ADAPTER_IMAGE


def _adapter_tar() -> bytes:
    files: set[str] = set(ADAPTER_PROGRAMS)
    for prog in ADAPTER_PROGRAMS:
        out = subprocess.run(["ldd", prog], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            path = line.split("=>")[-1].split("(")[0].strip()
            if path.startswith("/"):
                files.add(path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(files):
            real = os.path.realpath(path)
            info = tar.gettarinfo(real, arcname=path.lstrip("/"))
            with open(real, "rb") as f:
                tar.addfile(info, f)
        for d in ("run/netns", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
    return buf.getvalue()


def _any_labelled(label: str) -> bool:
    """Whether any container carries `label`, asked over the engine's socket directly:
    tear-down of a lab without containers must not pay for importing the SDK."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote engine: ask through the SDK
    sock = host.removeprefix("unix://")
    if not os.path.exists(sock):
        return False
    query = urllib.parse.quote(json.dumps({"label": [label]}))
    conn = _unix_connection(sock)
    try:
        conn.request("GET", f"/containers/json?all=1&filters={query}")
        resp = conn.getresponse()
        return resp.status != 200 or bool(json.loads(resp.read() or b"[]"))
    except OSError:
        return False
    finally:
        conn.close()


def _unix_connection(path: str) -> http.client.HTTPConnection:
    """HTTP over the engine's socket (http.client loads here: `harness --help` skips it)."""
    import http.client

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(path)

    return UnixConnection("localhost", timeout=10)


def lab_containers(lab: str | None = None) -> list[Any]:
    """Containers of one lab (or of every lab), running or not; [] without an engine."""
    label = f"{LAB_LABEL}={lab}" if lab else LAB_LABEL
    if not _any_labelled(label):
        return []
    try:
        c = client()
    except UnsupportedError:
        return []
    # other labs' containers come and go meanwhile: the SDK inspects each listed one
    return list(c.containers.list(all=True, filters={"label": label}, ignore_removed=True))


def remove_containers(containers: list[Any]) -> list[str]:
    """Force-remove containers side by side (apps before adapters); their names."""
    import docker.errors

    def rm(cont: Any) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            cont.remove(force=True)

    names = []
    apps = [x for x in containers if x.labels.get(ROLE_LABEL) != "adapter"]
    for batch in (apps, [x for x in containers if x not in apps]):
        if batch:
            with ThreadPoolExecutor(max_workers=min(8, len(batch))) as pool:
                list(pool.map(rm, batch))
            names += [x.name for x in batch]
    return names


def remove_lab_containers(lab: str) -> list[str]:
    return remove_containers(lab_containers(lab))
