// The room page: pre-call screen, waiting room, call (grid, chat, people, host controls) and status screens.
// Media goes through a media layer (mesh.js for peer-to-peer rooms; an SFU layer can implement the same
// interface for group rooms). `window.herewith` is a small hook for tests and embedding. The grid comes from
// composite.js (shared with recordings); with `?recorder=1` the page is the cloud recorder (recorder.js).

import {SignalingClient, preconnect} from './signaling.js';
import {LocalMedia} from './localmedia.js';
import {MeshMedia} from './mesh.js';
import {StatsSampler} from './stats.js';
import {gridLayout, gridTiles, initials, shownInPeople} from './composite.js';
import {GridPager, pageSizeFor} from './grid.js';
import {CaptionControls} from './captions-ui.js';
import {RecordingControls} from './recording-ui.js';
import {EmbedBridge, Panels, applyRoomOptions, roomOptions} from './embed-bridge.js';

const config = JSON.parse(document.getElementById('herewith-config').textContent);
const params = new URLSearchParams(location.search);
// ?token= is a participant token (the second vendor's room API); it travels as the join's roomKey.
const roomKey = params.get('roomKey') || params.get('token');
const $ = id => document.getElementById(id);
const FORBIDDEN_NAME = /[$!<>:;]/;
// Room URL parameters of embedding (embed-bridge.js: chat=off, minimal, audio=off, ...) and the postMessage
// bridge to an embedding page; `emit` is a no-op unless the page is embedded with a known parent origin.
const options = roomOptions(params);
applyRoomOptions(options);
let bridge = null;
const emit = (event, detail) => { if (bridge) bridge.emit(event, detail); };

const state = {
  phase: 'precall',           // precall | connecting | lobby | knocking | call | ended
  self: null, role: null, locked: Boolean(config.locked), resumeToken: null, iceServers: [],
  participants: new Map(),    // id -> participant (others)
  streams: new Map(),         // `${id}:${source}` -> MediaStream received from that participant
  chat: [], knocks: new Map(), notices: [], events: [], ending: null,
  timings: {},
};
// Group rooms publish the camera in three simulcast layers (sfu.js); browsers send three only from 720 lines up
// (Chromium: two at 640x480), so the camera is asked for 1280x720 there: layers of 320x180, 640x360 and 1280x720.
const simulcast = config.roomMode === 'group' && (globalThis.HEREWITH_SFU_OPTIONS || {}).simulcast !== false;
const local = new LocalMedia(simulcast ? {width: 1280, height: 720} : {});
let media = null;
let sampler = null;
let signaling = null;
// ?precallReview=off joins as soon as the camera is ready: open the signaling socket meanwhile.
let earlySocket = params.get('precallReview') === 'off' && config.signalUrl ? preconnect(config.signalUrl) : null;
// ?recorder=1: the server's cloud recorder opened this page (recorder.js runs it instead of the call UI).
const recorderMode = params.get('recorder') === '1';
let lastTiles = [];   // the grid's tiles as last rendered (this page of gridTiles), with their <video> elements
const pager = new GridPager();  // pages of the grid and the active speaker (grid.js)
let shownSince = new Map();     // tile key -> Date.now() when it came onto the shown page
const captions = new CaptionControls({send: msg => signaling && signaling.send(msg), notice: text => notice(text)});
const recording = new RecordingControls({
  send: msg => signaling && signaling.send(msg),
  notice: text => notice(text),
  roomName: config.roomName,
  sources: {
    tiles: () => lastTiles.map(t => ({...t, el: tileVideo(t.key)})),
    audio: () => {
      const tracks = new Map();
      const mine = local.track('audio');
      if (mine && roleSends()) tracks.set('self', mine);
      for (const [key, stream] of state.streams) {
        const t = key.endsWith(':camera') && stream.getAudioTracks()[0];
        if (t) tracks.set(key, t);
      }
      return tracks;
    },
  },
});

const mark = name => { if (!(name in state.timings)) state.timings[name] = Math.round(performance.now()); };
const log = (type, extra = {}) => { state.events.push({type, at: Math.round(performance.now()), ...extra}); if (state.events.length > 500) state.events.shift(); };

function keyRole(token) {
  // The roomKey is a signed token; its payload names the role. The server decides; this only tailors the UI.
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '==='.slice((part.length + 3) % 4))).role || null;
  } catch { return null; }
}
const expectViewer = roomKey && ['viewer'].includes(keyRole(roomKey));

