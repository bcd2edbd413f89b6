"""The aiortc peer agent: `python -m harness.peers.aiortc_agent --control SOCK --name NAME`.

Runs inside a lab node; the harness drives it over the control socket
(docs/peers.md). It also carries the ICE restart aiortc lacks (ice_restart.py).
"""
