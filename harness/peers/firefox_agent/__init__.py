"""Headless Firefox (Debian's firefox-esr) as a peer agent, through WebDriver BiDi.

The peer itself is the shared page (harness/peers/browser/page/peer.js); this
package starts Firefox with a fake microphone and reaches the page.
"""

from .browser import FirefoxEngine

__all__ = ["FirefoxEngine"]
