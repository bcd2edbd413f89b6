"""Real components started inside lab nodes: coturn, Janus, Kamailio, rtpengine, baresip, sipp."""

from harness.components.base import COMPONENTS, Component, register

__all__ = ["COMPONENTS", "Component", "register"]
