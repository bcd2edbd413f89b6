"""Headless Chromium as a peer agent: Playwright drives Debian's Chromium.

The peer itself is page/peer.js; the agent process (agent.py) serves the
control protocol of docs/peers.md and relays between it and the page.
"""

from .agent import ChromiumAgent

__all__ = ["ChromiumAgent"]
