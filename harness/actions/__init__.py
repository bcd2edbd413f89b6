"""Scenario steps: what a timeline can do (call, wait, restart ICE, hang up, ...).

Each action has an argument model (validated before a lab exists) and an
`execute` coroutine the runner calls with the live scenario context.
"""

from harness.actions.registry import ACTIONS, Action, action

__all__ = ["ACTIONS", "Action", "action"]
