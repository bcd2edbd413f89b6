"""rtc-harness: reproduce WebRTC and SIP field failures on one machine.

Layers, one folder each: config (scenario and topology model) -> lab (build a
topology) -> runtime (netns, later docker) -> nat, conditions (network
behaviour) -> components and peers -> actions -> capture -> analysis and
assertions -> reports.
"""

__version__ = "0.1.0"

from harness import methodcache

methodcache.install()  # before any module of ours makes a dataclass
