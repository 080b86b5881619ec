// SFU media layer (roomMode group): media to and from Janus, signaled through Herewith's WebSocket.
//
// Same interface as mesh.js (the page picks this one when `joined.room.media === 'sfu'`):
//   const media = new SfuMedia({send, local, iceServers, selfId, sends, onRemoteMedia, onPeerState});
//   media.start(existingParticipants)  media.participantJoined(p)  media.participantUpdated(p)
//   media.participantLeft(id)          media.signal(msg)           media.trackChanged(kind, track)
//   await media.setScreen(stream|null) await media.summary()       media.peerConnections()   media.close()
//   media.setView(tiles)   (SFU only) what the grid shows: [{participantId, source, width, height}] (device px)
//
// Two peer connections, whatever the size of the room (docs/janus-notes.md):
// - publisher (only for roles that send): we offer our microphone, camera and, when sharing, the screen
//   (`sfu_publish {sdp, sources}`); the server answers with Janus's SDP (`sfu_published`). A viewer never
//   publishes; if it tried, Janus itself would refuse (no publish token) and the server returns an error.
// - subscriber: the server keeps one multistream Janus subscription with every other publisher's streams and
//   sends Janus's offers (`sfu_offer {sdp, subscription, streams}`; `streams` maps each m-line mid to a
//   participant and a source); we answer (`sfu_answer`). A new `subscription` number means a new connection.
// `sfu_restart` (Janus restarted): drop both connections and publish again; the server re-sends an offer.
// Big rooms: the camera goes out in three simulcast layers (rid l/m/h at 1/4, 1/2 and full resolution); the page
// reports what its grid shows (`sfu_view`, from grid.js) and the server subscribes us only to those videos, at the
// layer each tile needs, plus the audio of the loudest few speakers. Screen shares go out in one layer.
// The browser holds no Janus credential: it only ever talks to Herewith; media flows to Janus directly.
//
// Embedding knob: `window.HEREWITH_SFU_OPTIONS = {maxBitrate, scaleResolutionDownBy, simulcast, layerBitrates}`
// (camera encoding: the top layer's cap and scale; simulcast false = one layer; the caps of the 1/2 and 1/4 layers).

const DEFAULTS = {maxBitrate: 600_000, scaleResolutionDownBy: 1, simulcast: true, layerBitrates: [250_000, 100_000]};

// The camera's encodings: one, or three simulcast layers listed from high to low (Janus's substream 2, 1, 0).
export function cameraEncodings({maxBitrate, scaleResolutionDownBy, simulcast, layerBitrates}) {
  if (!simulcast) return [{maxBitrate, scaleResolutionDownBy}];
  const [mid, low] = layerBitrates;
  return [{rid: 'h', maxBitrate, scaleResolutionDownBy},
          {rid: 'm', maxBitrate: Math.min(mid, maxBitrate), scaleResolutionDownBy: scaleResolutionDownBy * 2},
          {rid: 'l', maxBitrate: Math.min(low, maxBitrate), scaleResolutionDownBy: scaleResolutionDownBy * 4}];
}

export class SfuMedia {
  constructor({send, local, iceServers, selfId, sends, onRemoteMedia, onPeerState}) {
    this.send = send;
    this.local = local;
    this.iceServers = iceServers || [];
    this.selfId = selfId;
    this.sends = sends;
    this.onRemoteMedia = onRemoteMedia || (() => {});
    this.onPeerState = onPeerState || (() => {});
    this.options = {...DEFAULTS, ...(globalThis.HEREWITH_SFU_OPTIONS || {})};
    this.participants = new Map();
    this.pub = null;          // publisher RTCPeerConnection
    this.tx = {audio: null, video: null, screen: null};
    this.sub = null;          // subscriber RTCPeerConnection
    this.subscription = 0;
    this.streams = new Map(); // subscriber mid -> {mid, participantId, kind, source, active}
    this.attached = new Map(); // `${id}:${source}` -> {stream, key}
    this.screen = null;
    this.chain = Promise.resolve();
    this.closed = false;
    this.restarts = 0;
    this.view = null;         // the last sfu_view sent (JSON text)
  }

