"use strict";
// SIP over WebSocket (RFC 7118) for the in-page peer, with JsSIP (vendored in
// jssip.min.js): a browser app that registers to a SIP proxy and calls SIP users
// itself, with no gateway API in between. The RTCPeerConnection JsSIP makes for a
// call is adopted by window.peer, so stats, selected pair and received audio are
// reported exactly as for calls the harness signals itself. Events go out as
// `sip {state, ...}`.

const SIP_TIMEOUT_MS = 15000;

class SipPhone {
  constructor(peer) {
    this.peer = peer;
    this.ua = null;
    this.session = null;
    this.incoming = [];
    this.onIncoming = null;
  }

  // Resolves with the first of `events` that `target` emits; rejects on `failures`
  // or after the timeout, so a command never hangs the agent.
  static wait(target, events, failures, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: no answer in time`)),
        SIP_TIMEOUT_MS);
      for (const ev of events) target.once(ev, (e) => { clearTimeout(timer); resolve([ev, e]); });
      for (const ev of failures) {
        target.once(ev, (e) => {
          clearTimeout(timer);
          // The SIP status first (e.g. 403 Forbidden), JsSIP's cause after it.
          const status = e && e.response && `${e.response.status_code} ${e.response.reason_phrase}`;
          const why = e && [status, e.cause || e.code].filter(Boolean).join(", ");
          reject(new Error(`${what}: ${ev} (${why || "no cause"})`));
        });
      }
    });
  }

  async register(wsUri, uri, password, displayName) {
    this.stop();
    const socket = new JsSIP.WebSocketInterface(wsUri);
    const ua = new JsSIP.UA({
      sockets: [socket], uri, password: password || undefined,
      // Registering on connect: a REGISTER sent before the socket is open fails at once.
      display_name: displayName || undefined, register: true,
      session_timers: false, user_agent: "rtc-harness chromium (JsSIP)",
    });
    this.ua = ua;
    for (const ev of ["connected", "disconnected", "registered", "unregistered"]) {
      ua.on(ev, () => emit("sip", { state: ev }));
    }
    ua.on("registrationFailed", (e) => emit("sip", { state: "registrationFailed", cause: e.cause }));
    ua.on("newRTCSession", (e) => {
      this.watch(e.session);
      if (e.originator === "remote") {
        this.incoming.push(e.session);
        emit("sip", { state: "incoming", from: e.request.from.uri.toString() });
        if (this.onIncoming) this.onIncoming();
      }
    });
    // `disconnected` too: with no WebSocket listener JsSIP would retry, never fail.
    const done = SipPhone.wait(ua, ["registered"], ["registrationFailed", "disconnected"],
      `REGISTER over ${wsUri}`);
    ua.start();
    try {
      await done;
    } catch (err) {
      this.stop();
      throw err;
    }
    return { contact: ua.contact.toString() };
  }

  watch(session) {
    this.session = session;
    // An outgoing session makes its connection before `newRTCSession` (see call()).
    if (session.direction === "incoming") {
      session.on("peerconnection", (e) => this.peer.adopt(e.peerconnection));
    }
    for (const ev of ["connecting", "progress", "accepted", "confirmed"]) {
      session.on(ev, () => emit("sip", { state: ev }));
    }
    // Why the browser refused the far end's SDP ("Bad Media Description" alone says little).
    session.on("peerconnection:setremotedescriptionfailed", (err) =>
      emit("error", { message: `setRemoteDescription: ${err}` }));
    for (const ev of ["ended", "failed"]) {
      session.on(ev, (e) => emit("sip", { state: ev, cause: e.cause, originator: e.originator }));
    }
  }

  async call(target) {
    if (!this.ua || !this.ua.isRegistered()) throw new Error("sip_call: not registered");
    const peer = this.peer;
    if (!peer.local) throw new Error("sip_call: configure audio first");
    const session = this.ua.call(target, {
      mediaStream: peer.local,
      // rtpengine 10.5 answers without a=group:BUNDLE, which a max-bundle offer refuses.
      pcConfig: { ...peer.pcConfig(), bundlePolicy: "balanced" },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
      eventHandlers: { peerconnection: (e) => peer.adopt(e.peerconnection) },
    });
    await SipPhone.wait(session, ["confirmed"], ["failed", "ended"], `INVITE ${target}`);
    return { call_id: session.id };
  }

  // Answers the next incoming INVITE (waiting for it up to the timeout): the far end's
  // proxy/media relay is the offerer on the WebRTC leg; resolves once the ACK came.
  async answer() {
    if (!this.ua) throw new Error("sip_answer: not registered");
    const peer = this.peer;
    if (!peer.local) throw new Error("sip_answer: configure audio first");
    if (!this.incoming.length) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("sip_answer: no INVITE in time")),
          SIP_TIMEOUT_MS);
        this.onIncoming = () => { clearTimeout(timer); resolve(); };
      });
      this.onIncoming = null;
    }
    const session = this.incoming.shift();
    this.session = session;
    const confirmed = SipPhone.wait(session, ["confirmed"], ["failed", "ended"], "answer");
    session.answer({
      mediaStream: peer.local,
      pcConfig: { ...peer.pcConfig(), bundlePolicy: "balanced" },
    });
    await confirmed;
    return { call_id: session.id, from: session.remote_identity.uri.toString() };
  }

  async hangup() {
    const session = this.session;
    if (!session || session.isEnded()) return {};
    const ended = SipPhone.wait(session, ["ended"], ["failed"], "BYE");
    session.terminate();
    await ended;
    return {};
  }

  stop() {
    if (this.session && !this.session.isEnded()) this.session.terminate();
    if (this.ua) this.ua.stop();
    this.ua = null;
    this.session = null;
  }
}

window.sip = new SipPhone(window.peer);
