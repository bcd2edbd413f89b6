"""A lab: one topology made real on this machine, with its processes and captures."""

from harness.lab.lab import Lab

__all__ = ["Lab"]