  // What the grid shows now (grid.js: this page's remote tiles and their sizes in device pixels). Sent when it
  // changed; sizes are rounded to 16 px so a window resize does not flood the server.
  setView(tiles) {
    const norm = tiles.map(t => ({participantId: t.participantId, source: t.source === 'screen' ? 'screen' : 'camera',
                                  width: Math.round(t.width / 16) * 16, height: Math.round(t.height / 16) * 16}))
      .sort((a, b) => (a.participantId + a.source).localeCompare(b.participantId + b.source));
    const text = JSON.stringify(norm);
    if (text === this.view) return;
    this.view = text;
    this.send({type: 'sfu_view', tiles: norm});
  }

  enqueue(fn) {
    this.chain = this.chain.then(() => (this.closed ? null : fn())).catch(e => console.warn('sfu', e));
    return this.chain;
  }

  start(existing) {
    for (const p of existing) this.participants.set(p.id, p);
    if (this.sends) this.enqueue(() => this.publish());
  }

  participantJoined(p) { this.participants.set(p.id, p); }
  participantUpdated(p) { this.participants.set(p.id, p); }

  participantLeft(id) {
    this.participants.delete(id);
    for (const key of [...this.attached.keys()]) if (key.startsWith(id + ':')) this.attached.delete(key);
  }

  signal(msg) {
    // the answer is applied at once: offer() (in the chain) is waiting for it
    if (msg.type === 'sfu_published') this.onPublished(msg).catch(e => console.warn('sfu', e));
    else if (msg.type === 'sfu_offer') this.enqueue(() => this.onOffer(msg));
    else if (msg.type === 'sfu_restart') this.enqueue(() => this.restart());
  }

  // ------------------------------------------------------------------------------------ publisher
  async publish() {
    if (this.pub) { try { this.pub.close(); } catch {} }
    this.tx = {audio: null, video: null, screen: null};
    const audio = this.local.track('audio');
    const video = this.local.track('video');
    if (!audio && !video && !this.screen) { this.pub = null; return; }  // nothing to send (devices denied)
    const pc = this.pub = new RTCPeerConnection({iceServers: this.iceServers});
    pc.onicecandidate = ({candidate}) => this.trickle('publisher', pc, candidate);
    pc.onconnectionstatechange = () => this.onPeerState('sfu-publisher', pc.connectionState);
    const streams = [this.local.stream];
    if (audio) this.tx.audio = pc.addTransceiver(audio, {direction: 'sendonly', streams});
    if (video) {
      this.tx.video = pc.addTransceiver(video, {direction: 'sendonly', streams, sendEncodings: cameraEncodings(this.options)});
    }
    if (this.screen) this.addScreen(this.screen);
    await this.offer();
  }

  addScreen(stream) {
    const track = stream.getVideoTracks()[0];
    if (!track || !this.pub) return;
    if (this.tx.screen) {
      this.tx.screen.sender.replaceTrack(track);
      if (this.tx.screen.sender.setStreams) this.tx.screen.sender.setStreams(stream);
      this.tx.screen.direction = 'sendonly';
    } else {
      this.tx.screen = this.pub.addTransceiver(track, {direction: 'sendonly', streams: [stream]});
    }
  }

  async offer() {
    const pc = this.pub;
    if (!pc) return;
    await pc.setLocalDescription();
    const sources = {};
    if (this.tx.screen && this.tx.screen.mid) sources[this.tx.screen.mid] = 'screen';
    this.send({type: 'sfu_publish', sdp: pc.localDescription.sdp, sources});
    await this.until(pc, () => pc.signalingState === 'stable' || pc.signalingState === 'closed', 15000);
  }

  async onPublished(msg) {
    const pc = this.pub;
    if (pc && pc.signalingState === 'have-local-offer') await pc.setRemoteDescription({type: 'answer', sdp: msg.sdp});
  }

