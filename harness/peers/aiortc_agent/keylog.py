"""aiortc's DTLS secrets in an NSS key log, so `harness analyze` can open its data channels.

aiortc makes one pyOpenSSL context per DTLS transport (RTCCertificate.
_create_ssl_context) and exposes no hook; OpenSSL's SSL_CTX_set_keylog_callback
(pyOpenSSL's Context.set_keylog_callback) hands every session's secrets over as
the SSLKEYLOGFILE lines browsers write (CLIENT_RANDOM for DTLS 1.2). The agent
wraps that factory once and appends the lines to keylog.txt in its work directory,
where the run report and `harness analyze --keylog` look for key logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiortc.rtcdtlstransport import RTCCertificate

_installed: list[Path] = []


def install(path: Path) -> None:
    """Log the secrets of every DTLS context aiortc creates from now on to `path`."""
    if _installed:
        _installed[0] = path
        return
    _installed.append(path)
    make = RTCCertificate._create_ssl_context

    def logging_context(self: RTCCertificate, *args: Any, **kwargs: Any) -> Any:
        ctx = make(self, *args, **kwargs)
        ctx.set_keylog_callback(_write)
        return ctx

    RTCCertificate._create_ssl_context = logging_context  # type: ignore[method-assign]


def _write(_conn: Any, line: bytes) -> None:
    with _installed[0].open("ab") as f:
        f.write(line + b"\n")
