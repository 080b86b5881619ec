// Peer-to-peer mesh media layer (roomMode normal): one RTCPeerConnection per remote participant.
//
// The media-layer interface the page uses (a future sfu.js for roomMode group implements the same):
//   const media = new MeshMedia({send, local, iceServers, selfId, sends, onRemoteMedia, onPeerState});
//   media.start(existingParticipants)   after `joined`
//   media.participantJoined(p)          `participant_joined`
//   media.participantLeft(id)           `participant_left`
//   media.signal(msg)                   `offer` / `answer` / `candidate` addressed to us
//   media.trackChanged(kind, track)     after a device switch
//   await media.setScreen(stream|null)  start/stop screen share (a separate transceiver; renegotiates)
//   await media.summary()               {peers: {id: {...}}} for the test hook
//   media.peerConnections()             for statistics sampling
//   media.close()
//
// Who offers: the newcomer offers to everyone already there; a sender offers to a viewer who joins.
// Viewers never offer and answer receive-only (the server refuses any viewer SDP that sends media).
// The server's live captioner (role `captioner`) is offered our microphone only: one sendonly audio m-line.
// Renegotiation (screen share) uses the "perfect negotiation" pattern; the peer with the smaller id is polite.

export class MeshMedia {
  constructor({send, local, iceServers, selfId, sends, grants, onRemoteMedia, onPeerState}) {
    this.send = send;
    this.grants = grants || {audio: true, video: true, screen: true};  // kinds the room lets us send
    this.local = local;
    this.iceServers = iceServers || [];
    this.selfId = selfId;
    this.sends = sends;
    this.onRemoteMedia = onRemoteMedia || (() => {});
    this.onPeerState = onPeerState || (() => {});
    this.peers = new Map();
    this.participants = new Map();
    this.screen = null;
  }

  start(existing) {
    for (const p of existing) {
      this.participants.set(p.id, p);
      if (this.sends) this.peer(p.id, true);
    }
  }

  participantJoined(p) {
    this.participants.set(p.id, p);
    if (this.sends && !p.sends) this.peer(p.id, true);  // we offer to viewers
  }

  participantUpdated(p) { this.participants.set(p.id, p); }

  participantLeft(id) {
    this.participants.delete(id);
    const peer = this.peers.get(id);
    if (peer) { peer.close(); this.peers.delete(id); }
  }

  peer(id, initiator) {
    let peer = this.peers.get(id);
    if (!peer) {
      peer = new Peer(this, id, initiator);
      this.peers.set(id, peer);
    }
    return peer;
  }

  signal(msg) {
    const from = msg.from;
    if (!from) return;
    if (!this.peers.has(from) && msg.type !== 'offer') return;  // stale answer/candidate of a closed peer
    const peer = this.peer(from, false);
    peer.enqueue(() => peer.handle(msg));
  }

  trackChanged(kind, track) {
    for (const peer of this.peers.values()) peer.setLocalTrack(kind, track);
  }

  async setScreen(stream) {
    this.screen = stream;
    for (const peer of this.peers.values()) peer.setScreen(stream);
  }

  peerConnections() { return [...this.peers.values()].map(p => p.pc); }

  async summary() {
    const peers = {};
    for (const [id, peer] of this.peers) peers[id] = await peer.summary();
    return {peers};
  }

  close() {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
  }
}

