// Recording controls of the room page: the host's Start/Stop button, the indicator everyone sees, the
// start prompt, short notices, and local recording (the host's browser records the composite itself).
//
//   const rec = new RecordingControls({send, notice, roomName, sources: {tiles, audio}});
//   rec.joined(joinedMessage, role);   // `joined` carries recording and recordingOptions
//   rec.update(recordingMessage);      // {type: 'recording', state, recordingId, message}
//   rec.render(role);                  // after role changes
//
// Cloud recording (`recordingOptions.type === 'cloud'`): the button sends `recording_start` / `recording_stop`;
// the server answers with `recording` states (starting, recording, stopped, failed, unavailable). The
// indicator shows while the state is `recording`: the server says so only once media is being written.
// Local recording (`type === 'local'`): the same composite (composite.js: the grid drawn into a 1280x720
// canvas, everyone's audio mixed) recorded with MediaRecorder in this browser; on stop the host gets a
// WebM file through a download link (a Blob URL). Nothing is uploaded; other people are not told.

import {AudioMix, CompositeCanvas, compositeMime, startRecorder} from './composite.js';

const $ = id => document.getElementById(id);
const LOCAL_VIDEO_BITS_PER_SECOND = 2_000_000;   // ~0.9 GB an hour, held in memory until the download

