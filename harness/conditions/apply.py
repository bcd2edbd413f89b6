"""Attach conditions to a lab link and change them while the lab runs."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.conditions.control import ControlClient, EngineError
from harness.conditions.model import PERFECT, Fault, LinkConditions, LinkSpec, conditions_from
from harness.runtime.base import LinkRef, NodeProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 5.0
Direction = str  # "up" | "down" | "both"


@dataclass
class LinkShaper:
    """A running engine on one link. Methods take `at` (wall-clock seconds, time.time())
    to make the engine apply a change at that instant rather than when the call arrives."""

    link: LinkRef
    engine: str
    seed: int
    up: LinkConditions
    down: LinkConditions
    process: NodeProcess
    client: ControlClient
    record_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    current: tuple[LinkConditions, LinkConditions] = (PERFECT, PERFECT)
    """Conditions after the last `set` (what a ramp starts from)."""

    def __post_init__(self) -> None:
        self.current = (self.up, self.down)

    def set(
        self,
        spec: LinkSpec | str | dict[str, Any] | None = None,
        *,
        up: LinkConditions | None = None,
        down: LinkConditions | None = None,
        at: float | None = None,
    ) -> int:
        """New conditions (a profile name, a LinkSpec, or explicit up/down). Returns the
        wall-clock ns the engine applied (or will apply) them."""
        if spec is not None:
            up, down = conditions_from(spec)
        self.current = (up or self.current[0], down or self.current[1])
        return self._send(
            "set",
            at,
            up=up.model_dump() if up else None,
            down=down.model_dump() if down else None,
        )

    def blackout(
        self, seconds: float, direction: Direction = "both", at: float | None = None
    ) -> int:
        """Drop everything for `seconds`; the engine ends it by itself."""
        return self._send("blackout", at, seconds=seconds, direction=direction)

    def restore(self, at: float | None = None) -> int:
        """Back to the conditions the link was shaped with; ends any blackout."""
        t = self._send("restore", at)
        self.set(up=self.up, down=self.down, at=at)
        return t

    def fault(self, fault: Fault | dict[str, Any], at: float | None = None) -> int:
        f = fault if isinstance(fault, Fault) else Fault.model_validate(fault)
        return self._send("fault", at, fault=f.model_dump())

    def clear_faults(self, at: float | None = None) -> int:
        return self._send("clear_faults", at)

    def stats(self) -> dict[str, Any]:
        return self._request("stats")

    def check_alive(self) -> None:
        """Raise EngineError if the engine process died (the link is then dark, not open)."""
        if not self.process.alive():
            raise EngineError(
                f"link engine for {self.link.node}.{self.link.iface} died "
                f"(exit {self.process.returncode}); log tail:\n{self.process.log_tail(20)}"
            )

    def record(self) -> dict[str, Any]:
        """What a run's results keep about this link: engine, seed, conditions, changes."""
        return {
            "link": f"{self.link.node}.{self.link.iface}",
            "engine": self.engine,
            "seed": self.seed,
            "up": self.up.model_dump(exclude_defaults=True),
            "down": self.down.model_dump(exclude_defaults=True),
            "changes": self.history,
        }

    def close(self) -> None:
        """Stop the engine (it gives the veth back to the bridge) and save the record."""
        self.record_path.write_text(json.dumps(self.record(), indent=2) + "\n")
        self.client.close()
        if self.process.alive():
            self.process.stop()

    def _send(self, op: str, at: float | None, **fields: Any) -> int:
        at_ns = int(at * 1e9) if at is not None else None
        reply = self._request(op, at=at_ns, **fields)
        applied = int(reply.get("applied", reply.get("scheduled", 0)))
        self.history.append({"op": op, "at_ns": applied, **fields})
        return applied

    def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        self.check_alive()
        try:
            return self.client.request(op, **fields)
        except EngineError:
            self.check_alive()
            raise


def shape_link(
    lab: Any,
    node: str,
    iface: str,
    spec: LinkSpec | str | dict[str, Any] | None = None,
    seed: int | None = None,
) -> LinkShaper:
    """Start the engine for `node.iface` with `spec` (default: a perfect link, ready to be
    changed). Seed: the spec's, else `seed`, else the lab's."""
    from harness.conditions.engines import choose_engine

    spec = spec if isinstance(spec, LinkSpec) else LinkSpec.model_validate(spec or {})
    up, down = spec.resolve()
    seed = next(s for s in (spec.seed, seed, getattr(lab, "seed", None), 0) if s is not None)
    engine = choose_engine(spec)
    link: LinkRef = lab.link(node, iface)
    name = f"link-{node}-{iface}"
    workdir: Path = lab.workdir(lab.SWITCH, name)
    ctl = workdir / "ctl.sock"
    argv = [
        sys.executable,
        "-m",
        "harness.conditions.relay",
        "--veth",
        link.ifname,
        "--ctl",
        str(ctl),
        "--seed",
        str(seed),
        "--up",
        up.model_dump_json(),
        "--down",
        down.model_dump_json(),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    proc = lab.spawn(lab.SWITCH, argv, name=name, env=env)
    client = ControlClient(ctl)
    try:
        client.connect(START_TIMEOUT, alive=proc.alive)
        client.request("ping")
    except EngineError as exc:
        proc.stop()
        raise EngineError(f"{node}.{iface}: {exc}\n{proc.log_tail(20)}") from None
    return LinkShaper(link, engine, seed, up, down, proc, client, workdir / "link.json")
