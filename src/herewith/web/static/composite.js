// The room's grid, in one place: which tiles a room shows, where they go, and (for recordings) drawing them
// into a canvas and mixing everyone's audio. The room page lays out its <video> tiles with it; the cloud
// recorder (recorder.js) and a host's local recording draw the same layout into a 1280x720 canvas.
//
//   const tiles = gridTiles(people);                  // [{key, id, source, label, audio, video, self}]
//   const rects = gridLayout(tiles, 1280, 720);       // Map key -> {x, y, w, h, large} in pixels
//   const comp = new CompositeCanvas({width: 1280, height: 720, fps: 25, tiles: () => [...]});
//   comp.start(); const stream = comp.captureStream();  // a video track of the composite
//   const mix = new AudioMix(); mix.set('ann', track); mix.track   // everyone's audio as one track
//   const rec = startRecorder(stream, {mimeType: compositeMime(), timesliceMs: 1000, onChunk: blob => ...});
//   await rec.stop();
//
// Layout rules: screen shares first and large (the first one fills most of the frame, the rest go in a
// strip beside it); otherwise an equal grid whose column count makes the 16:9 tiles as large as possible.
// Participants with role `recorder` or `captioner` and receive-only participants (viewers) never get a tile.

export const ASPECT = 16 / 9;
export const RECORDER_ROLE = 'recorder';
export const CAPTIONER_ROLE = 'captioner';  // the server's live captioner: its captions show under the tiles

// True for people who appear in the grid: not the recorder, and sending media (viewers only watch).
export function shownInGrid(p) {
  return Boolean(p) && p.role !== RECORDER_ROLE && p.role !== CAPTIONER_ROLE && p.sends !== false;
}

// The people list shows everyone but the recorder and the captioner (their indicators tell instead).
export function shownInPeople(p) {
  return Boolean(p) && p.role !== RECORDER_ROLE && p.role !== CAPTIONER_ROLE;
}

// people: [{id, role, sends, displayName, audio, video, screen, self}] in join order (self first on the room
// page). Returns the tiles in display order: screen shares, then cameras.
export function gridTiles(people) {
  const screens = [];
  const cameras = [];
  for (const p of people) {
    if (!shownInGrid(p)) continue;
    const name = p.displayName || 'Guest';
    cameras.push({key: `${p.id}:camera`, id: p.id, source: 'camera', self: Boolean(p.self),
                  label: p.self ? `${name} (you)` : name, displayName: name,
                  audio: Boolean(p.audio), video: Boolean(p.video)});
    if (p.screen) {
      screens.push({key: `${p.id}:screen`, id: p.id, source: 'screen', self: Boolean(p.self),
                    label: p.self ? 'Your screen' : `${name}'s screen`, displayName: name, audio: true, video: true});
    }
  }
  return [...screens, ...cameras];
}

// Equal grid of n tiles of `aspect` in a width x height box: the column count giving the largest tiles.
function bestGrid(n, width, height, gap, aspect) {
  let best = {cols: 1, rows: n, w: 0, h: 0};
  for (let cols = 1; cols <= n; cols += 1) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * aspect);
    if (w > best.w) best = {cols, rows, w, h: w / aspect};
  }
  return best;
}

function placeGrid(tiles, box, gap, aspect, out) {
  const n = tiles.length;
  if (n === 0) return;
  const g = bestGrid(n, box.w, box.h, gap, aspect);
  const usedH = g.rows * g.h + gap * (g.rows - 1);
  const top = box.y + (box.h - usedH) / 2;
  tiles.forEach((t, i) => {
    const row = Math.floor(i / g.cols);
    const inRow = row === g.rows - 1 ? n - row * g.cols : g.cols;  // the last row is centred
    const col = i - row * g.cols;
    const rowW = inRow * g.w + gap * (inRow - 1);
    const left = box.x + (box.w - rowW) / 2;
    out.set(t.key, {x: left + col * (g.w + gap), y: top + row * (g.h + gap), w: g.w, h: g.h, large: false});
  });
}

