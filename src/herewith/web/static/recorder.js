// Recorder mode of the room page (`?recorder=1&recordingId=..&ingestToken=..`, opened by the server's pool of
// headless Chromium recorders, herewith/media/recorder.py). It joins with the recorder room key (role
// `recorder`: receives like a viewer, sends nothing, shown in no grid), draws the room's grid (composite.js)
// into a 1280x720 canvas, mixes everyone's audio, and streams to the server's ingest WebSocket:
//   stream=composite        canvas.captureStream(25) + the mix, MediaRecorder video/webm;codecs=h264,opus
//                           (vp8,opus where there is no H.264 encoder: composite.js), a chunk every 1000 ms
//   stream=<participantId>  that participant's audio alone, audio/webm;codecs=opus, after a text frame
//                           {"type": "meta", "displayName", "startedAt"} (startedAt: epoch milliseconds)
// Stop (the pool calls `window.herewithRecorder.stop()` before closing the page; or the `recording` state
// becomes stopped/failed; or the meeting ends): the MediaRecorders stop (their last chunk is sent), then the
// sockets close with 1000 once everything queued has left.
//
// The pool follows the page through `window.herewithRecorderEvent(json)` (a DevTools binding, when present):
// {type: 'joined'|'recording'|'stopped'|'failed', detail?}. Mesh and SFU rooms alike: the page is a
// receive-only member of either media layer.

import {SignalingClient} from './signaling.js';
import {LocalMedia} from './localmedia.js';
import {MeshMedia} from './mesh.js';
import {AudioMix, AUDIO_MIME, CompositeCanvas, compositeMime, gridTiles, shownInGrid, startRecorder} from './composite.js';
import {GridPager} from './grid.js';

const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 25;
const TIMESLICE_MS = 1000;
const VIDEO_BITS_PER_SECOND = 2_500_000;
const AUDIO_BITS_PER_SECOND = 128_000;
const PARTICIPANT_AUDIO_BITS_PER_SECOND = 48_000;
const DRAIN_TIMEOUT_MS = 10_000;   // at most this long waiting for queued chunks to leave at stop
// A MediaRecorder chunk (a second of 1280x720 video can be 300 kB) goes out in frames of at most 32 KiB: the
// server takes WebSocket messages of at most 64 KiB (herewith serve's ws_max_size) and appends frames in order.
const FRAME_BYTES = 32 * 1024;
const STEADY_MS = 5000;            // a connection open this long resets the count of failed reconnects
const JOIN_TIMEOUT_MS = 20_000;

// ----------------------------------------------------------------------------------- ingest socket
// One ingest WebSocket: chunks go out in order, split into frames of at most FRAME_BYTES; while (re)connecting
// they wait in a queue. A socket that drops is reopened (up to 5 failures in a row, backing off); the server
// appends what arrives, in order. Close codes 1000, 1008, 1009 and 4000-4999 from the server are final
// (recording over, refused token, too large).
class IngestSocket {
  constructor(url, {onFatal, first = null}) {
    this.url = url;
    this.onFatal = onFatal || (() => {});
    this.first = first;        // text frame sent first on the first connection only (meta)
    this.queue = [];
    this.ws = null;
    this.attempts = 0;
    this.closing = false;
    this.dead = false;
    this.sentFirst = false;
    this.openedAt = 0;
    this.bytes = 0;
    this.opened = 0;
    this.connect();
  }

