"""Gateway steps: WebRTC peers and SIP extensions calling each other through Janus's SIP
plugin or Kamailio + rtpengine; importing this package registers them all."""

from harness.actions.gateway import (
    audio,
    extension,
    incall,
    janus_calls,
    janus_features,
    janus_restart,
    janus_takeover,
    sip_offer,
    sip_uac,
    sip_ws,
)
from harness.actions.gateway.janus_restart import JanusRestartIce
from harness.actions.gateway.sip_raw import invite_once

__all__ = [
    "JanusRestartIce",
    "audio",
    "extension",
    "incall",
    "invite_once",
    "janus_calls",
    "janus_features",
    "janus_restart",
    "janus_takeover",
    "sip_offer",
    "sip_uac",
    "sip_ws",
]