class Peer {
  constructor(mesh, remoteId, initiator) {
    this.mesh = mesh;
    this.id = remoteId;
    this.polite = mesh.selfId < remoteId;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.chain = Promise.resolve();
    this.audioTx = null;      // camera/mic transceivers: ours if we offered first, else created by their offer
    this.videoTx = null;
    this.screenTx = null;     // our screen transceiver (sendonly)
    this.remoteScreenTx = null;
    this.closed = false;
    const pc = this.pc = new RTCPeerConnection({iceServers: mesh.iceServers});
    pc.onicecandidate = ({candidate}) => {
      if (candidate && candidate.candidate) {
        mesh.send({type: 'candidate', to: this.id, candidate: candidate.candidate, sdpMid: candidate.sdpMid,
                   sdpMLineIndex: candidate.sdpMLineIndex, usernameFragment: candidate.usernameFragment});
      }
    };
    pc.onnegotiationneeded = () => this.enqueue(() => this.negotiate());
    pc.ontrack = ev => this.onTrack(ev);
    pc.onconnectionstatechange = () => {
      mesh.onPeerState(this.id, pc.connectionState);
      if (pc.connectionState === 'failed') pc.restartIce();
    };
    if (initiator && this.remoteRole() === 'captioner') {
      if (mesh.sends) this.audioTx = pc.addTransceiver(mesh.local.track('audio') || 'audio', {direction: 'sendonly', streams: [mesh.local.stream]});
    } else if (initiator) {
      const dir = mesh.sends ? (this.remoteSends() ? 'sendrecv' : 'sendonly') : 'recvonly';
      const local = mesh.local;
      const init = kind => ({direction: mesh.grants[kind] ? dir : 'recvonly', streams: mesh.sends ? [local.stream] : []});
      this.audioTx = pc.addTransceiver((mesh.sends && local.track('audio')) || 'audio', init('audio'));
      this.videoTx = pc.addTransceiver((mesh.sends && local.track('video')) || 'video', init('video'));
      if (mesh.sends && mesh.screen) this.setScreen(mesh.screen);
    }
  }

  remoteRole() {
    const p = this.mesh.participants.get(this.id);
    return p ? p.role : null;
  }

  remoteSends() {
    const p = this.mesh.participants.get(this.id);
    return !p || p.sends !== false;
  }

  enqueue(fn) {
    this.chain = this.chain.then(fn).catch(e => console.warn('peer', this.id, e));
    return this.chain;
  }