  // Wait (without blocking the chain forever) until `cond()` holds; checks on every signaling state change.
  until(pc, cond, timeoutMs) {
    if (cond()) return Promise.resolve();
    return new Promise(resolve => {
      const done = () => { clearTimeout(timer); pc.removeEventListener('signalingstatechange', check); resolve(); };
      const check = () => { if (cond()) done(); };
      const timer = setTimeout(done, timeoutMs);
      pc.addEventListener('signalingstatechange', check);
    });
  }

  trickle(which, pc, candidate) {
    if (which === 'publisher' ? pc !== this.pub : pc !== this.sub) return;
    this.send({type: 'sfu_candidate', pc: which, candidate: candidate && candidate.candidate ? candidate.candidate : null,
               sdpMid: candidate ? candidate.sdpMid : null, sdpMLineIndex: candidate ? candidate.sdpMLineIndex : null});
  }

  // ----------------------------------------------------------------------------------- subscriber
  async onOffer(msg) {
    if (!this.sub || msg.subscription !== this.subscription) {
      if (this.sub) { try { this.sub.close(); } catch {} }
      this.attached.clear();
      const pc = this.sub = new RTCPeerConnection({iceServers: this.iceServers});
      this.subscription = msg.subscription;
      pc.onicecandidate = ({candidate}) => this.trickle('subscriber', pc, candidate);
      pc.ontrack = () => this.refresh();
      pc.onconnectionstatechange = () => this.onPeerState('sfu-subscriber', pc.connectionState);
    }
    this.streams = new Map(msg.streams.map(s => [s.mid, s]));
    const pc = this.sub;
    await pc.setRemoteDescription({type: 'offer', sdp: msg.sdp});
    await pc.setLocalDescription();
    this.send({type: 'sfu_answer', sdp: pc.localDescription.sdp});
    this.refresh();
  }

  // Group the subscriber's receivers by participant and source; hand changed streams to the page.
  refresh() {
    if (!this.sub) return;
    const groups = new Map();
    for (const tx of this.sub.getTransceivers()) {
      const s = this.streams.get(tx.mid);
      if (!s || !s.active || !s.participantId || tx.stopped) continue;
      const key = `${s.participantId}:${s.source === 'screen' ? 'screen' : 'camera'}`;
      if (!groups.has(key)) groups.set(key, {id: s.participantId, source: s.source === 'screen' ? 'screen' : 'camera', tracks: []});
      groups.get(key).tracks.push(tx.receiver.track);
    }
    for (const [key, g] of groups) {
      const ids = g.tracks.map(t => t.id).sort().join(',');
      const prev = this.attached.get(key);
      if (prev && prev.ids === ids) continue;
      const stream = new MediaStream(g.tracks);
      this.attached.set(key, {stream, ids});
      this.onRemoteMedia(g.id, g.source, stream);
    }
    for (const key of [...this.attached.keys()]) if (!groups.has(key)) this.attached.delete(key);
  }

  // --------------------------------------------------------------------------------------- restart
  async restart() {
    this.restarts += 1;
    if (this.sub) { try { this.sub.close(); } catch {} }
    this.sub = null;
    this.subscription = 0;
    this.attached.clear();
    this.streams.clear();
    if (this.sends) await this.publish();
    else if (this.pub) { try { this.pub.close(); } catch {} this.pub = null; }
  }

  // ------------------------------------------------------------------------------- local changes
  trackChanged(kind, track) {
    const tx = this.tx[kind];
    if (tx && this.sends) tx.sender.replaceTrack(track);
    else if (!tx && this.sends && track) this.enqueue(() => this.publish());  // a device appeared
  }

  async setScreen(stream) {
    this.screen = stream;
    if (!this.sends) return;
    await this.enqueue(async () => {
      if (!this.pub) { await this.publish(); return; }
      if (stream) this.addScreen(stream);
      else if (this.tx.screen) { await this.tx.screen.sender.replaceTrack(null); this.tx.screen.direction = 'inactive'; }
      await this.offer();
    });
  }

