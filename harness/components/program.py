"""`process` and `container`: a program the harness has no adapter for, run as a host
command in a node, or from an image in a container that joins the node.

The scenario gives the command, environment, files rendered from templates with the
lab's facts (harness/components/render.py), the ports it serves (checked for clashes
with the other components and for being free in the node before start) and a ready
probe (harness/components/probes.py). Templates and command are rendered at start,
when every address is known.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.components.base import Component, ComponentOptions, register
from harness.components.ports import WILDCARD, Endpoint, port_range
from harness.components.probes import Probe, ReadySpec, ports_in_use
from harness.components.render import lab_facts, read_template, render
from harness.components.versions import VersionProbe
from harness.errors import ComponentError

if TYPE_CHECKING:
    from harness.lab.lab import Lab

PORT_RE = re.compile(r"(tcp|udp)/(\d{1,5})(?:-(\d{1,5}))?")


class FileSpec(BaseModel):
    """A file the program reads: a template (path relative to the scenario) or inline text."""

    model_config = ConfigDict(extra="forbid")
    template: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _one(self) -> FileSpec:
        if (self.template is None) == (self.text is None):
            raise ValueError("give exactly one of template (a path) or text")
        return self


class VersionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[str] = Field(min_length=1)
    pattern: str = r"(\d+\.\d+[\w.\-~+]*)"
    """Regular expression whose first group is the version."""


class ProgramOptions(ComponentOptions):
    command: list[str] = Field(min_length=1)
    """argv; every item is a template (e.g. `{{ files['my.conf'] }}`, `{{ me.address }}`)."""
    environment: dict[str, str] = {}
    vars: dict[str, Any] = {}
    """The user's own template variables (accounts, dial plans...), beside the lab's facts."""
    files: dict[str, FileSpec] = {}
    """Relative name in the component's work directory -> its content."""
    ports: list[str] = []
    """What it serves: `udp/5060`, `tcp/8088`, `udp/10000-10099` (media ranges)."""
    ready: ReadySpec
    version: VersionSpec | None = None
    """How to ask the program its version, recorded in the result."""
    sip_port: int | None = Field(None, ge=1, le=65535)
    """The UDP port it serves SIP on, when it is a registrar/PBX steps may register at."""

    @model_validator(mode="after")
    def _check(self) -> ProgramOptions:
        for p in self.ports:
            m = PORT_RE.fullmatch(p)
            if not m or not 1 <= int(m.group(2)) <= int(m.group(3) or m.group(2)) <= 65535:
                raise ValueError(f"port {p!r} is not PROTO/PORT or PROTO/LOW-HIGH (tcp or udp)")
        for name in self.files:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ValueError(f"file {name!r}: a process's files live in its work directory")
        return self


@register
class Program(Component):
    """A host command in a node (kind `process`)."""

    kind = "process"
    Options = ProgramOptions
    options: ProgramOptions

    probe: Probe | None = None
    env: dict[str, str] = {}  # noqa: RUF012 - replaced per instance in configure()

    @property
    def ready_timeout(self) -> float:  # type: ignore[override]
        return self.options.ready.timeout

    def ports(self) -> list[Endpoint]:
        out: list[Endpoint] = []
        for p in self.options.ports:
            m = PORT_RE.fullmatch(p)
            assert m is not None  # validated
            low = int(m.group(2))
            out += port_range(m.group(1), WILDCARD, low, int(m.group(3) or low))
        return out

    def listen_address(self) -> str:
        return self.address

    @property
    def uri(self) -> str | None:
        """SIP URI of a PBX (with `sip_port`), for registrations through it."""
        port = self.options.sip_port
        return f"sip:{self.listen_address()}:{port}" if port else None

    def version_probe(self) -> VersionProbe | None:
        v = self.options.version
        return VersionProbe(tuple(v.command), v.pattern) if v else None

    def facts(self, lab: Lab, workdir: Path) -> dict[str, Any]:
        """The lab's facts plus `files`: name -> the path the program finds it at."""
        facts = {**self.options.vars}
        facts.update(lab_facts(lab, self.scenario_components or {self.name: self}, self))
        facts["files"] = {name: str(self.file_path(workdir, name)) for name in self.options.files}
        facts["me"]["workdir"] = str(workdir)
        return facts

    def file_path(self, workdir: Path, name: str) -> Path:
        return workdir / name

    def write_files(self, facts: Mapping[str, Any], workdir: Path) -> None:
        for name, spec in self.options.files.items():
            if spec.template is not None:
                path = (self.scenario_dir / spec.template).resolve()
                text, where = read_template(path, component=self.name), f"template {path}"
            else:
                text, where = spec.text or "", f"files.{name}"
            out = workdir / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render(text, facts, component=self.name, where=where))

    def configure(self, lab: Lab, workdir: Path) -> list[str]:
        busy = ports_in_use(lab, self.node, self.ports())
        if busy:
            raise ComponentError(
                self.name, f"ports already in use on node {self.node!r}: {', '.join(busy[:5])}"
            )
        facts = self.facts(lab, workdir)
        self.write_files(facts, workdir)
        self.env = {
            k: render(v, facts, component=self.name, where=f"environment.{k}")
            for k, v in self.options.environment.items()
        }
        self.probe = Probe(self.options.ready, lab, self.node, facts["me"]["address"])
        return [
            render(a, facts, component=self.name, where=f"command[{i}]")
            for i, a in enumerate(self.options.command)
        ]

    def spawn_env(self) -> dict[str, str]:
        # a host process inherits the harness's environment; a container keeps its image's
        return dict(self.env) if self.image else {**os.environ, **self.env}

    def is_ready(self) -> bool:
        assert self.probe is not None and self.proc is not None
        return self.probe(self.proc.log_tail(400) if self.options.ready.log else "")


@register
class Container(Program):
    """The same, from an image (kind `container`): a user's PBX, SBC or gateway.

    It joins its node's network like every containerised component (the docker runtime:
    only the lab's interfaces); its work directory, holding the rendered files, is
    mounted at the same path, so `{{ files['x.conf'] }}` is valid inside too.
    """

    kind = "container"
    needs_image = True
