"""Headless Chromium as a peer agent: Playwright drives Debian's Chromium.

The peer itself is the shared page (harness/peers/browser/page/peer.js); this
package only says how to start Chromium with a fake microphone and reach the page.
"""

from .browser import ChromiumEngine

__all__ = ["ChromiumEngine"]
