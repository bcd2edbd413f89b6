"""Errors users see. Each one says where the problem is, not only what."""

from __future__ import annotations

from dataclasses import dataclass


class HarnessError(Exception):
    """Base class for every error the harness reports to a user."""


@dataclass
class ConfigError(HarnessError):
    """Bad input in a YAML file: names the file, line and key path."""

    file: str
    line: int | None
    key: str
    message: str

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class LabError(HarnessError):
    """A lab could not be built, used or removed."""


class ComponentError(HarnessError):
    """A component (coturn, Janus, ...) failed to start or died."""

    def __init__(self, component: str, message: str, log_tail: str = "") -> None:
        self.component = component
        self.message = message
        self.log_tail = log_tail
        text = f"{component}: {message}"
        if log_tail:
            text += "\n--- log tail ---\n" + log_tail
        super().__init__(text)


class UnsupportedError(HarnessError):
    """What a scenario needs is missing here (an engine, a browser, a kernel feature)
    or is declared unsupported by the component under test.

    Never a pass and never a failure: runners report the verdict "unsupported"
    with `reason`, and `harness doctor` tells how to get what is missing.
    """

    def __init__(self, reason: str, *, fix: str = "") -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(reason + (f" (fix: {fix})" if fix else ""))
