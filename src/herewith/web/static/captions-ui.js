// Live captions on the room page: the host's Start/Stop captions button, and each speaker's caption under
// their tile, or, for a speaker with no tile on the grid page shown (another page; just left), on a line of
// its own with their name at the bottom of the stage (#captions-offstage).
//
//   const captions = new CaptionControls({send, notice});
//   captions.joined(joinedMessage, role);   // `joined` carries captions: {state, startTrigger, liveCaptions, language}
//   captions.update(captionsMessage);       // {type: 'captions', state: starting|on|stopped|failed|unavailable, message}
//   captions.caption(captionMessage);       // {type: 'caption', participantId, displayName, text, final, utteranceId, at}
//   captions.render(role);
//
// The server's captioner (a participant with role `captioner`) sends a speaker's utterance again and again
// as it grows (partial, shown in italics) and once more when it is over (final). A partial replaces the
// speaker's caption; a final stays until the speaker says something else, or CAPTION_HOLD_MS.

const $ = id => document.getElementById(id);
const CAPTION_HOLD_MS = 8000;
const HISTORY = 200;

export class CaptionControls {
  constructor({send, notice}) {
    this.send = send;
    this.notice = notice;
    this.options = null;        // {startTrigger, liveCaptions, language} or null: no live transcription
    this.state = 'off';         // off | starting | on
    this.role = null;
    this.current = new Map();   // participantId -> {text, final, utteranceId, timer}
    this.received = [];         // [{participantId, displayName, text, final, utteranceId, receivedAt}] (test hook)
    $('captions').onclick = () => this.toggle();
  }

  get isHost() { return this.role === 'host'; }
  get active() { return ['starting', 'on'].includes(this.state); }

  joined(m, role) {
    this.role = role;
    this.options = m.captions || null;
    this.state = (m.captions && m.captions.state) || 'off';
    this.render(role);
  }

  update(m) {
    if (m.state === 'unavailable' || m.state === 'failed') {
      if (m.state === 'failed') this.state = 'off';
      this.notice(m.message || 'Live captions are not available');
    } else if (m.state === 'stopped') {
      this.state = 'off';
      this.notice('Live captions stopped');
    } else {
      if (m.state === 'on' && this.state !== 'on') this.notice('Live captions are on');
      this.state = m.state;
    }
    this.render(this.role);
  }

  toggle() {
    if (!this.isHost) return;
    this.send({type: this.active ? 'captions_stop' : 'captions_start'});
  }

  caption(m) {
    this.received.push({participantId: m.participantId, displayName: m.displayName || null, text: m.text,
                        final: Boolean(m.final), utteranceId: m.utteranceId, receivedAt: Date.now()});
    if (this.received.length > HISTORY) this.received.shift();
    const prev = this.current.get(m.participantId);
    if (prev && prev.timer) clearTimeout(prev.timer);
    if (prev && prev.final && prev.utteranceId === m.utteranceId && !m.final) return;  // a late partial
    const entry = {text: m.text, final: Boolean(m.final), utteranceId: m.utteranceId, timer: null,
                   displayName: m.displayName || 'Someone'};
    if (entry.final) entry.timer = setTimeout(() => { this.current.delete(m.participantId); this.paint(m.participantId); }, CAPTION_HOLD_MS);
    this.current.set(m.participantId, entry);
    this.paint(m.participantId);
  }

  // Put the participant's caption under their camera tile (it is kept across the grid's re-renders), or on
  // their line of the off-stage captions when the shown page has no tile of theirs.
  paint(participantId) {
    const tile = document.querySelector(`.tile[data-key="${CSS.escape(participantId + ':camera')}"]`);
    const entry = this.current.get(participantId);
    this.paintOffstage(participantId, tile ? null : entry);
    if (!tile) return;
    let el = tile.querySelector('.caption');
    if (!entry) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement('div');
      el.className = 'caption';
      el.setAttribute('aria-live', 'polite');
      tile.append(el);
    }
    el.textContent = entry.text;
    el.classList.toggle('partial', !entry.final);
    el.dataset.final = String(entry.final);
    el.dataset.utterance = entry.utteranceId;
  }

  paintOffstage(participantId, entry) {
    const box = $('captions-offstage');
    if (!box) return;
    let line = [...box.children].find(el => el.dataset.participant === participantId);
    if (!entry) { if (line) line.remove(); return; }
    if (!line) {
      line = document.createElement('div');
      line.className = 'caption-line';
      line.dataset.participant = participantId;
      line.append(document.createElement('b'), document.createTextNode(''));
      box.append(line);
    }
    line.firstChild.textContent = `${entry.displayName}: `;
    line.lastChild.textContent = entry.text;
    line.classList.toggle('partial', !entry.final);
    line.dataset.final = String(entry.final);
  }

  repaint() { for (const id of this.current.keys()) this.paint(id); }

  render(role) {
    this.role = role;
    const btn = $('captions');
    const enabled = Boolean(this.options && this.options.startTrigger && this.options.startTrigger !== 'none');
    btn.hidden = !(this.isHost && enabled);
    btn.textContent = this.active ? 'Stop captions' : 'Start captions';
    btn.classList.toggle('on', this.active);
    $('captions-status').hidden = this.state !== 'on';
  }
}
