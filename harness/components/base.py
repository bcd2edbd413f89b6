"""What every component has in common: options, config, start, ready, stop, logs.

A component subclass says how to configure and start one program and how to tell
that it is ready; the base class runs it in a lab node and turns every failure
into a ComponentError that names the component and shows its log tail.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.components.versions import PROBES, VersionProbe, host_version, image_version
from harness.errors import ComponentError, LabError
from harness.lazy import LazyRegistry
from harness.logfinding import LogFinding

if TYPE_CHECKING:
    from harness.lab.lab import Lab
    from harness.runtime.base import NodeProcess

_C = "harness.components."
#: Every built-in component kind and the module that defines it (imported when used).
COMPONENT_MODULES: dict[str, str] = {
    "baresip": _C + "baresip",
    "coturn": _C + "coturn",
    "janus": _C + "janus",
    "kamailio": _C + "kamailio",
    "container": _C + "program",
    "process": _C + "program",
    "rtpengine": _C + "rtpengine",
    "sipp": _C + "sipp",
}
COMPONENTS: LazyRegistry[type[Component]] = LazyRegistry("component", COMPONENT_MODULES)


def register(cls: type[Component]) -> type[Component]:
    """Class decorator: make a component kind usable from scenario YAML."""
    COMPONENTS[cls.kind] = cls
    return cls


class ComponentOptions(BaseModel):
    """Base for each component's options; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Component(ABC):
    kind: ClassVar[str]
    Options: ClassVar[type[ComponentOptions]] = ComponentOptions
    binary: ClassVar[str] = ""
    ready_timeout: ClassVar[float] = 10.0
    needs_image: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        node: str,
        options: dict[str, Any] | None = None,
        *,
        image: str | None = None,
    ) -> None:
        self.name = name
        self.node = node
        self.image = image  # run from this image in a container; None: the host's program
        if self.needs_image and not image:
            raise ComponentError(name, f"a {self.kind} component needs `image:` (e.g. my/pbx:1.0)")
        try:
            self.options = self.Options.model_validate(options or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
            raise ComponentError(name, f"option {key!r}: {msg}") from None
        self.lab: Lab | None = None
        self.proc: NodeProcess | None = None
        self.workdir: Path | None = None
        self.scenario_components: Mapping[str, Component] = {}
        self.scenario_dir = Path.cwd()

    def bind(self, components: Mapping[str, Component], scenario_dir: Path) -> None:
        """The scenario around this component, before `start`: the other components
        (their addresses and credentials, for templates) and where relative paths start."""
        self.scenario_components = components
        self.scenario_dir = scenario_dir

    # -- what a subclass provides

    @abstractmethod
    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        """Write config files into `workdir`; return the command line."""

    @abstractmethod
    def is_ready(self) -> bool:
        """True once the program serves (a port answers, a log line appeared)."""

    def spawn_env(self) -> dict[str, str] | None:
        """The program's whole environment (None: the harness's own for a host process,
        the image's for a container)."""
        return None

    def version_probe(self) -> VersionProbe | None:
        """How to ask this program its version (None: it cannot tell)."""
        return PROBES.get(self.kind)

    def program_version(self) -> str:
        """The version the program itself reports, from the binary that runs: the host's,
        or the one in the component's image. Recorded in every result."""
        probe = self.version_probe()
        if probe is None:
            return "not reported"
        image = self.image
        return (image_version(probe, image) if image else host_version(probe)) or "not found"

    def ports(self) -> list[tuple[str, str, int]]:
        """(protocol, address, port) this component binds, to find clashes before start."""
        return []

    # -- shared behaviour

    @property
    def address(self) -> str:
        assert self.lab is not None
        return str(self.lab.topology.node(self.node).iface().address)

    def start(self, lab: Lab) -> None:
        self.lab = lab
        self.workdir = lab.workdir(self.node, self.name)
        argv = self.configure(lab, self.workdir)
        try:
            self.proc = lab.spawn(
                self.node,
                argv,
                name=self.name,
                cwd=self.workdir,
                image=self.image,
                env=self.spawn_env(),
            )
        except LabError as exc:  # e.g. the image cannot start its program at all
            raise ComponentError(self.name, str(exc)) from None
        deadline = time.monotonic() + self.ready_timeout
        while not self.is_ready():
            if not self.proc.alive():
                raise ComponentError(
                    self.name,
                    f"exited with status {self.proc.returncode} before it was ready",
                    self.proc.log_tail(30),
                )
            if time.monotonic() > deadline:
                tail = self.proc.log_tail(30)
                self.stop()
                raise ComponentError(self.name, f"not ready after {self.ready_timeout:.0f} s", tail)
            time.sleep(0.02)

    def check_alive(self) -> None:
        """Raise if the component died: a dead gateway must fail a scenario loudly."""
        if self.proc is not None and not self.proc.alive():
            raise ComponentError(
                self.name, f"died with status {self.proc.returncode}", self.proc.log_tail(30)
            )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self.proc.log_tail(lines) if self.proc else ""

    def log_findings(self) -> list[LogFinding]:
        """What the program's whole log says about this run (read as it stops): a kind
        that knows its program's bugs by their log lines names them (Janus: janus_diag)."""
        return []

    def log_text(self) -> str:
        """The program's whole log so far ("" if it has none)."""
        return self.proc.log_text() if self.proc else ""
