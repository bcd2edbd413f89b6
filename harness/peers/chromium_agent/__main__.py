"""`python -m harness.peers.chromium_agent --control PATH --name NAME`."""

from harness.peers.browser.main import cli

from .browser import ChromiumEngine

if __name__ == "__main__":
    cli(ChromiumEngine, "Headless Chromium WebRTC peer agent")
