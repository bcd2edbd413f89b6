"use strict";
// The in-page WebRTC peer. The agent calls window.peer.* through page.evaluate;
// the page reports what it observes through window.__emit(kind, data, t), with t
// the wall clock in seconds at the moment the browser saw it.
//
// Date.now(), not performance.timeOrigin + performance.now(): the latter is the
// monotonic clock plus a wall-clock offset Chromium takes once per process, so after
// the machine's clock is stepped it lags the harness and the pcaps (CLOCK_REALTIME)
// by the whole step, and `since` filters miss events that did happen.
const now = () => Date.now() / 1000;
const emit = (kind, data) => window.__emit(kind, data, now());
const GATHER_TIMEOUT_MS = 15000;
const FFT_SIZE = 32768;
const REDACTED = "redacted-ip.invalid";

function sdpUfrag(desc) {
  const m = desc && /^a=ice-ufrag:(\S+)/m.exec(desc.sdp);
  return m ? m[1] : null;
}

function candidateInfo(c) {
  if (!c) return null;
  const address = c.address ?? c.ip;
  const info = { type: c.candidateType ?? c.type, address: address === REDACTED ? null : address,
                 port: c.port, protocol: c.protocol };
  const relay = c.relayProtocol;
  if (relay) info.relay_protocol = relay;
  return info;
}

// The analyser's last window (32768 samples, ~0.7 s) as base64 int16 PCM: the
// agent measures tone and level with the same code as every other peer kind.
function capturePcm(analyser) {
  const time = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(time);
  const pcm = new Int16Array(time.length);
  for (let i = 0; i < time.length; i++) {
    pcm[i] = Math.max(-32768, Math.min(32767, Math.round(time[i] * 32767)));
  }
  const bytes = new Uint8Array(pcm.buffer);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return { sample_rate: analyser.context.sampleRate, pcm: btoa(bin) };
}

// DTLS role from the negotiated a=setup (RFC 5763 s5), where stats lack dtlsRole:
// "active" is the DTLS client.
function sdpSetup(desc) {
  const m = desc && /^a=setup:(\S+)/m.exec(desc.sdp);
  return m ? m[1] : null;
}

function dtlsRoleFromSdp(pc) {
  const local = sdpSetup(pc.currentLocalDescription);
  const remote = sdpSetup(pc.currentRemoteDescription);
  if (local === "active" || remote === "passive") return "client";
  if (local === "passive" || remote === "active") return "server";
  return null;
}

// The stats entry for the remote certificate can lag behind the DTLS state; the
// transport's own certificate list does not.
async function remoteFingerprint(dtlsTransport) {
  const certs = dtlsTransport ? dtlsTransport.getRemoteCertificates() : [];
  if (!certs.length) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", certs[0]));
  const hex = [...digest].map((b) => b.toString(16).toUpperCase().padStart(2, "0"));
  return `sha-256 ${hex.join(":")}`;
}

class Peer {
  constructor() {
    this.cfg = null;
    this.pc = null;
    this.channels = new Map();
    this.local = null;
    this.analyser = null;
    this.audioCtx = null;
    this.sinks = [];
    this.transports = new Set();
    this.lastPair = null;
    this.lastDtls = null;
    this.refreshing = null;
  }

  async configure(cfg) {
    this.hangup();
    this.cfg = cfg;
    this.attach(new RTCPeerConnection(this.pcConfig()));
    const want = {};
    if (cfg.audio) {
      want.audio = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    }
    if (cfg.video) want.video = { width: 320, height: 240, frameRate: 15 };
    if (want.audio || want.video) {
      this.local = await navigator.mediaDevices.getUserMedia(want);
      for (const t of this.local.getTracks()) this.pc.addTrack(t, this.local);
    }
    return {};
  }

  // The RTCPeerConnection options every connection of this peer uses (also JsSIP's).
  pcConfig() {
    const cfg = this.cfg || {};
    return {
      iceServers: (cfg.ice_servers || []).map((s) => ({
        urls: s.urls, username: s.username, credential: s.credential })),
      iceTransportPolicy: cfg.ice_transport_policy || "all",
      bundlePolicy: "max-bundle",
      rtcpMuxPolicy: "require",
    };
  }

