"""Runtimes make a resolved topology real: network namespaces now, containers later."""

from harness.runtime.base import NodeProcess, Runtime

__all__ = ["NodeProcess", "Runtime"]
