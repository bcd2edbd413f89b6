"""`python -m harness.peers.firefox_agent --control PATH --name NAME`."""

from harness.peers.browser.main import cli

from .browser import FirefoxEngine

if __name__ == "__main__":
    cli(FirefoxEngine, "Headless Firefox WebRTC peer agent (WebDriver BiDi)")