  // Watch `pc` as this peer's connection: events, stats, received audio. A connection
  // made by someone else (JsSIP's RTCSession) is adopted the same way.
  attach(pc) {
    clearInterval(this.ticker);
    this.pc = pc;
    // A slow backstop for changes no event announces (stats are cached briefly).
    this.ticker = setInterval(() => this.refresh(), 1000);
    this.lastPair = null;
    this.lastDtls = null;
    pc.onsignalingstatechange = () => emit("signalingstatechange", { state: pc.signalingState });
    pc.onicegatheringstatechange = () =>
      emit("icegatheringstatechange", { state: pc.iceGatheringState });
    pc.oniceconnectionstatechange = () => {
      emit("iceconnectionstatechange", { state: pc.iceConnectionState });
      this.refresh();
    };
    pc.onconnectionstatechange = () => {
      emit("connectionstatechange", { state: pc.connectionState });
      this.refresh();
    };
    pc.onicecandidate = (e) => {
      if (!this.cfg.trickle) return;
      const c = e.candidate;
      emit("icecandidate", c && c.candidate
        ? { candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex }
        : { candidate: null, sdp_mid: null, sdp_mline_index: null });
    };
    // STUN/TURN failures (refused credentials, unreachable server) are worth seeing.
    pc.onicecandidateerror = (e) =>
      emit("error", { message: `ICE candidate error ${e.errorCode} ${e.errorText} (${e.url})` });
    pc.ontrack = (e) => {
      emit("track", { kind: e.track.kind });
      if (e.track.kind === "audio") this.listen(e.track);
    };
    pc.ondatachannel = (e) => this.watchChannel(e.channel);
  }

  adopt(pc) {
    if (this.pc && this.pc !== pc) this.pc.close();
    this.transports = new Set();
    this.attach(pc);
  }

  // Remote audio reaches WebAudio only while it also plays in a media element
  // (a long-standing Chromium quirk), so both are attached; the element is muted.
  listen(track) {
    const stream = new MediaStream([track]);
    const sink = new Audio();
    sink.muted = true;
    sink.srcObject = stream;
    sink.play().catch((err) => emit("error", { message: `audio sink: ${err}` }));
    this.sinks.push(sink);
    this.audioCtx = this.audioCtx || new AudioContext({ sampleRate: 48000 });
    this.audioCtx.resume();
    const analyser = this.audioCtx.createAnalyser();
    analyser.fftSize = FFT_SIZE;
    this.audioCtx.createMediaStreamSource(stream).connect(analyser);
    this.analyser = analyser;
  }

  watchChannel(ch) {
    this.channels.set(ch.label, ch);
    let last = null;
    const state = () => {
      if (ch.readyState !== last) emit("datachannel", { label: ch.label, state: ch.readyState });
      last = ch.readyState;
    };
    ch.onopen = state;
    ch.onclose = state;
    ch.onmessage = (e) =>
      emit("datamessage", { label: ch.label, text: typeof e.data === "string" ? e.data : "" });
    if (ch.readyState === "open") state();
  }

  requirePc() {
    if (!this.pc) throw new Error("not configured");
    return this.pc;
  }

