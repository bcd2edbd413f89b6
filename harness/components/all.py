"""Import every component module so each kind registers itself."""

from harness.components import (  # noqa: F401
    baresip,
    coturn,
    janus,
    kamailio,
    program,
    rtpengine,
    sipp,
)