export class RecordingControls {
  // send(msg): signaling; notice(text): a short message in the call; sources.tiles(): the grid's tiles with
  // their <video> elements; sources.audio(): Map key -> audio track of everyone to mix (local recording).
  constructor({send, notice, roomName, sources}) {
    this.send = send;
    this.notice = notice;
    this.roomName = (roomName || 'meeting').replace(/^\//, '');
    this.sources = sources;
    this.options = {type: 'none', startTrigger: null};
    this.cloud = {state: null, recordingId: null};
    this.local = null;          // {rec, composite, mix, chunks, timer, startedAt} while recording locally
    this.role = null;
    this.prompted = false;
    this.lastDownload = null;   // {url, name, size, type} of the last local recording
    $('record').onclick = () => this.toggle();
    $('rec-prompt-start').onclick = () => { this.closePrompt(); this.start(); };
    $('rec-prompt-later').onclick = () => this.closePrompt();
  }

  get isHost() { return this.role === 'host'; }
  get cloudActive() { return ['starting', 'recording'].includes(this.cloud.state); }
  get active() { return this.options.type === 'local' ? Boolean(this.local) : this.cloudActive; }

  joined(m, role) {
    this.role = role;
    const o = m.recordingOptions || {};
    this.options = {type: o.type || 'none', startTrigger: o.startTrigger || null};
    if (m.recording) this.cloud = {state: m.recording.state || null, recordingId: m.recording.recordingId || null};
    else this.cloud = {state: null, recordingId: null};
    this.render(role);
    if (this.isHost && !this.prompted && this.options.startTrigger === 'prompt' && ['cloud', 'local'].includes(this.options.type)
        && !this.active) {
      this.prompted = true;
      this.openPrompt();
    }
  }

  update(m) {
    const before = this.cloud.state;
    this.cloud = {state: m.state, recordingId: m.recordingId || this.cloud.recordingId};
    if (m.state === 'unavailable') {
      this.notice(m.message || 'Recording is not available right now. Try again in a minute.');
      this.cloud.state = before === 'recording' ? before : null;  // sent to the asking host only
    } else if (m.state === 'failed') {
      this.notice(m.message ? `The recording failed: ${m.message}` : 'The recording failed.');
    } else if (m.state === 'recording' && before !== 'recording') {
      this.notice('This meeting is being recorded.');
    } else if (m.state === 'stopped' && before === 'recording') {
      this.notice('Recording stopped.');
    }
    this.render(this.role);
  }

  render(role) {
    this.role = role;
    const button = $('record');
    const type = this.options.type;
    button.hidden = !(this.isHost && (type === 'cloud' || type === 'local'));
    if (type === 'local') {
      button.textContent = this.local ? 'Stop recording' : 'Record';
      button.disabled = false;
    } else {
      button.textContent = this.cloud.state === 'starting' ? 'Starting recording…'
        : this.cloud.state === 'recording' ? 'Stop recording' : 'Record';
      button.disabled = false;
    }
    button.classList.toggle('recording', this.active);
    button.setAttribute('aria-pressed', String(this.active));
    const badge = $('rec-status');
    const showing = this.cloud.state === 'recording' || Boolean(this.local);
    badge.hidden = !showing;
    badge.textContent = this.local && this.cloud.state !== 'recording' ? 'Recording (this browser)' : 'Recording';
  }

  toggle() {
    if (this.active) this.stop(); else this.start();
  }

  start() {
    if (!this.isHost) return;
    if (this.options.type === 'local') { this.startLocal(); return; }
    if (this.options.type !== 'cloud') return;
    this.cloud.state = 'starting';
    this.send({type: 'recording_start'});
    this.render(this.role);
  }

  stop() {
    if (this.options.type === 'local') { this.stopLocal(); return; }
    this.send({type: 'recording_stop'});
  }

  openPrompt() {
    const d = $('rec-prompt');
    $('rec-prompt-text').textContent = this.options.type === 'local'
      ? 'Record this meeting in your browser? You will get a video file when you stop.'
      : 'Start recording this meeting? Everyone will see that it is being recorded.';
    if (typeof d.showModal === 'function') d.showModal(); else d.setAttribute('open', '');
  }

  closePrompt() {
    const d = $('rec-prompt');
    if (typeof d.close === 'function' && d.open) d.close(); else d.removeAttribute('open');
  }

  // ---------------------------------------------------------------------------------- local recording
  startLocal() {
    if (this.local) return;
    const mimeType = compositeMime();
    const mix = new AudioMix();
    const composite = new CompositeCanvas({width: 1280, height: 720, fps: 25, tiles: this.sources.tiles});
    composite.start();
    const syncAudio = () => mix.sync(this.sources.audio());
    syncAudio();
    const timer = setInterval(syncAudio, 500);
    const chunks = [];
    let rec;
    try {
      rec = startRecorder(new MediaStream([composite.captureStream().getVideoTracks()[0], mix.track]), {
        mimeType, timesliceMs: 1000, videoBitsPerSecond: LOCAL_VIDEO_BITS_PER_SECOND,
        onChunk: blob => chunks.push(blob),
        onError: () => { this.notice('The recording stopped because of an error.'); this.stopLocal(); },
      });
    } catch (e) {
      clearInterval(timer); composite.stop(); mix.close();
      this.notice('This browser cannot record the meeting.');
      return;
    }
    this.local = {rec, composite, mix, chunks, timer, mimeType, startedAt: new Date()};
    this.render(this.role);
  }

  async stopLocal() {
    const l = this.local;
    if (!l || l.stopping) return l ? l.stopping : null;
    l.stopping = (async () => {
      await l.rec.stop();
      clearInterval(l.timer);
      l.composite.stop();
      l.mix.close();
      this.local = null;
      this.render(this.role);
      const blob = new Blob(l.chunks, {type: l.mimeType.split(';')[0]});
      const stamp = l.startedAt.toISOString().slice(0, 19).replace(/[:T]/g, '-');
      const name = `${this.roomName}-${stamp}.webm`;
      if (this.lastDownload) URL.revokeObjectURL(this.lastDownload.url);
      const url = URL.createObjectURL(blob);
      this.lastDownload = {url, name, size: blob.size, type: blob.type};
      const a = $('rec-download');
      a.href = url;
      a.download = name;
      a.hidden = false;
      a.click();
      return this.lastDownload;
    })();
    return l.stopping;
  }

  // The meeting ended or this page leaves: a local recording still gets its file.
  finish() {
    if (this.local) this.stopLocal();
    this.closePrompt();
  }
}