function deviceId() {
  try {
    let id = localStorage.getItem('herewith.deviceId');
    if (!id) { id = crypto.randomUUID(); localStorage.setItem('herewith.deviceId', id); }
    return id;
  } catch { return null; }
}

function show(section) {
  for (const id of ['precall', 'knock', 'call', 'message']) $(id).hidden = id !== section;
}

function notice(text, kind = 'info') {
  state.notices.push({text, kind, at: Date.now()});
  const el = document.createElement('p');
  el.className = 'notice';
  el.textContent = text;
  $('notices').append(el);
  setTimeout(() => el.remove(), 8000);
}

function finish(title, text, {retry = false} = {}) {
  if (state.phase !== 'ended') emit('leave', {reason: title});
  state.phase = 'ended';
  state.ending = {title, text};
  log('finished', {title});
  recording.finish();
  if (sampler) sampler.stop();
  if (media) { media.close(); media = null; }
  if (signaling) signaling.close();
  local.stop();
  $('message-title').textContent = title;
  $('message-text').textContent = text;
  $('message-retry').hidden = !retry;
  show('message');
}

// ------------------------------------------------------------------------------------------- pre-call
function renderToggles() {
  for (const [btn, kind, on, off] of [['pre-mic', 'audio', 'Microphone on', 'Microphone off'], ['pre-cam', 'video', 'Camera on', 'Camera off'],
                                      ['mic', 'audio', 'Mute', 'Unmute'], ['cam', 'video', 'Stop video', 'Start video']]) {
    const el = $(btn);
    const enabled = local.enabled[kind];
    el.textContent = enabled ? on : off;
    el.classList.toggle('on', enabled);
    el.classList.toggle('off', !enabled);
    el.setAttribute('aria-pressed', String(enabled));
    el.disabled = !local.has(kind);
  }
  $('preview-off').hidden = local.enabled.video;
  $('screen').textContent = local.screen ? 'Stop sharing' : 'Share screen';
  $('screen').classList.toggle('off', Boolean(local.screen));
}

