"""Small helpers for network namespaces: run code inside one from a thread.

Python 3.11 has no os.setns, so we call libc. setns() switches only the calling
thread, so work for one namespace runs on its own short-lived thread; processes
forked from that thread start inside the namespace too. That saves one
`ip netns exec` process per command, which dominates bring-up time. Namespaces
are made and deleted here too, as `ip netns add/del` does (unshare, bind mount,
unmount), and found by the processes in them as `ip netns pids` does.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)


def netns_path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def _setns(name: str) -> None:
    fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_fd(fd, name)
    finally:
        os.close(fd)


def setns_fd(fd: int, what: str = "") -> None:
    """Move the calling thread into the network namespace open as `fd`."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns({what or fd}): {os.strerror(err)}")


_MS_BIND, _MS_REC, _MS_SHARED, _MNT_DETACH = 0x1000, 0x4000, 0x100000, 2
_netns_dir_ready = False
_netns_dir_lock = threading.Lock()


def _mount(source: str, target: str, flags: int) -> None:
    if _libc.mount(source.encode(), target.encode(), b"none", flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _prepare_netns_dir() -> None:
    """What `ip netns add` does first: make NETNS_DIR a shared mount point, so the
    namespaces bound in it are seen by every mount namespace (as `ip` expects)."""
    global _netns_dir_ready
    with _netns_dir_lock:  # the first namespaces of a lab are made at once
        if _netns_dir_ready:
            return
        os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
        try:
            _mount("", NETNS_DIR, _MS_SHARED | _MS_REC)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
                raise
            _mount(NETNS_DIR, NETNS_DIR, _MS_BIND | _MS_REC)
            _mount("", NETNS_DIR, _MS_SHARED | _MS_REC)
        _netns_dir_ready = True


def create_netns(name: str) -> None:
    """`ip netns add NAME`, in process: the calling thread moves into a new network
    namespace, which a bind mount on NETNS_DIR/NAME keeps alive after the thread ends."""
    _prepare_netns_dir()
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET) for {name}: {os.strerror(err)}")
        _mount("/proc/thread-self/ns/net", path, _MS_BIND)
    except BaseException:
        os.unlink(path)
        raise


def delete_netns(name: str) -> None:
    """`ip netns del NAME`: the namespace goes once nothing else holds it."""
    path = netns_path(name)
    if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not mounted (half made)
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
    os.unlink(path)


def run_in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a new thread that has entered namespace `name`."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            _setns(name)
            box["result"] = fn()
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=target, name=f"netns-{name}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def parallel(jobs: Iterable[Callable[[], T]], workers: int = 8) -> list[T]:
    """Run jobs concurrently (each usually a run_in_netns); first error wins."""
    jobs = list(jobs)
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return [f.result() for f in [pool.submit(j) for j in jobs]]


def write_sysctls(values: dict[str, str]) -> None:
    """Write sysctls of the calling thread's network namespace."""
    for key, value in values.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except FileNotFoundError:
            raise OSError(f"sysctl {key} does not exist on this kernel") from None


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def netns_pids(*names: str) -> list[int]:
    """`ip netns pids NAME...`: processes whose network namespace is one of these."""
    wanted = set()
    for name in names:
        with contextlib.suppress(OSError):
            st = os.stat(netns_path(name))
            wanted.add((st.st_dev, st.st_ino))
    pids = []
    for entry in os.listdir("/proc") if wanted else []:
        if entry.isdigit():
            try:
                st = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue  # gone meanwhile, or a kernel thread
            if (st.st_dev, st.st_ino) in wanted:
                pids.append(int(entry))
    return pids