  async negotiate() {
    if (this.closed || !this.mesh.sends) return;  // viewers never offer
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.mesh.send({type: 'offer', to: this.id, sdp: this.pc.localDescription.sdp});
    } finally {
      this.makingOffer = false;
    }
  }

  async handle(msg) {
    if (this.closed) return;
    const pc = this.pc;
    if (msg.type === 'offer' || msg.type === 'answer') {
      const collision = msg.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      await pc.setRemoteDescription({type: msg.type, sdp: msg.sdp});
      if (msg.type === 'offer') {
        this.adoptTransceivers();
        await pc.setLocalDescription();
        this.mesh.send({type: 'answer', to: this.id, sdp: pc.localDescription.sdp});
        if (this.mesh.sends && this.mesh.screen && !this.screenTx) this.setScreen(this.mesh.screen);
      }
    } else if (msg.type === 'candidate') {
      if (!msg.candidate) return;
      try {
        await pc.addIceCandidate({candidate: msg.candidate, sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex,
                                  usernameFragment: msg.usernameFragment});
      } catch (e) {
        if (!this.ignoreOffer) throw e;
      }
    }
  }

  // After their first offer: the first audio and video transceivers carry our microphone and camera.
  adoptTransceivers() {
    const mesh = this.mesh;
    for (const tx of this.pc.getTransceivers()) {
      if (tx === this.screenTx || tx.stopped) continue;
      const kind = tx.receiver.track.kind;
      if (kind === 'audio' && !this.audioTx) this.audioTx = tx;
      else if (kind === 'video' && !this.videoTx) this.videoTx = tx;
    }
    for (const [kind, tx] of [['audio', this.audioTx], ['video', this.videoTx]]) {
      if (!tx) continue;
      if (mesh.sends && mesh.grants[kind]) {
        const track = mesh.local.track(kind);
        if (tx.sender.track !== track) tx.sender.replaceTrack(track);
        if (tx.sender.setStreams) tx.sender.setStreams(mesh.local.stream);
        tx.direction = 'sendrecv';
      } else {
        tx.direction = 'recvonly';
      }
    }
  }

  onTrack(ev) {
    const tx = ev.transceiver;
    const kind = ev.track.kind;
    if (!this.audioTx && kind === 'audio') this.audioTx = tx;
    else if (!this.videoTx && kind === 'video' && tx !== this.screenTx) this.videoTx = tx;
    if (tx === this.audioTx || tx === this.videoTx) {
      const tracks = [this.audioTx, this.videoTx].filter(Boolean).map(t => t.receiver.track);
      this.mesh.onRemoteMedia(this.id, 'camera', new MediaStream(tracks));
    } else if (kind === 'video') {
      this.remoteScreenTx = tx;
      this.mesh.onRemoteMedia(this.id, 'screen', new MediaStream([ev.track]));
    }
  }

  setLocalTrack(kind, track) {
    const tx = kind === 'audio' ? this.audioTx : this.videoTx;
    if (tx && this.mesh.sends) tx.sender.replaceTrack(track);
  }

  setScreen(stream) {
    if (this.remoteRole() === 'captioner') return;  // the captioner gets the microphone only
    const track = stream ? stream.getVideoTracks()[0] : null;
    if (track) {
      if (this.screenTx) {
        this.screenTx.sender.replaceTrack(track);
        if (this.screenTx.sender.setStreams) this.screenTx.sender.setStreams(stream);
        this.screenTx.direction = 'sendonly';
      } else {
        this.screenTx = this.pc.addTransceiver(track, {direction: 'sendonly', streams: [stream]});
      }
    } else if (this.screenTx) {
      this.screenTx.sender.replaceTrack(null);
      this.screenTx.direction = 'inactive';
    }
  }

  async summary() {
    const out = {connectionState: this.pc.connectionState,
                 audio: {bytesReceived: 0, packetsReceived: 0, totalSamplesReceived: 0},
                 video: {bytesReceived: 0, framesDecoded: 0, frameWidth: 0, frameHeight: 0},
                 screen: {bytesReceived: 0, framesDecoded: 0},
                 sent: {audioBytes: 0, videoBytes: 0, screenBytes: 0}};
    const read = async (receiverOrSender, fn) => {
      if (!receiverOrSender) return;
      (await receiverOrSender.getStats()).forEach(fn);
    };
    await read(this.audioTx && this.audioTx.receiver, s => {
      if (s.type === 'inbound-rtp') { out.audio.bytesReceived += s.bytesReceived || 0; out.audio.packetsReceived += s.packetsReceived || 0;
                                     out.audio.totalSamplesReceived += s.totalSamplesReceived || 0; }
    });
    await read(this.videoTx && this.videoTx.receiver, s => {
      if (s.type === 'inbound-rtp') { out.video.bytesReceived += s.bytesReceived || 0; out.video.framesDecoded += s.framesDecoded || 0;
                                     out.video.frameWidth = s.frameWidth || 0; out.video.frameHeight = s.frameHeight || 0; }
    });
    for (const tx of this.pc.getTransceivers()) {
      if (tx === this.audioTx || tx === this.videoTx || tx === this.screenTx || tx.receiver.track.kind !== 'video') continue;
      await read(tx.receiver, s => {
        if (s.type === 'inbound-rtp') { out.screen.bytesReceived += s.bytesReceived || 0; out.screen.framesDecoded += s.framesDecoded || 0; }
      });
    }
    const sent = (tx, key) => read(tx && tx.sender, s => { if (s.type === 'outbound-rtp') out.sent[key] += s.bytesSent || 0; });
    await sent(this.audioTx, 'audioBytes');
    await sent(this.videoTx, 'videoBytes');
    await sent(this.screenTx, 'screenBytes');
    return out;
  }

  close() {
    this.closed = true;
    try { this.pc.close(); } catch {}
  }
}
