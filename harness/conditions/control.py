"""Client side of a relay's control socket: one JSON request, one JSON reply, per line."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


class EngineError(HarnessError):
    """A link engine died, refused a change, or did not start."""


class ControlClient:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._buf = b""

    def connect(self, timeout: float, alive: Any = None) -> None:
        """Retry until the relay listens; `alive()` lets a dead relay fail fast."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(5.0)
                sock.connect(str(self.path))
                self._sock = sock
                return
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if alive is not None and not alive():
                    raise EngineError(f"engine exited before listening on {self.path}") from None
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"engine did not listen on {self.path} in {timeout}s"
                    ) from None
                time.sleep(0.01)

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        if self._sock is None:
            raise EngineError("engine control is not connected")
        msg = {"op": op, **{k: v for k, v in fields.items() if v is not None}}
        try:
            self._sock.sendall(json.dumps(msg).encode() + b"\n")
            while b"\n" not in self._buf:
                data = self._sock.recv(65536)
                if not data:
                    raise EngineError(f"engine closed its control socket during {op!r}")
                self._buf += data
        except OSError as exc:
            raise EngineError(f"engine control failed during {op!r}: {exc}") from None
        line, _, self._buf = self._buf.partition(b"\n")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise EngineError(f"engine refused {op!r}: {reply.get('error')}")
        return reply

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