  connect() {
    const ws = this.ws = new WebSocket(this.url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      this.openedAt = performance.now();
      this.opened += 1;
      if (this.first && !this.sentFirst) { ws.send(this.first); this.sentFirst = true; }
      this.flush();
    };
    ws.onclose = ev => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closing) return;
      if (this.openedAt && performance.now() - this.openedAt > STEADY_MS) this.attempts = 0;
      this.openedAt = 0;
      const final = [1000, 1008, 1009].includes(ev.code) || (ev.code >= 4000 && ev.code < 5000);
      if (final || this.attempts >= 5) {
        this.dead = true;
        this.onFatal(`ingest closed (${ev.code} ${ev.reason || ''})`.trim());
        return;
      }
      this.attempts += 1;
      setTimeout(() => { if (!this.closing && !this.dead) this.connect(); }, Math.min(4000, 250 * 2 ** this.attempts));
    };
    ws.onerror = () => {};
  }

  flush() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    while (this.queue.length) {
      const item = this.queue.shift();
      ws.send(item);
      this.bytes += item.size || item.length || 0;
    }
  }

  send(item) {
    if (this.dead) return;
    if (item instanceof Blob && item.size > FRAME_BYTES) {
      for (let at = 0; at < item.size; at += FRAME_BYTES) this.queue.push(item.slice(at, at + FRAME_BYTES));
    } else {
      this.queue.push(item);
    }
    this.flush();
  }

  // Wait until everything queued left this browser (bufferedAmount 0), then close with 1000.
  async close(timeoutMs = DRAIN_TIMEOUT_MS) {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline && !this.dead
           && (this.queue.length || !this.ws || this.ws.readyState !== WebSocket.OPEN || this.ws.bufferedAmount > 0)) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.flush();
      await new Promise(r => setTimeout(r, 50));
    }
    this.closing = true;
    if (this.ws) { try { this.ws.close(1000, 'done'); } catch {} }
  }
}