async function fillDevices() {
  const devices = await local.devices();
  for (const [sel, kind] of [['camera-select', 'video'], ['mic-select', 'audio']]) {
    const el = $(sel);
    el.replaceChildren(...devices[kind].map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${kind === 'video' ? 'Camera' : 'Microphone'} ${i + 1}`;
      o.selected = d.deviceId === local.deviceIds[kind];
      return o;
    }));
    el.disabled = devices[kind].length === 0 || !local.has(kind);
  }
}

async function precall() {
  show('precall');
  $('display-name').value = config.displayName || '';
  if (expectViewer) {
    $('media-notice').textContent = 'You are joining as a viewer: you will see and hear everyone, and send nothing.';
    $('media-notice').hidden = false;
    local.enabled = {audio: false, video: false};
    for (const id of ['pre-mic', 'pre-cam', 'camera-select', 'mic-select']) $(id).closest('label, .toggles').hidden = true;
    $('preview').closest('.preview-wrap').hidden = true;
  } else {
    // the room's pre-call defaults (camera/microphone on when joining), from its policy or the token
    if (config.precall) local.enabled = {audio: config.precall.audio !== false, video: config.precall.video !== false};
    if (!options.cameraAccess) local.allowVideo = false;   // ?cameraAccess=off: audio only
    if (config.precall && config.precall.camera === false) local.allowVideo = false;  // the room allows no video
    const res = await local.start();
    if (!options.audio) local.setEnabled('audio', false);   // ?audio=off / ?video=off: join muted / camera off
    if (!options.video) local.setEnabled('video', false);
    $('preview').srcObject = local.stream;
    if (res.error === 'denied') {
      $('media-notice').textContent = 'Your browser blocked the camera and microphone. You can still join and see and hear others; they will not see or hear you. Allow access in the browser settings and reload to send.';
      $('media-notice').hidden = false;
      state.notices.push({text: 'media denied', kind: 'warning'});
    } else if (res.error) {
      $('media-notice').textContent = 'No camera or microphone was found. You can still join.';
      $('media-notice').hidden = false;
    }
  }
  renderToggles();
  $('join').disabled = false;
  mark('precallReady');
  // ?precallReview=off (embedding): skip the review and join as soon as camera and microphone are ready.
  if (params.get('precallReview') === 'off' || (config.precall && config.precall.autoJoin)) join();
  if (!expectViewer) await fillDevices();  // labels need the permission; filled after Join is usable
}

function validName(value) {
  const name = value.trim();
  if (name.length > 100) return 'Your name can be at most 100 characters.';
  if (FORBIDDEN_NAME.test(name)) return 'Your name cannot contain any of $ ! < > : ;';
  return null;
}

function join() {
  const problem = validName($('display-name').value);
  $('name-error').hidden = !problem;
  if (problem) { $('name-error').textContent = problem; return; }
  mark('joinClicked');
  state.phase = 'connecting';
  $('join').disabled = true;
  signaling = new SignalingClient(config.signalUrl, () => ({
    type: 'join', displayName: $('display-name').value.trim() || null, externalId: config.externalId || null,
    metadata: config.metadata || null, roomKey: roomKey || null, deviceId: deviceId(),
    userAgent: navigator.userAgent.slice(0, 512), resumeToken: state.resumeToken,
    audio: local.enabled.audio, video: local.enabled.video, grid: true,
  }));
  wire(signaling);
  signaling.connect(earlySocket);
  earlySocket = null;
}

// ---------------------------------------------------------------------------------------------- call
function wire(sig) {
  sig.on('*', m => log(m.type));
  sig.on('open', m => { if (m.reconnect) teardownMedia(); });
  sig.on('joined', onJoined);
  sig.on('room_locked', () => { state.phase = 'lobby'; $('knock-text').textContent = 'Knock to ask a host to let you in.'; $('knock-button').hidden = false; show('knock'); });
  sig.on('knock_pending', () => { emit('knock', {}); state.phase = 'knocking'; $('knock-text').textContent = 'Waiting for a host to let you in…'; $('knock-button').hidden = true; show('knock'); });
  sig.on('participant_joined', m => { emit('participant_join', {participant: embedParticipant(m.participant)}); state.participants.set(m.participant.id, m.participant); if (media) media.participantJoined(m.participant); render(); });
  sig.on('participant_left', m => {
    const p = state.participants.get(m.participantId);
    if (p) emit('participant_leave', {participant: embedParticipant(p), reason: m.reason});
    state.participants.delete(m.participantId);
    if (media) media.participantLeft(m.participantId);
    state.streams.delete(`${m.participantId}:camera`); state.streams.delete(`${m.participantId}:screen`);
    removeTile(m.participantId, 'camera'); removeTile(m.participantId, 'screen');
    syncAudio();
    if (p && m.reason === 'removed') notice(`${p.displayName || 'A participant'} was removed`);
    render();
  });
  sig.on('participant_updated', m => {
    if (m.participant.id === state.self) return;
    state.participants.set(m.participant.id, m.participant);
    if (media) media.participantUpdated(m.participant);
    if (!m.participant.screen) { state.streams.delete(`${m.participant.id}:screen`); removeTile(m.participant.id, 'screen'); }
    render();
  });
  for (const t of ['offer', 'answer', 'candidate']) sig.on(t, m => { if (media) media.signal(m); });
  // group rooms on the SFU (sfu.js, issue 7): Janus's answers and offers, and restarts
  for (const t of ['sfu_published', 'sfu_offer', 'sfu_restart']) sig.on(t, m => { if (media) media.signal(m); });
  sig.on('active_speaker', m => { state.activeSpeaker = m.participantId; if (pager.speaker(m.participantId)) render(); else markSpeaker(); });
  sig.on('chat', m => { state.chat.push(m); renderChat(); });
  sig.on('recording', m => { recording.update(m); emit('recording_status_change', {status: m.state === 'recording' ? 'started' : m.state}); });
  sig.on('captions', m => captions.update(m));
  sig.on('caption', m => captions.caption(m));
  sig.on('knocked', m => { state.knocks.set(m.participant.id, m.participant); notice(`${m.participant.displayName || 'Someone'} is knocking`); render(); });
  sig.on('knock_cancelled', m => { state.knocks.delete(m.participantId); render(); });
  sig.on('knock_handled', m => {
    state.knocks.delete(m.participantId); render();
    if (!m.accepted && m.participantId === state.self) finish('You were not let in', 'A host declined your request to join.');
  });
  sig.on('room_updated', m => { state.locked = m.locked; render(); });
  sig.on('mute_request', m => {
    if (m.kind === 'audio') setEnabled('audio', false); else setEnabled('video', false);
    notice(`A host ${m.kind === 'audio' ? 'muted your microphone' : 'turned off your camera'}`);
  });
  sig.on('removed', m => finish('You were removed', m.reason === 'time_limit'
    ? 'Your time in this meeting is up.' : 'A host removed you from this meeting.'));
  sig.on('ended', m => emit('meeting_end', {reason: m.reason}));
  sig.on('ended', m => finish('The meeting has ended',
    m.reason === 'deleted' ? 'This meeting room was deleted. Everyone has been disconnected.'
      : m.reason === 'expired' ? 'This meeting room has expired.'
      : m.reason === 'inactive' ? 'The meeting ended because nobody shared a microphone, camera or screen for a while.'
      : 'A host ended the meeting for everyone.'));
  sig.on('error', m => {
    if (m.code === 'room_full') finish('This room is full', m.message, {retry: true});
    else if (m.code === 'room_gone') finish('This meeting is over', m.message);
    else if (m.code === 'room_not_found') finish('Room not found', m.message);
    else if (m.code === 'knock_rejected') finish('You were not let in', m.message);
    else if (m.code === 'token_required') finish('This room is private', m.message);
    else if (m.code === 'room_not_open') finish('This meeting has not started yet', m.message);
    else { notice(m.message, 'error'); state.notices.push({text: m.code, kind: 'error'}); }
  });
  sig.on('reconnecting', () => { $('conn-status').hidden = false; state.reconnecting = true; emit('connection_status_change', {status: 'unstable'}); });
  sig.on('closed', m => {
    if (state.phase === 'ended') return;
    if (m.final) {
      if (m.code === 4001) finish('The meeting has ended', 'The meeting was ended.');
      else if (m.code === 4003) finish('You were removed', 'A host removed you from this meeting.');
      else finish('You left the meeting', 'You can close this page.');
    } else {
      $('conn-status').hidden = false;
    }
  });
}

function teardownMedia() {
  if (sampler) sampler.stop();
  if (media) media.close();
  media = null;
  for (const id of [...state.participants.keys()]) { removeTile(id, 'camera'); removeTile(id, 'screen'); }
  state.participants.clear();
  state.streams.clear();
  syncAudio();
}

async function onJoined(m) {
  teardownMedia();
  state.phase = 'call';
  state.self = m.participantId;
  state.role = m.role;
  state.resumeToken = m.resumeToken;
  state.iceServers = m.iceServers;
  state.locked = m.room.locked;
  if (state.reconnecting) emit('connection_status_change', {status: 'stable'});
  state.reconnecting = false;
  $('conn-status').hidden = true;
  if (!('joined' in state.timings)) emit('join', {participantId: m.participantId, role: m.role});
  mark('joined');
  for (const p of m.participants) state.participants.set(p.id, p);
  const me = {id: m.participantId, role: m.role};
  // grants: what the room's policy (or the token) lets us send; the server refuses the rest
  const grants = state.grants = m.grants || {audio: true, video: true, screen: true};
  for (const kind of ['audio', 'video']) if (!grants[kind]) local.drop(kind);
  const sends = !['viewer', 'granted_viewer'].includes(m.role) && (grants.audio || grants.video || grants.screen);
  state.sends = sends;
  state.chatEnabled = m.room.chat !== false;
  if (!sends) local.stop();
  if (state.chat.length === 0) state.chat.push(...m.chat);
  const Layer = await mediaLayer(m.room.media);
  media = new Layer({
    send: msg => signaling.send(msg), local, iceServers: m.iceServers, selfId: me.id, sends, grants,
    onRemoteMedia: (id, source, stream) => attachRemote(id, source, stream),
    onPeerState: (id, st) => log('peer_state', {id, state: st}),
  });
  media.start(m.participants);
  if (sends) sendUpdate();
  sampler = new StatsSampler(() => (media ? media.peerConnections() : []), s => signaling.send(s), 5000);
  sampler.start();
  show('call');
  render();
  renderChat();
  recording.joined(m, m.role);
  captions.joined(m, m.role);
}

// Group rooms load sfu.js with the page (issue 7): the server's first sfu_offer can follow `joined` at once,
// and a message that arrives while `media` is still null would be lost.
const sfuModule = config.roomMode === 'group' ? import('./sfu.js').catch(e => { console.warn('SFU layer unavailable', e); return null; }) : null;

async function mediaLayer(kind) {
  if (kind === 'sfu') {
    const mod = await (sfuModule || import('./sfu.js').catch(() => null));
    if (mod) return mod.SfuMedia;
    console.warn('SFU layer unavailable, using mesh');
  }
  return MeshMedia;
}

function sendUpdate() {
  signaling.send({type: 'update', audio: local.enabled.audio, video: local.enabled.video, screen: Boolean(local.screen),
                  streams: {camera: local.stream.id, screen: local.screen ? local.screen.id : null}});
}

function setEnabled(kind, on) {
  const before = local.enabled[kind];
  local.setEnabled(kind, on);
  if (local.enabled[kind] !== before) emit(kind === 'audio' ? 'microphone_toggle' : 'camera_toggle', {enabled: local.enabled[kind]});
  renderToggles();
  if (state.phase === 'call' && signaling) sendUpdate();
  render();
}

async function startScreenShare(stream) {
  if (!media || local.screen) return false;
  try {
    const s = await local.startScreen(stream);
    await media.setScreen(s);
    sendUpdate();
    render();
    emit('screenshare_toggle', {enabled: true});
    return true;
  } catch (e) {
    notice('Screen sharing was not started.');
    return false;
  }
}

async function stopScreenShare() {
  if (!local.screen) return;
  local.stopScreen();
  if (media) await media.setScreen(null);
  sendUpdate();
  removeTile(state.self, 'screen');
  render();
  emit('screenshare_toggle', {enabled: false});
}
local.onscreenended = () => stopScreenShare();

// -------------------------------------------------------------------------------------------- render
const roleSends = () => !['viewer', 'granted_viewer'].includes(state.role);
const tileElement = key => document.querySelector(`.tile[data-key="${CSS.escape(key)}"]`);
const tileVideo = key => { const el = tileElement(key); return el ? el.querySelector('video') : null; };

function tile(id, source) {
  const key = `${id}:${source}`;
  let el = tileElement(key);
  if (!el) {
    el = document.createElement('div');
    el.className = `tile ${source}` + (id === state.self ? ' self' : '');
    el.dataset.key = key;
    el.dataset.participant = id;
    const video = document.createElement('video');
    video.autoplay = true; video.playsInline = true;
    video.muted = true;  // remote sound plays from the audio elements (syncAudio): also for people on other pages
    const avatar = document.createElement('div');
    avatar.className = 'avatar';
    const label = document.createElement('div');
    label.className = 'label';
    el.append(video, avatar, label);
    $('grid').append(el);
  }
  return el;
}

function removeTile(id, source) {
  const el = tileElement(`${id}:${source}`);
  if (el) { const v = el.querySelector('video'); v.srcObject = null; el.remove(); }
}

function attachRemote(id, source, stream) {
  state.streams.set(`${id}:${source}`, stream);
  syncAudio();
  render();
  const video = tileVideo(`${id}:${source}`);
  if (video && !('firstRemoteFrame' in state.timings) && video.requestVideoFrameCallback && source === 'camera') {
    video.requestVideoFrameCallback(() => mark('firstRemoteFrame'));
  }
}

// Who the grid shows (composite.js decides: never the recorder or viewers): ourselves when we send, then
// everyone else in join order; a remote screen once its stream arrived.
function gridPeople() {
  const people = [];
  if (roleSends() && state.self) {
    people.push({id: state.self, role: state.role, sends: true, self: true, displayName: $('display-name').value.trim() || 'You',
                 audio: local.enabled.audio, video: local.enabled.video, screen: Boolean(local.screen)});
  }
  for (const p of state.participants.values()) {
    people.push({...p, screen: Boolean(p.screen && state.streams.has(`${p.id}:screen`))});
  }
  return people;
}

// Everyone's sound, whether or not their tile is on the current page: one hidden <audio> per received stream
// with audio (in a group room the server forwards the loudest few speakers' audio only).
const audioSinks = new Map();  // `${id}:${source}` -> <audio>
function syncAudio() {
  for (const [key, el] of audioSinks) {
    if (!state.streams.has(key)) { el.srcObject = null; el.remove(); audioSinks.delete(key); }
  }
  for (const [key, stream] of state.streams) {
    const tracks = stream.getAudioTracks();
    let el = audioSinks.get(key);
    if (!tracks.length) { if (el) { el.srcObject = null; el.remove(); audioSinks.delete(key); } continue; }
    if (!el) {
      el = document.createElement('audio');
      el.autoplay = true;
      el.hidden = true;
      el.dataset.key = key;
      document.body.append(el);
      audioSinks.set(key, el);
    }
    if (el.srcObject !== stream) { el.srcObject = stream; el.play().catch(() => {}); }
  }
}

// The pager under the grid (only when there is more than one page): previous, "page x of y", next.
function renderPager(view) {
  let bar = $('grid-pager');
  if (!bar) {
    bar = document.createElement('nav');
    bar.id = 'grid-pager';
    bar.className = 'grid-pager';
    bar.setAttribute('aria-label', 'Pages of the grid');
    const prev = button('‹', () => { if (pager.previous()) render(); }, 'grid-previous');
    prev.setAttribute('aria-label', 'Previous page');
    const label = document.createElement('span');
    label.className = 'grid-page';
    const next = button('›', () => { if (pager.next()) render(); }, 'grid-next');
    next.setAttribute('aria-label', 'Next page');
    bar.append(prev, label, next);
    $('grid').append(bar);
  }
  bar.hidden = view.pages <= 1;
  bar.querySelector('.grid-page').textContent = `${view.page + 1} / ${view.pages}`;
  bar.querySelector('[data-action="grid-previous"]').disabled = view.page === 0;
  bar.querySelector('[data-action="grid-next"]').disabled = view.page >= view.pages - 1;
}

function markSpeaker() {
  for (const el of $('grid').querySelectorAll('.tile')) {
    el.classList.toggle('speaking', el.dataset.participant === state.activeSpeaker && el.classList.contains('camera'));
  }
}

// This page's tiles in the grid's order (grid.js pages composite.js's tiles), each <video> on its stream,
// placed by gridLayout (composite.js) in pixels.
function renderGrid() {
  const grid = $('grid');
  pager.pageSize = pageSizeFor(window.innerWidth, window.innerHeight);  // the screen decides: 9 on a laptop, 4 on a phone
  const view = pager.arrange(gridTiles(gridPeople()));
  const tiles = view.tiles;
  renderPager(view);
  const keep = new Set(tiles.map(t => t.key));
  for (const el of [...$('grid').querySelectorAll('.tile')]) {
    if (!keep.has(el.dataset.key)) { el.querySelector('video').srcObject = null; el.remove(); }
  }
  for (const t of tiles) {
    const el = tile(t.id, t.source);
    const v = el.querySelector('video');
    const stream = t.self ? (t.source === 'screen' ? local.screen : local.stream) : state.streams.get(t.key) || null;
    if (v.srcObject !== stream) { v.srcObject = stream; if (stream) v.play().catch(() => {}); }
    fillTile(el, t);
  }
  lastTiles = tiles;
  const now = Date.now();
  shownSince = new Map(tiles.map(t => [t.key, shownSince.get(t.key) || now]));
  layoutGrid();
  markSpeaker();
  captions.repaint();
}

function layoutGrid() {
  const grid = $('grid');
  const rects = gridLayout(lastTiles, grid.clientWidth, grid.clientHeight, {gap: 10});
  for (const t of lastTiles) {
    const el = tileElement(t.key);
    const r = rects.get(t.key);
    if (!el || !r) continue;
    Object.assign(el.style, {left: `${r.x}px`, top: `${r.y}px`, width: `${r.w}px`, height: `${r.h}px`});
    el.classList.toggle('large', r.large);
  }
  grid.dataset.count = String(lastTiles.length);
  grid.dataset.page = String(pager.page);
  // group rooms: tell the server what this page shows, and how big (it forwards only that, at that size)
  if (media && media.setView) {
    const dpr = window.devicePixelRatio || 1;
    media.setView(lastTiles.filter(t => !t.self && rects.has(t.key)).map(t => {
      const r = rects.get(t.key);
      return {participantId: t.id, source: t.source, width: r.w * dpr, height: r.h * dpr};
    }));
  }
}
new ResizeObserver(() => {
  const grid = $('grid');
  if (state.phase === 'call' && pageSizeFor(window.innerWidth, window.innerHeight) !== pager.pageSize) render();
  else layoutGrid();
}).observe($('grid'));

function render() {
  if (state.phase !== 'call') return;
  const isHost = state.role === 'host';
  const sends = roleSends();
  renderGrid();
  // people (everyone but the recorder: the indicator tells that a recording runs)
  const people = [{id: state.self, role: state.role, displayName: ($('display-name').value.trim() || 'You'), audio: local.enabled.audio, self: true},
                  ...[...state.participants.values()].filter(shownInPeople)];
  $('people').replaceChildren(...people.map(p => {
    const li = document.createElement('li');
    li.dataset.participant = p.id;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = (p.displayName || 'Guest') + (p.self ? ' (you)' : '');
    const role = document.createElement('span');
    role.className = 'role';
    role.textContent = p.role.replace('_', ' ');
    li.append(name, role);
    if (p.sends !== false && !p.audio) li.append(mutedIcon());
    if (isHost && !p.self) {
      if (p.audio) li.append(button('Mute', () => requestMute(p.id), 'mute-' + p.id));
      li.append(button('Remove', () => remove(p.id), 'remove-' + p.id));
    }
    return li;
  }));
  // knocks (hosts)
  $('knocks').hidden = !isHost || state.knocks.size === 0;
  $('knock-list').replaceChildren(...[...state.knocks.values()].map(k => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = k.displayName || 'Guest';
    li.append(name, button('Let in', () => admit(k.id, true), 'admit-' + k.id), button('Deny', () => admit(k.id, false), 'deny-' + k.id));
    return li;
  }));
  for (const el of document.querySelectorAll('.host-only')) el.hidden = !isHost;
  $('lock').textContent = state.locked ? 'Unlock room' : 'Lock room';
  $('lock-status').hidden = !state.locked;
  for (const id of ['mic', 'cam', 'screen']) $(id).hidden = !sends;
  const grants = state.grants || {audio: true, video: true, screen: true};
  $('mic').hidden = $('mic').hidden || !grants.audio;
  $('cam').hidden = $('cam').hidden || !grants.video;
  $('screen').hidden = $('screen').hidden || !grants.screen;
  $('chat-form').hidden = state.chatEnabled === false;
  renderToggles();
  recording.render(state.role);
  captions.render(state.role);
}

function fillTile(el, t) {
  const isScreen = t.source === 'screen';
  const label = el.querySelector('.label');
  label.replaceChildren();
  const name = document.createElement('span');
  name.textContent = t.label;
  label.append(name);
  if (!isScreen && !t.audio) {
    label.append(mutedIcon());
  }
  el.dataset.audio = String(Boolean(t.audio));
  el.dataset.video = String(Boolean(t.video));
  const avatar = el.querySelector('.avatar');
  avatar.textContent = initials(t.displayName);
  avatar.hidden = isScreen || Boolean(t.video);
}

// A crossed-out microphone (inline SVG: no icon font, no emoji font needed).
function mutedIcon() {
  const span = document.createElement('span');
  span.className = 'muted-icon';
  span.title = 'Microphone off';
  span.setAttribute('aria-label', 'Microphone off');
  span.innerHTML = '<svg viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round">'
    + '<rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3M3 3l18 18"/></svg>';
  return span;
}

function button(text, onclick, testId) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.dataset.action = testId;
  b.onclick = onclick;
  return b;
}

function renderChat() {
  $('chat-log').replaceChildren(...state.chat.map(m => {
    const li = document.createElement('li');
    const who = document.createElement('div');
    who.className = 'who';
    who.textContent = (m.from === state.self ? 'You' : (m.displayName || 'Guest')) + ' · ' + new Date(m.at).toLocaleTimeString();
    const text = document.createElement('div');
    text.textContent = m.text;
    li.append(who, text);
    return li;
  }));
  $('chat-log').scrollTop = $('chat-log').scrollHeight;
}

// --------------------------------------------------------------------------------------------- actions
const sendChat = text => signaling && signaling.send({type: 'chat', text});
const lock = locked => signaling && signaling.send({type: 'lock', locked});
const admit = (participantId, accept) => signaling && signaling.send({type: 'handle_knock', participantId, accept});
const remove = participantId => signaling && signaling.send({type: 'remove', participantId});
const requestMute = (participantId, kind = 'audio') => signaling && signaling.send({type: 'mute_request', participantId, kind});
const endMeeting = () => signaling && signaling.send({type: 'end_meeting'});
const knock = () => signaling && signaling.send({type: 'knock'});
function leave() {
  if (signaling) signaling.send({type: 'leave'});
  finish('You left the meeting', 'You can close this page.');
}

$('pre-mic').onclick = () => setEnabled('audio', !local.enabled.audio);
$('pre-cam').onclick = () => setEnabled('video', !local.enabled.video);
$('mic').onclick = () => setEnabled('audio', !local.enabled.audio);
$('cam').onclick = () => setEnabled('video', !local.enabled.video);
$('screen').onclick = () => (local.screen ? stopScreenShare() : startScreenShare());
$('camera-select').onchange = async e => { const t = await local.useDevice('video', e.target.value); if (media) media.trackChanged('video', t); renderToggles(); };
$('mic-select').onchange = async e => { const t = await local.useDevice('audio', e.target.value); if (media) media.trackChanged('audio', t); renderToggles(); };
$('join').onclick = join;
$('display-name').addEventListener('keydown', e => { if (e.key === 'Enter') join(); });
$('knock-button').onclick = knock;
$('lock').onclick = () => lock(!state.locked);
$('end').onclick = () => { if (confirm('End the meeting for everyone?')) endMeeting(); };
$('leave').onclick = leave;
$('message-retry').onclick = () => location.reload();
$('chat-form').onsubmit = e => {
  e.preventDefault();
  const text = $('chat-input').value.trim();
  if (text) { sendChat(text); $('chat-input').value = ''; }
};
window.addEventListener('pagehide', () => { if (signaling) signaling.send({type: 'leave'}); });

// ---------------------------------------------------------------------------------------- test hook
async function getStats() {
  const summary = media ? await media.summary() : {peers: {}};
  const totals = {framesDecoded: 0, audioBytesReceived: 0, audioPacketsReceived: 0, screenFramesDecoded: 0,
                  bytesSent: 0, audioBytesSent: 0, videoBytesSent: 0, screenBytesSent: 0, connected: 0};
  for (const p of Object.values(summary.peers)) {
    totals.framesDecoded += p.video.framesDecoded;
    totals.audioBytesReceived += p.audio.bytesReceived;
    totals.audioPacketsReceived += p.audio.packetsReceived;
    totals.screenFramesDecoded += p.screen.framesDecoded;
    totals.audioBytesSent += p.sent.audioBytes;
    totals.videoBytesSent += p.sent.videoBytes;
    totals.screenBytesSent += p.sent.screenBytes;
    totals.bytesSent += p.sent.audioBytes + p.sent.videoBytes + p.sent.screenBytes;
    if (p.connectionState === 'connected') totals.connected += 1;
  }
  if (summary.publisher) {  // sfu.js (issue 7): what we send goes to Janus, not to a peer
    const sent = summary.publisher.sent;
    totals.audioBytesSent += sent.audioBytes; totals.videoBytesSent += sent.videoBytes; totals.screenBytesSent += sent.screenBytes;
    totals.bytesSent += sent.audioBytes + sent.videoBytes + sent.screenBytes;
  }
  return {phase: state.phase, self: state.self, role: state.role, peers: summary.peers, totals,
          ...(summary.publisher ? {publisher: summary.publisher, subscription: summary.subscription, inbound: summary.inbound} : {})};
}

window.herewith = {
  config,
  get phase() { return state.phase; },
  get self() { return state.self; },
  get role() { return state.role; },
  get locked() { return state.locked; },
  get ending() { return state.ending; },
  get reconnecting() { return Boolean(state.reconnecting); },
  participants: () => [...state.participants.values()],
  // the grid: this page's tiles (participant id, source), the page, the page count, the active speaker
  grid: () => ({tiles: lastTiles.map(t => ({id: t.id, source: t.source, self: t.self, since: shownSince.get(t.key)})),
                page: pager.page,
                pages: pager.pages, pageSize: pager.pageSize, activeSpeaker: state.activeSpeaker || null}),
  gridPage: n => { pager.goTo(n); render(); },
  chat: () => state.chat.slice(),
  knocks: () => [...state.knocks.values()],
  notices: () => state.notices.slice(),
  events: () => state.events.slice(),
  timings: () => ({...state.timings}),
  getStats, join, leave, sendChat, lock, admit, remove, requestMute, endMeeting, knock,
  startScreenShare, stopScreenShare,
  captions,    // CaptionControls (captions-ui.js): options, state, received captions
  recording,   // RecordingControls (recording-ui.js): options, cloud state, local recording, lastDownload
  setMic: on => setEnabled('audio', on),
  setCamera: on => setEnabled('video', on),
  dropConnection: () => { if (signaling && signaling.ws) signaling.ws.close(4000, 'test'); },
};

// The participant as an embedding page sees it (participant_join / participant_leave events).
function embedParticipant(p) {
  return {id: p.id, displayName: p.displayName || null, role: p.role};
}
const panels = new Panels(options, emit);
const toggle = (kind, on) => setEnabled(kind, typeof on === 'boolean' ? on : !local.enabled[kind]);
if (!recorderMode) {
  bridge = new EmbedBridge(params, {
    toggleCamera: on => toggle('video', on),
    toggleMicrophone: on => toggle('audio', on),
    toggleScreenshare: on => ((typeof on === 'boolean' ? on : !local.screen) ? startScreenShare() : stopScreenShare()),
    toggleChat: on => panels.toggle('chat', on),
    togglePeople: on => panels.toggle('people', on),
    startRecording: () => recording.start(),
    stopRecording: () => recording.stop(),
    knock: () => knock(),
    leave: () => leave(),
  });
  window.herewith.embed = {options, panels, get origin() { return bridge.origin; }, sent: () => bridge.sent.slice()};
}

if (recorderMode) import('./recorder.js').then(m => m.runRecorder(config, params));
else precall();
