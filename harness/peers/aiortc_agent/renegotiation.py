"""Re-offers that keep what was negotiated: aiortc 1.16 fix, small enough to go upstream.

aiortc's createOffer() resets every transceiver to its default codecs and RTP
header extension ids. After a call where the other side offered first (e.g.
Chromium: ssrc-audio-level is id 1 there, sdes:mid is id 1 in aiortc), any later
offer from aiortc, such as an ICE restart, remaps ids on a live m-line, which
Chromium rejects ("RTP extension ID reassignment not supported"). JSEP (RFC 9429
section 5.2.2) wants subsequent offers to keep the negotiated payload types and
extension ids: this class restores them in the offer it returns.
"""

from __future__ import annotations

import copy

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription


class RenegotiatingPeerConnection(RTCPeerConnection):
    async def createOffer(self) -> RTCSessionDescription:
        negotiated = {
            t.mid: (copy.deepcopy(t._codecs), copy.deepcopy(t._headerExtensions))
            for t in self.getTransceivers()
            if t.mid is not None and t.currentDirection is not None
        }
        offer = await super().createOffer()
        if not negotiated:
            return offer
        description = SessionDescription.parse(offer.sdp)
        for media in description.media:
            kept = negotiated.get(media.rtp.muxId)
            if kept is not None:
                media.rtp.codecs, media.rtp.headerExtensions = copy.deepcopy(kept)
                media.fmt = [c.payloadType for c in media.rtp.codecs]
        for t in self.getTransceivers():
            if t.mid in negotiated:
                t._codecs, t._headerExtensions = negotiated[t.mid]
        return RTCSessionDescription(sdp=str(description), type=offer.type)