// ---------------------------------------------------------------------------------------- recorder
export function runRecorder(config, params) {
  const recordingId = params.get('recordingId') || '';
  const token = params.get('ingestToken') || '';
  const roomKey = params.get('roomKey');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ingestUrl = (stream, mime) => `${proto}//${location.host}/record/ingest/${encodeURIComponent(recordingId)}`
    + `?token=${encodeURIComponent(token)}&stream=${encodeURIComponent(stream)}&mime=${encodeURIComponent(mime)}`;

  const status = {phase: 'starting', self: null, error: null, events: [], streams: {}};
  const participants = new Map();   // id -> participant (everyone else in the room)
  const remote = new Map();         // `${id}:${source}` -> {stream, el}
  const perParticipant = new Map(); // id -> {socket, rec}
  const holder = document.createElement('div');
  let media = null;
  let mix = null;
  let composite = null;
  let compositeSink = null;
  let stopping = null;

  const report = (type, detail = null) => {
    status.events.push({type, at: Date.now(), detail});
    if (typeof window.herewithRecorderEvent === 'function') {
      try { window.herewithRecorderEvent(JSON.stringify({type, detail})); } catch {}
    }
  };

  // the page shows only the composite: no pre-call screen, no controls
  document.body.classList.add('recorder-mode');
  for (const id of ['precall', 'knock', 'call', 'message']) { const el = document.getElementById(id); if (el) el.hidden = true; }
  holder.className = 'recorder-sources';
  const canvas = document.createElement('canvas');
  canvas.id = 'composite';
  document.body.append(canvas, holder);

  const signaling = new SignalingClient(config.signalUrl, () => ({
    type: 'join', displayName: 'Recorder', roomKey: roomKey || null, deviceId: null,
    userAgent: navigator.userAgent.slice(0, 512), resumeToken: status.resumeToken || null, audio: false, video: false,
  }));

  // The composite is the room page's first page (grid.js): at most 9 tiles, the active speaker brought onto it.
  // The recorder still receives every stream (it sends no sfu_view): each participant's audio is recorded.
  const pager = new GridPager({pageSize: 9});
  function tiles() {
    const people = [...participants.values()].map(p => ({...p, screen: Boolean(p.screen && remote.has(`${p.id}:screen`))}));
    return pager.arrange(gridTiles(people)).tiles.map(t => ({...t, el: remote.has(t.key) ? remote.get(t.key).el : null}));
  }

  function videoFor(key, stream) {
    let entry = remote.get(key);
    if (!entry) {
      const el = document.createElement('video');
      el.muted = true;          // the mix plays nothing aloud; the element keeps the track flowing
      el.autoplay = true;
      el.playsInline = true;
      holder.append(el);
      entry = {stream: null, el};
      remote.set(key, entry);
    }
    if (entry.stream !== stream) {
      entry.stream = stream;
      entry.el.srcObject = stream;
      entry.el.play().catch(() => {});
    }
    return entry;
  }

  function dropRemote(key) {
    const entry = remote.get(key);
    if (!entry) return;
    entry.el.srcObject = null;
    entry.el.remove();
    remote.delete(key);
  }

  function onRemoteMedia(id, source, stream) {
    const key = `${id}:${source}`;
    videoFor(key, stream);
    if (source === 'camera' && mix) {
      const track = stream.getAudioTracks()[0] || null;
      mix.set(id, track);
      ensureParticipantStream(id);
    }
  }

  function ensureParticipantStream(id) {
    if (stopping || perParticipant.has(id) || !mix) return;
    const p = participants.get(id);
    if (!p || !shownInGrid(p)) return;
    const meta = JSON.stringify({type: 'meta', displayName: p.displayName || null, startedAt: Date.now()});
    const socket = new IngestSocket(ingestUrl(id, AUDIO_MIME), {first: meta, onFatal: reason => report('warning', `${id}: ${reason}`)});
    const rec = startRecorder(new MediaStream([mix.output(id)]), {
      mimeType: AUDIO_MIME, timesliceMs: TIMESLICE_MS, audioBitsPerSecond: PARTICIPANT_AUDIO_BITS_PER_SECOND,
      onChunk: blob => socket.send(blob),
    });
    perParticipant.set(id, {socket, rec});
    status.streams[id] = {displayName: p.displayName || null, startedAt: Date.now()};
  }

  async function endParticipantStream(id) {
    const entry = perParticipant.get(id);
    if (!entry) return;
    perParticipant.delete(id);
    await entry.rec.stop();
    if (mix) mix.dropOutput(id);
    await entry.socket.close();
  }

  function startComposite() {
    mix = new AudioMix();
    composite = new CompositeCanvas({width: WIDTH, height: HEIGHT, fps: FPS, tiles, canvas});
    composite.start();
    const video = composite.captureStream().getVideoTracks()[0];
    const mimeType = compositeMime();
    const socket = new IngestSocket(ingestUrl('composite', mimeType), {onFatal: reason => fail(reason)});
    const rec = startRecorder(new MediaStream([video, mix.track]), {
      mimeType, timesliceMs: TIMESLICE_MS, videoBitsPerSecond: VIDEO_BITS_PER_SECOND,
      audioBitsPerSecond: AUDIO_BITS_PER_SECOND,
      onChunk: blob => {
        socket.send(blob);
        if (status.phase === 'joined') { status.phase = 'recording'; report('recording'); }
      },
      onError: e => fail(`MediaRecorder: ${e && e.name ? e.name : e}`),
    });
    compositeSink = {socket, rec};
  }

  function fail(reason) {
    if (stopping) return;
    status.error = String(reason);
    console.error('recorder failed:', reason);
    report('failed', status.error);
    stop();
  }

  // Stop everything in order: recorders first (final chunks), then the sockets (drained), then leave.
  function stop() {
    if (stopping) return stopping;
    stopping = (async () => {
      if (status.phase !== 'failed') status.phase = 'stopping';
      const recs = [...perParticipant.values()].map(e => e.rec.stop());
      if (compositeSink) recs.push(compositeSink.rec.stop());
      await Promise.all(recs);
      if (composite) composite.stop();
      const sockets = [...perParticipant.values()].map(e => e.socket.close());
      if (compositeSink) sockets.push(compositeSink.socket.close());
      await Promise.all(sockets);
      perParticipant.clear();
      if (media) { media.close(); media = null; }
      signaling.send({type: 'leave'});
      signaling.close();
      if (mix) { mix.close(); mix = null; }
      if (!status.error) status.phase = 'stopped';
      report('stopped', status.error);
      return {error: status.error, bytes: compositeSink ? compositeSink.socket.bytes : 0};
    })();
    return stopping;
  }

  async function onJoined(m) {
    if (media) { media.close(); media = null; }  // a reconnect: the media layer starts over
    status.self = m.participantId;
    status.role = m.role;
    status.resumeToken = m.resumeToken;
    // after a signaling reconnect: whoever left meanwhile is gone from the grid and their stream ends
    const present = new Set(m.participants.map(p => p.id));
    for (const id of [...participants.keys()]) if (!present.has(id)) participantGone(id);
    for (const key of [...remote.keys()]) dropRemote(key);  // the new media layer brings the streams again
    for (const p of m.participants) participants.set(p.id, p);
    let Layer = MeshMedia;
    if (m.room.media === 'sfu') Layer = (await import('./sfu.js')).SfuMedia;
    media = new Layer({send: msg => signaling.send(msg), local: new LocalMedia(), iceServers: m.iceServers,
                       selfId: m.participantId, sends: false, onRemoteMedia, onPeerState: () => {}});
    media.start(m.participants);
    if (!compositeSink) {
      startComposite();
      status.phase = 'joined';
      report('joined');
    }
    for (const p of m.participants) ensureParticipantStream(p.id);
  }

  const stopFor = rid => !rid || rid === recordingId;
  const sfuBuffered = [];  // SFU offers that arrive while sfu.js is still loading
  signaling.on('joined', m => { onJoined(m).then(() => { for (const msg of sfuBuffered.splice(0)) media && media.signal(msg); }).catch(e => fail(e)); });
  signaling.on('participant_joined', m => {
    participants.set(m.participant.id, m.participant);
    if (media) media.participantJoined(m.participant);
    ensureParticipantStream(m.participant.id);
  });
  signaling.on('participant_updated', m => {
    participants.set(m.participant.id, m.participant);
    if (media) media.participantUpdated(m.participant);
    if (!m.participant.screen) dropRemote(`${m.participant.id}:screen`);
    ensureParticipantStream(m.participant.id);
  });
  function participantGone(id) {
    participants.delete(id);
    if (media) media.participantLeft(id);
    if (mix) mix.set(id, null);
    dropRemote(`${id}:camera`);
    dropRemote(`${id}:screen`);
    endParticipantStream(id);
  }
  signaling.on('participant_left', m => participantGone(m.participantId));
  signaling.on('active_speaker', m => pager.speaker(m.participantId));
  for (const t of ['offer', 'answer', 'candidate']) signaling.on(t, m => { if (media) media.signal(m); });
  for (const t of ['sfu_published', 'sfu_offer', 'sfu_restart']) signaling.on(t, m => { if (media) media.signal(m); else sfuBuffered.push(m); });
  signaling.on('recording', m => { if (['stopped', 'failed'].includes(m.state) && stopFor(m.recordingId)) stop(); });
  signaling.on('ended', () => stop());
  signaling.on('removed', () => stop());
  signaling.on('error', m => {
    if (['room_full', 'room_gone', 'room_not_found', 'forbidden'].includes(m.code) && !compositeSink) fail(`${m.code}: ${m.message}`);
  });
  signaling.on('closed', m => { if (m.final && !stopping) (compositeSink ? stop() : fail(`signaling closed (${m.code})`)); });

  setTimeout(() => { if (!compositeSink && !stopping) fail('did not join in time'); }, JOIN_TIMEOUT_MS);
  window.addEventListener('pagehide', () => { stop(); });

  window.herewithRecorder = {
    get phase() { return status.phase; },
    get error() { return status.error; },
    events: () => status.events.slice(),
    streams: () => ({...status.streams}),
    tiles: () => tiles().map(t => ({key: t.key, label: t.label, hasVideo: Boolean(t.el && t.el.videoWidth)})),
    stats: () => ({frames: composite ? composite.frames : 0, lastDrawMs: composite ? composite.lastDrawMs : 0,
                   bytes: compositeSink ? compositeSink.socket.bytes : 0,
                   chunks: compositeSink ? compositeSink.rec.stats.chunks : 0,
                   participants: [...perParticipant.keys()]}),
    stop,
  };
  signaling.connect();
}
