"""What the browser peer kinds share: the in-page peer (page/peer.js), the agent
that serves the control protocol (docs/peers.md) through a page, and its CLI.

A kind only provides an `Engine`: how to start its browser with a fake
microphone and load the page, and how to evaluate a call in it.
"""

from .agent import BrowserAgent, Engine, PageDriver

__all__ = ["BrowserAgent", "Engine", "PageDriver"]