// Map tile key -> {x, y, w, h, large} (pixels of a width x height area; gap in pixels between tiles).
export function gridLayout(tiles, width, height, {gap = 8, aspect = ASPECT, stripShare = 0.22} = {}) {
  const out = new Map();
  if (!tiles.length || width <= 0 || height <= 0) return out;
  const main = tiles.find(t => t.source === 'screen');
  if (!main) {
    placeGrid(tiles, {x: 0, y: 0, w: width, h: height}, gap, aspect, out);
    return out;
  }
  const rest = tiles.filter(t => t !== main);
  if (!rest.length) {
    out.set(main.key, {x: 0, y: 0, w: width, h: height, large: true});
    return out;
  }
  if (width >= height) {  // landscape: the share on the left, everyone else in a column on the right
    const stripW = Math.max(120, Math.round(width * stripShare));
    out.set(main.key, {x: 0, y: 0, w: width - stripW - gap, h: height, large: true});
    placeGrid(rest, {x: width - stripW, y: 0, w: stripW, h: height}, gap, aspect, out);
  } else {                // portrait (a phone): the share on top, the others below
    const stripH = Math.max(90, Math.round(height * 0.3));
    out.set(main.key, {x: 0, y: 0, w: width, h: height - stripH - gap, large: true});
    placeGrid(rest, {x: 0, y: height - stripH, w: width, h: stripH}, gap, aspect, out);
  }
  return out;
}

