"""WebRTC peer agents: processes inside lab nodes, driven over a unix socket.

Every kind of peer (aiortc, headless Chromium) speaks the same JSON-lines
protocol (docs/peers.md), so scenarios drive them through one client.
"""