  // Sets a local description; without trickle waits until a new gathering ends so
  // the SDP carries every candidate.
  async setLocal(makeDesc) {
    const pc = this.requirePc();
    const before = sdpUfrag(pc.currentLocalDescription);
    let done;
    const gathered = new Promise((resolve) => (done = resolve));
    const onGathering = () => pc.iceGatheringState === "complete" && done(true);
    // Listening before setLocalDescription: a fast gathering cannot slip past.
    pc.addEventListener("icegatheringstatechange", onGathering);
    try {
      await pc.setLocalDescription(await makeDesc());
      this.watchTransports();
      const fresh = sdpUfrag(pc.localDescription) !== before;
      if (!this.cfg.trickle && (fresh || pc.iceGatheringState !== "complete")) {
        const timer = setTimeout(() => done(false), GATHER_TIMEOUT_MS);
        const complete = await gathered;
        clearTimeout(timer);
        if (!complete) emit("error", { message: "ICE gathering did not complete in time" });
      }
    } finally {
      pc.removeEventListener("icegatheringstatechange", onGathering);
    }
    return { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
  }

  async createOffer(iceRestart) {
    const pc = this.requirePc();
    if (this.cfg.datachannel && this.channels.size === 0) {
      this.watchChannel(pc.createDataChannel("harness"));
    }
    if (pc.getTransceivers().length === 0 && this.channels.size === 0) {
      throw new Error("nothing to offer: configure audio, video or datachannel");
    }
    return this.setLocal(() => pc.createOffer({ iceRestart: !!iceRestart }));
  }

  async createAnswer() {
    const pc = this.requirePc();
    return this.setLocal(() => pc.createAnswer());
  }

  // JSEP provisional answer (RFC 8829 4.1.10.1): an answer applied as "pranswer".
  async createPranswer() {
    const pc = this.requirePc();
    const answer = await pc.createAnswer();
    return this.setLocal(async () => ({ type: "pranswer", sdp: answer.sdp }));
  }

  // Discards the local offer or pranswer (RFC 8829 4.1.10.2): back to stable.
  async rollback() {
    await this.requirePc().setLocalDescription({ type: "rollback" });
    return {};
  }

  async setRemote(type, sdp) {
    const desc = type === "rollback" ? { type } : { type, sdp };
    await this.requirePc().setRemoteDescription(desc);
    this.watchTransports();
    return {};
  }

  async addCandidate(candidate, sdpMid, sdpMLineIndex) {
    const pc = this.requirePc();
    if (candidate === null || candidate === "") await pc.addIceCandidate();
    else await pc.addIceCandidate({ candidate, sdpMid, sdpMLineIndex });
    return {};
  }

  restartIce() {
    this.requirePc().restartIce();
    return {};
  }

  // RFC 4733 telephone-events through the audio sender (RTCDTMFSender); resolves once
  // every tone was played out, so the caller knows the events are on the wire.
  async sendDtmf(tones, duration, gap) {
    const sender = this.requirePc().getSenders().find((x) => x.track && x.track.kind === "audio");
    if (!sender || !sender.dtmf) throw new Error("no audio sender with DTMF");
    if (!sender.dtmf.canInsertDTMF) throw new Error("DTMF not negotiated (no telephone-event)");
    const done = new Promise((resolve) => {
      sender.dtmf.ontonechange = (e) => { if (e.tone === "") resolve(); };
    });
    sender.dtmf.insertDTMF(tones, duration, gap);
    await done;
    return {};
  }

  sendData(text) {
    for (const ch of this.channels.values()) {
      if (ch.readyState === "open") {
        ch.send(text);
        return {};
      }
    }
    throw new Error("no open data channel");
  }

  hangup() {
    clearInterval(this.ticker);
    clearInterval(this.fastPoll);
    if (this.pc) {
      this.pc.close();
      emit("connectionstatechange", { state: this.pc.connectionState });
    }
    if (this.local) for (const t of this.local.getTracks()) t.stop();
    for (const s of this.sinks) s.srcObject = null;
    this.pc = null;
    this.local = null;
    this.sinks = [];
    this.analyser = null;
    this.channels = new Map();
    this.transports = new Set();
    return {};
  }

  // After a description is applied a new pair may be selected with no event saying so
  // (Firefox has no selectedcandidatepairchange): look every 50 ms for 3 s.
  pollPairSoon() {
    clearInterval(this.fastPoll);
    let left = 60;
    let busy = false;
    this.fastPoll = setInterval(() => {
      if (--left <= 0 || !this.pc) clearInterval(this.fastPoll);
      else if (!busy) {
        busy = true;
        this.refresh().finally(() => (busy = false));
      }
    }, 50);
  }

  // Every DTLS transport in use, watched for state and selected-pair changes.
  watchTransports() {
    this.pollPairSoon();
    const pc = this.pc;
    const found = [...pc.getSenders(), ...pc.getReceivers()].map((x) => x.transport);
    if (pc.sctp) found.push(pc.sctp.transport);
    for (const t of found) {
      if (!t || this.transports.has(t)) continue;
      this.transports.add(t);
      t.addEventListener("statechange", () => this.refresh());
      t.iceTransport.addEventListener("selectedcandidatepairchange", () => this.refresh());
      // Firefox fires no selectedcandidatepairchange: its ICE transport's own state
      // changes (a restart's new generation checking -> connected) are the cue.
      t.iceTransport.addEventListener("statechange", () => this.refresh());
    }
  }

  transportPair() {
    for (const t of this.transports) {
      const p = t.iceTransport.getSelectedCandidatePair && t.iceTransport.getSelectedCandidatePair();
      if (p && p.local && p.remote) {
        return { local: candidateInfo(p.local), remote: candidateInfo(p.remote) };
      }
    }
    return null;
  }

  // The transport knows a new pair at once but keeps the candidate objects of the
  // moment of selection: a peer-reflexive remote stays "prflx" with its address
  // redacted even after signalling revealed it. getStats has the updated candidate,
  // but may be a cached report for a few ms. Stats win when they describe the same
  // pair, else the transport's view is used and looked up again shortly.
  choosePair(fromStats) {
    const now = this.transportPair();
    const same = (x, y) => x && y && x.local.port === y.local.port &&
      x.remote.port === y.remote.port && x.local.protocol === y.local.protocol;
    if (!now || same(now, fromStats)) return fromStats || null;
    clearTimeout(this.recheck);
    this.recheck = setTimeout(() => this.refresh(), 200);
    return now;
  }

  // Serialised so events keep their order.
  refresh() {
    const run = async () => {
      if (!this.pc) return;
      const s = await this.snapshot(false);
      const pair = s.ice.selected_pair;
      // A new ICE generation announces its pair even if it reuses the same addresses.
      const pairKey = JSON.stringify([s.ice.local_ufrag, pair]);
      if (pair && pairKey !== this.lastPair) {
        this.lastPair = pairKey;
        emit("selectedpair", pair);
      }
      const dtlsKey = JSON.stringify(s.dtls);
      if (s.dtls.state && dtlsKey !== this.lastDtls) {
        this.lastDtls = dtlsKey;
        emit("dtlsstatechange", s.dtls);
      }
    };
    this.refreshing = (this.refreshing || Promise.resolve()).then(run).catch((err) =>
      emit("error", { message: `refresh: ${err}` }));
    return this.refreshing;
  }

  async snapshot(withAudio = true) {
    const pc = this.requirePc();
    const report = await pc.getStats();
    const byId = (id) => (id ? report.get(id) : undefined);
    let transport = null;
    let flaggedPair = null; // Firefox: no selectedCandidatePairId; its pair stats say `selected`
    const media = {};
    const blank = () => ({ packets_sent: 0, bytes_sent: 0, packets_received: 0,
                           bytes_received: 0 });
    for (const s of report.values()) {
      if (s.type === "transport" && (!transport || s.selectedCandidatePairId)) transport = s;
      if (s.type === "candidate-pair" && s.selected) flaggedPair = s;
      if (s.type === "outbound-rtp" && s.kind) {
        const m = (media[s.kind] = media[s.kind] || blank());
        m.packets_sent += s.packetsSent || 0;
        m.bytes_sent += s.bytesSent || 0;
      }
      if (s.type === "inbound-rtp" && s.kind) {
        const m = (media[s.kind] = media[s.kind] || blank());
        m.packets_received += s.packetsReceived || 0;
        m.bytes_received += s.bytesReceived || 0;
      }
    }
    if (withAudio && (media.audio || this.analyser)) {
      media.audio = Object.assign(media.audio || blank(),
        { received_pcm: this.analyser ? capturePcm(this.analyser) : null });
    }
    const pair = byId(transport && transport.selectedCandidatePairId) || flaggedPair;
    const fromStats = pair && { local: candidateInfo(byId(pair.localCandidateId)),
                                remote: candidateInfo(byId(pair.remoteCandidateId)) };
    const selected = this.choosePair(fromStats);
    const cert = byId(transport && transport.remoteCertificateId);
    const dt = [...this.transports][0];
    const dtls = {
      state: dt ? dt.state : transport ? transport.dtlsState : null,
      role: transport && transport.dtlsRole && transport.dtlsRole !== "unknown"
        ? transport.dtlsRole : dt && dt.state === "connected" ? dtlsRoleFromSdp(pc) : null,
      remote_fingerprint: cert
        ? `${cert.fingerprintAlgorithm} ${cert.fingerprint}` : await remoteFingerprint(dt),
    };
    return {
      t: now(),
      ice: {
        local_ufrag: (transport && transport.iceLocalUsernameFragment) ||
          sdpUfrag(pc.currentLocalDescription),
        remote_ufrag: sdpUfrag(pc.currentRemoteDescription),
        state: pc.iceConnectionState,
        gathering: pc.iceGatheringState,
        selected_pair: selected,
      },
      dtls,
      media,
    };
  }
}

window.peer = new Peer();