export function initials(name) {
  return (name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map(w => w[0].toUpperCase()).join('') || '?';
}

// --------------------------------------------------------------------------------------------- timer
// A steady tick that keeps going in a background tab (page timers are throttled to 1 Hz there, worker
// timers are not): a local recording must not drop to one frame a second when the host switches tabs.
class Ticker {
  constructor(intervalMs, fn) {
    this.fn = fn;
    this.intervalMs = intervalMs;
    this.worker = null;
    this.timer = null;
  }

  start() {
    try {
      this.worker = new Worker(new URL('./ticker-worker.js', import.meta.url));
      this.worker.onmessage = () => this.fn();
      this.worker.postMessage(this.intervalMs);
    } catch {
      this.worker = null;
      this.timer = setInterval(() => this.fn(), this.intervalMs);
    }
  }

  stop() {
    if (this.worker) { this.worker.terminate(); this.worker = null; }
    clearInterval(this.timer);
    this.timer = null;
  }
}

// ------------------------------------------------------------------------------------------- drawing
const COLORS = {background: '#111318', tile: '#262a33', text: '#eef0f4', muted: '#9aa3b2', label: 'rgba(0,0,0,0.62)', danger: '#e5484d'};

// Draws the grid into a canvas `fps` times a second. `tiles()` returns the current tiles (gridTiles output)
// each with `el`: the <video> holding its stream, or null (an avatar with initials is drawn instead).
export class CompositeCanvas {
  constructor({width = 1280, height = 720, fps = 25, tiles, canvas = null, gap = 8}) {
    this.width = width;
    this.height = height;
    this.fps = fps;
    this.tiles = tiles;
    this.gap = gap;
    this.canvas = canvas || document.createElement('canvas');
    this.canvas.width = width;
    this.canvas.height = height;
    this.ctx = this.canvas.getContext('2d', {alpha: false});
    this.ticker = new Ticker(Math.round(1000 / fps), () => this.draw());
    this.frames = 0;           // frames drawn
    this.lastDrawMs = 0;       // time the last draw took, milliseconds
  }

  start() { this.draw(); this.ticker.start(); }

  stop() { this.ticker.stop(); }

  // A MediaStream whose video track is the canvas: a frame each time it is drawn (`fps` times a second). No
  // rate cap here: captureStream(fps) drops a frame that comes a little early after a late one, and on a busy
  // machine that cost a recording a fifth of its frames.
  captureStream() { return this.canvas.captureStream(); }

  draw() {
    const t0 = performance.now();
    const ctx = this.ctx;
    ctx.fillStyle = COLORS.background;
    ctx.fillRect(0, 0, this.width, this.height);
    const tiles = this.tiles() || [];
    const rects = gridLayout(tiles, this.width - 2 * this.gap, this.height - 2 * this.gap, {gap: this.gap});
    for (const t of tiles) {
      const r = rects.get(t.key);
      if (r) this.drawTile(t, {...r, x: r.x + this.gap, y: r.y + this.gap});
    }
    this.frames += 1;
    this.lastDrawMs = performance.now() - t0;
  }

  drawTile(t, r) {
    const ctx = this.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.roundRect(r.x, r.y, r.w, r.h, Math.min(12, r.h / 12));
    ctx.clip();
    ctx.fillStyle = t.source === 'screen' ? '#000' : COLORS.tile;
    ctx.fillRect(r.x, r.y, r.w, r.h);
    const v = t.el;
    const showVideo = v && v.readyState >= 2 && v.videoWidth > 0 && (t.source === 'screen' || t.video);
    if (showVideo) {
      const vw = v.videoWidth;
      const vh = v.videoHeight;
      // cameras fill the tile (cropped), screens fit inside it (nothing of a shared screen is cut off)
      const scale = t.source === 'screen' ? Math.min(r.w / vw, r.h / vh) : Math.max(r.w / vw, r.h / vh);
      const dw = vw * scale;
      const dh = vh * scale;
      ctx.drawImage(v, r.x + (r.w - dw) / 2, r.y + (r.h - dh) / 2, dw, dh);
    } else if (t.source !== 'screen') {
      const radius = Math.min(r.w, r.h) * 0.18;
      ctx.fillStyle = '#394050';
      ctx.beginPath();
      ctx.arc(r.x + r.w / 2, r.y + r.h / 2, radius, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = COLORS.text;
      ctx.font = `600 ${Math.round(radius * 0.8)}px system-ui, sans-serif`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(initials(t.displayName), r.x + r.w / 2, r.y + r.h / 2);
    }
    this.drawLabel(t, r);
    ctx.restore();
  }

  drawLabel(t, r) {
    const ctx = this.ctx;
    const size = Math.round(Math.max(12, Math.min(22, r.h / 14)));
    ctx.font = `${size}px system-ui, sans-serif`;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    const text = t.label || t.displayName || 'Guest';
    const pad = Math.round(size * 0.45);
    const muted = t.source === 'camera' && !t.audio;
    const icon = muted ? size : 0;
    const maxText = r.w - 3 * pad - icon - 2 * size;
    let shown = text;
    while (shown.length > 1 && ctx.measureText(shown).width > maxText) shown = shown.slice(0, -2) + '…';
    const w = ctx.measureText(shown).width + 2 * pad + (muted ? icon + pad : 0);
    const h = size + 2 * pad * 0.8;
    const x = r.x + size * 0.5;
    const y = r.y + r.h - h - size * 0.5;
    ctx.fillStyle = COLORS.label;
    ctx.beginPath();
    ctx.roundRect(x, y, w, h, 6);
    ctx.fill();
    ctx.fillStyle = COLORS.text;
    ctx.fillText(shown, x + pad, y + h / 2);
    if (muted) {  // a red crossed-out circle: this person's microphone is off
      const cx = x + w - pad - icon / 2;
      const cy = y + h / 2;
      ctx.strokeStyle = COLORS.danger;
      ctx.lineWidth = Math.max(2, size / 8);
      ctx.beginPath();
      ctx.arc(cx, cy, icon * 0.4, 0, 2 * Math.PI);
      ctx.moveTo(cx - icon * 0.28, cy - icon * 0.28);
      ctx.lineTo(cx + icon * 0.28, cy + icon * 0.28);
      ctx.stroke();
    }
  }
}

// ---------------------------------------------------------------------------------------------- audio
// Mixes audio tracks into one (a MediaStreamAudioDestinationNode). `set(key, track)` adds, replaces or (with
// null) removes a source; `output(key)` gives a track with only that source, for per-participant files.
// Chromium plays a remote WebRTC track into WebAudio only while the track is also attached to a media
// element: callers keep each remote stream on a (muted) <video> or <audio>.
export class AudioMix {
  constructor({sampleRate = 48000} = {}) {
    // 'interactive' (the smallest buffer): the audio then leaves the mix as soon as the video frames do; with
    // 'playback' the recording's sound lagged its picture by ~80 ms (one ~85 ms buffer at 48 kHz).
    this.ctx = new AudioContext({sampleRate, latencyHint: 'interactive'});
    this.dest = this.ctx.createMediaStreamDestination();
    this.sources = new Map();   // key -> {track, node}
    this.outputs = new Map();   // key -> MediaStreamAudioDestinationNode
    this.resume();
  }

  resume() {
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  get track() { return this.dest.stream.getAudioTracks()[0]; }

  // A track carrying only `key`'s audio (silence until a source is set); stable across `set` calls.
  output(key) {
    let out = this.outputs.get(key);
    if (!out) {
      out = this.ctx.createMediaStreamDestination();
      this.outputs.set(key, out);
      const s = this.sources.get(key);
      if (s) s.node.connect(out);
    }
    return out.stream.getAudioTracks()[0];
  }

  set(key, track) {
    const cur = this.sources.get(key);
    if (cur && track && cur.track === track) return;
    if (cur) { try { cur.node.disconnect(); } catch {} this.sources.delete(key); }
    if (!track || track.readyState === 'ended') return;
    const node = this.ctx.createMediaStreamSource(new MediaStream([track]));
    node.connect(this.dest);
    const out = this.outputs.get(key);
    if (out) node.connect(out);
    this.sources.set(key, {track, node});
    this.resume();
  }

  // Keep exactly the sources in `tracks` (a Map key -> track).
  sync(tracks) {
    for (const key of [...this.sources.keys()]) if (!tracks.has(key)) this.set(key, null);
    for (const [key, track] of tracks) this.set(key, track);
  }

  dropOutput(key) {
    const out = this.outputs.get(key);
    if (!out) return;
    const s = this.sources.get(key);
    if (s) { try { s.node.disconnect(out); } catch {} }
    this.outputs.delete(key);
  }

  close() {
    for (const s of this.sources.values()) { try { s.node.disconnect(); } catch {} }
    this.sources.clear();
    this.ctx.close().catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------ recording
// The composite's format: H.264 in WebM (Matroska) where the browser has an H.264 encoder (Chromium: OpenH264),
// else VP8. A 1280x720 canvas at 25 fps on a 2-core machine (bench/recording.py --encoders): OpenH264 kept 25
// fps with ~0.25 core in every run; libvpx VP8 needed 0.3-0.6 core when the machine was quiet, and on a busy
// one took a whole core and still fell to 6-12 fps. An mp4 can also keep H.264 as it is. Both are Matroska:
// a file cut short plays up to its last chunk.
export const COMPOSITE_MIMES = ['video/webm;codecs=h264,opus', 'video/webm;codecs=vp8,opus', 'video/webm'];
export const AUDIO_MIME = 'audio/webm;codecs=opus';
export const KEYFRAME_INTERVAL_MS = 2000;  // a keyframe every 2 s: the file can be cut and seeked anywhere

export function compositeMime() {
  return COMPOSITE_MIMES.find(t => MediaRecorder.isTypeSupported(t)) || '';
}

// Records `stream` with MediaRecorder, handing each chunk (a Blob, every `timesliceMs` milliseconds) to
// `onChunk`. `stop()` resolves after the last chunk was handed over (at most `stopTimeoutMs` later).
export function startRecorder(stream, {mimeType, timesliceMs = 1000, onChunk, videoBitsPerSecond, audioBitsPerSecond,
                                       onError, stopTimeoutMs = 5000}) {
  const options = {mimeType, videoKeyFrameIntervalDuration: KEYFRAME_INTERVAL_MS};
  if (videoBitsPerSecond) options.videoBitsPerSecond = videoBitsPerSecond;
  if (audioBitsPerSecond) options.audioBitsPerSecond = audioBitsPerSecond;
  const recorder = new MediaRecorder(stream, options);
  let stopped = null;
  const stats = {chunks: 0, bytes: 0, startedAt: Date.now()};
  recorder.ondataavailable = ev => {
    if (ev.data && ev.data.size > 0) {
      stats.chunks += 1;
      stats.bytes += ev.data.size;
      onChunk(ev.data);
    }
  };
  recorder.onerror = ev => { if (onError) onError(ev.error || ev); };
  recorder.start(timesliceMs);
  return {
    recorder, stats,
    stop() {
      if (stopped) return stopped;
      stopped = new Promise(resolve => {
        if (recorder.state === 'inactive') { resolve(); return; }
        const timer = setTimeout(resolve, stopTimeoutMs);
        // `stop` fires after the final `dataavailable`
        recorder.addEventListener('stop', () => { clearTimeout(timer); resolve(); }, {once: true});
        try { recorder.stop(); } catch { clearTimeout(timer); resolve(); }
      });
      return stopped;
    },
  };
}
