// Embedding, the room page's side: the vendor's room URL parameters (what the page shows) and the postMessage
// bridge to the page that embeds this room (embed.js, <herewith-embed>, or any iframe that speaks the same
// messages).
//
//   const options = roomOptions(new URLSearchParams(location.search));   // {chat, people, ..., audio, video}
//   applyRoomOptions(options);                 // data-* on <body>; embed.css hides what is off
//   const bridge = new EmbedBridge(params, commands);   // commands: {toggleCamera(on), knock(), ...}
//   bridge.emit('join', {});                   // a DOM event of the same name on <herewith-embed>
//
// URL parameters (names and meanings of the first vendor's room URL parameters and embed element attributes):
//   minimal                 only the camera and microphone buttons (the ones below are off unless named on)
//   chat, people, screenshare, leaveButton, logo, locking, topToolbar, bottomToolbar
//                           "off" hides that part; present with any other value (or none) shows it
//   background=off          no room background (the embedding page shows through)
//   audio=off, video=off    join with the microphone / camera off
//   cameraAccess=off        never ask for the camera (audio only)
//   precallReview=off       skip the pre-call screen (app.js)
//   lang                    the page's language tag (<html lang>); the interface text is English
//   displayName, externalId, metadata   checked by the server (routes.py) and sent with the join (app.js)
//   embed, embedOrigin      set by <herewith-embed>: the origin of the page that embeds the room
//
// The bridge (origin checks on both sides): the page posts events only to its parent frame and only to one
// origin, `location.ancestorOrigins[0]` where the browser tells it (Chromium, Safari), else the `embedOrigin`
// parameter; when both exist they must agree, otherwise there is no bridge. Commands are taken only from
// `window.parent` and from that origin. Messages: {source: 'herewith', type: 'event', event, detail} out,
// {source: 'herewith-embed', type: 'command', command, args} in.

const ON_OFF = ['chat', 'people', 'screenshare', 'leaveButton', 'logo', 'locking', 'topToolbar', 'bottomToolbar'];
const MINIMAL_OFF = new Set(['chat', 'people', 'screenshare', 'leaveButton', 'logo', 'locking', 'topToolbar']);
const LANG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

const isOff = v => v !== null && v.toLowerCase() === 'off';

// {minimal, chat, people, screenshare, leaveButton, logo, locking, topToolbar, bottomToolbar, background,
//  audio, video, cameraAccess, lang, embed} from the URL: true (shown / on) or false.
export function roomOptions(params) {
  const minimal = params.has('minimal') && !isOff(params.get('minimal'));
  const o = {minimal, embed: params.has('embed') && !isOff(params.get('embed'))};
  for (const name of ON_OFF) {
    const v = params.get(name);
    o[name] = v === null ? !(minimal && MINIMAL_OFF.has(name)) : !isOff(v);
  }
  o.background = !isOff(params.get('background'));
  o.audio = !isOff(params.get('audio'));
  o.video = !isOff(params.get('video'));
  o.cameraAccess = !isOff(params.get('cameraAccess'));
  const lang = params.get('lang');
  o.lang = lang && LANG.test(lang) ? lang : null;
  return o;
}

// What is off becomes data-<name>="off" on <body> (embed.css hides it); panels start open when shown.
export function applyRoomOptions(o) {
  const body = document.body;
  for (const name of [...ON_OFF, 'background']) {
    if (o[name]) delete body.dataset[name]; else body.dataset[name] = 'off';
  }
  body.dataset.minimal = o.minimal ? 'on' : 'off';
  if (o.embed) body.dataset.embed = 'on';
  if (o.lang) document.documentElement.lang = o.lang;
}

// The origin of the page that embeds this one, or null (not framed, or no agreement on who the parent is).
export function parentOrigin(params) {
  if (window.parent === window) return null;
  const claimed = params.get('embedOrigin');
  const told = location.ancestorOrigins && location.ancestorOrigins.length ? location.ancestorOrigins[0] : null;
  if (told) return claimed === null || claimed === told ? told : null;
  return claimed && /^https?:\/\/[^/]+$/.test(claimed) ? claimed : null;
}

export const COMMANDS = ['toggleCamera', 'toggleMicrophone', 'toggleScreenshare', 'toggleChat', 'togglePeople',
                         'startRecording', 'stopRecording', 'knock', 'leave'];

export class EmbedBridge {
  // commands: an object with a method per name in COMMANDS (missing ones are ignored).
  constructor(params, commands) {
    this.origin = parentOrigin(params);
    this.commands = commands;
    this.sent = [];   // events posted, for tests and debugging: [{event, detail}]
    if (!this.origin) return;
    window.addEventListener('message', e => this.onMessage(e));
    this.emit('ready', {});
  }

  get active() { return Boolean(this.origin); }

  emit(event, detail = {}) {
    if (!this.origin) return;
    this.sent.push({event, detail});
    if (this.sent.length > 200) this.sent.shift();
    try {
      window.parent.postMessage({source: 'herewith', type: 'event', event, detail}, this.origin);
    } catch (err) { console.warn('embed: event not posted', err); }
  }

  onMessage(e) {
    if (e.source !== window.parent || e.origin !== this.origin) return;
    const m = e.data;
    if (!m || m.source !== 'herewith-embed' || m.type !== 'command' || !COMMANDS.includes(m.command)) return;
    const fn = this.commands[m.command];
    if (typeof fn !== 'function') return;
    const args = Array.isArray(m.args) ? m.args.slice(0, 2) : [];
    Promise.resolve().then(() => fn(...args)).catch(err => console.warn('embed: command failed', m.command, err));
  }
}

// The chat and people panels: open unless their URL parameter is off; toggleChat/togglePeople and the
// chat_toggle/people_toggle events. `emit` is the bridge's.
export class Panels {
  constructor(options, emit) {
    this.open = {chat: options.chat, people: options.people};
    this.emit = emit;
    this.render();
  }

  toggle(name, on) {
    const next = typeof on === 'boolean' ? on : !this.open[name];
    if (next === this.open[name]) return;
    this.open[name] = next;
    this.render();
    this.emit(`${name}_toggle`, {open: next});
  }

  render() {
    document.body.dataset.chatPanel = this.open.chat ? 'open' : 'closed';
    document.body.dataset.peoplePanel = this.open.people ? 'open' : 'closed';
  }
}