  peerConnections() { return [this.pub, this.sub].filter(Boolean); }

  // {peers: {participantId: {...}}, publisher: {...}}: per remote participant, what we receive from them.
  async summary() {
    const peers = {};
    const inbound = [];  // one entry per receiving m-line: {mid, participantId, kind, source, bytesReceived, ...}
    const blank = () => ({connectionState: this.sub ? this.sub.connectionState : 'new',
                          audio: {bytesReceived: 0, packetsReceived: 0, totalSamplesReceived: 0},
                          video: {bytesReceived: 0, framesDecoded: 0, frameWidth: 0, frameHeight: 0},
                          screen: {bytesReceived: 0, framesDecoded: 0},
                          sent: {audioBytes: 0, videoBytes: 0, screenBytes: 0}});
    if (this.sub) {
      for (const tx of this.sub.getTransceivers()) {
        const s = this.streams.get(tx.mid);
        if (!s || !s.active || !s.participantId) continue;
        const out = peers[s.participantId] || (peers[s.participantId] = blank());
        let stats;
        try { stats = await tx.receiver.getStats(); } catch { continue; }
        stats.forEach(r => {
          if (r.type !== 'inbound-rtp') return;
          inbound.push({mid: tx.mid, participantId: s.participantId, kind: s.kind, source: s.source,
                        bytesReceived: r.bytesReceived || 0, framesDecoded: r.framesDecoded || 0,
                        frameWidth: r.frameWidth || 0, frameHeight: r.frameHeight || 0,
                                                                framesSent: r.framesSent || 0, keyFramesEncoded: r.keyFramesEncoded || 0,
                                                                limitation: r.qualityLimitationReason || null});
          if (s.kind === 'audio') {
            out.audio.bytesReceived += r.bytesReceived || 0; out.audio.packetsReceived += r.packetsReceived || 0;
            out.audio.totalSamplesReceived += r.totalSamplesReceived || 0;
          } else if (s.source === 'screen') {
            out.screen.bytesReceived += r.bytesReceived || 0; out.screen.framesDecoded += r.framesDecoded || 0;
          } else {
            out.video.bytesReceived += r.bytesReceived || 0; out.video.framesDecoded += r.framesDecoded || 0;
            out.video.frameWidth = r.frameWidth || 0; out.video.frameHeight = r.frameHeight || 0;
          }
        });
      }
    }
    const publisher = {connectionState: this.pub ? this.pub.connectionState : 'new', restarts: this.restarts,
                       sent: {audioBytes: 0, videoBytes: 0, screenBytes: 0}, layers: []};
    if (this.tx.video) {  // the camera's encodings (simulcast layers): what each one sends
      try {
        (await this.tx.video.sender.getStats()).forEach(r => {
          if (r.type === 'outbound-rtp') publisher.layers.push({rid: r.rid || null, bytesSent: r.bytesSent || 0,
                                                                frameWidth: r.frameWidth || 0, frameHeight: r.frameHeight || 0,
                                                                framesSent: r.framesSent || 0, keyFramesEncoded: r.keyFramesEncoded || 0,
                                                                limitation: r.qualityLimitationReason || null});
        });
      } catch {}
    }
    for (const [kind, key] of [['audio', 'audioBytes'], ['video', 'videoBytes'], ['screen', 'screenBytes']]) {
      const tx = this.tx[kind];
      if (!tx) continue;
      try {
        (await tx.sender.getStats()).forEach(r => { if (r.type === 'outbound-rtp') publisher.sent[key] += r.bytesSent || 0; });
      } catch {}
    }
    return {peers, publisher, subscription: this.subscription, inbound};
  }

  close() {
    this.closed = true;
    for (const pc of [this.pub, this.sub]) { if (pc) { try { pc.close(); } catch {} } }
    this.pub = this.sub = null;
    this.attached.clear();
  }
}
