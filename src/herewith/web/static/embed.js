// <herewith-embed>: a Herewith room in any web page. Served by the Herewith server at /embed.js (an ES module,
// no build step, no CDN):
//
//   <script type="module" src="https://meet.example.com/embed.js"></script>
//   <herewith-embed room="https://meet.example.com/abc?roomKey=..." displayName="Ann" chat="off"></herewith-embed>
//
// Attributes (the first vendor's embed element's names; each becomes the room URL parameter of the same name,
// see embed-bridge.js): room (required: a roomUrl, hostRoomUrl or viewerRoomUrl), minimal, displayName,
// audio, video, background, chat, people, screenshare, leaveButton, logo, locking, topToolbar, bottomToolbar,
// precallReview, cameraAccess, lang, metadata, externalId. An attribute without a value means on; "off" off.
//
// Events, dispatched on the element as CustomEvents with the details given (vendor names): ready, join, leave
// {reason}, meeting_end {reason}, participant_join {participant}, participant_leave {participant, reason},
// knock, microphone_toggle {enabled}, camera_toggle {enabled}, screenshare_toggle {enabled}, chat_toggle {open},
// people_toggle {open}, recording_status_change {status: starting|started|stopped|failed|unavailable},
// connection_status_change {status: stable|unstable}.
//
// Methods (commands): toggleCamera(enabled?), toggleMicrophone(enabled?), toggleScreenshare(enabled?),
// toggleChat(enabled?), togglePeople(enabled?), startRecording(), stopRecording(), knock(), leave(). Without an
// argument a toggle flips.
//
// Messages go through postMessage with origin checks on both sides: the element accepts events only from its
// own iframe's window and from the room's origin, and posts commands to that origin only; the room page
// (embed-bridge.js) accepts commands only from its parent and from this page's origin, which it learns from
// the browser (location.ancestorOrigins) or from the embedOrigin parameter set here.

const ATTRIBUTES = ['minimal', 'displayName', 'audio', 'video', 'background', 'chat', 'people', 'screenshare',
  'leaveButton', 'logo', 'locking', 'topToolbar', 'bottomToolbar', 'precallReview', 'cameraAccess', 'lang',
  'metadata', 'externalId'];
const BY_LOWER = new Map(ATTRIBUTES.map(name => [name.toLowerCase(), name]));
const ALLOW = 'camera; microphone; fullscreen; display-capture; autoplay';

export class HerewithEmbed extends HTMLElement {
  static get observedAttributes() { return ['room', ...BY_LOWER.keys()]; }

  constructor() {
    super();
    this.iframe = null;
    this.roomOrigin = null;
    this.onMessage = e => this.receive(e);
  }

  connectedCallback() {
    window.addEventListener('message', this.onMessage);
    this.render();
  }

  disconnectedCallback() {
    window.removeEventListener('message', this.onMessage);
    if (this.iframe) { this.iframe.remove(); this.iframe = null; }
  }

  attributeChangedCallback() {
    if (this.isConnected) this.render();
  }

  // The room URL with the element's attributes as parameters, or null when `room` is missing or not http(s).
  roomUrl() {
    const room = this.getAttribute('room');
    if (!room) return null;
    let url;
    try { url = new URL(room, location.href); } catch { return null; }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
    for (const attr of this.attributes) {
      const name = BY_LOWER.get(attr.name.toLowerCase());
      if (name) url.searchParams.set(name, attr.value);
    }
    url.searchParams.set('embed', '');
    url.searchParams.set('embedOrigin', location.origin);
    return url;
  }

  render() {
    const url = this.roomUrl();
    if (!url) {
      console.warn('<herewith-embed>: the room attribute must be a room URL');
      return;
    }
    if (this.iframe && this.iframe.src === url.href) return;
    if (getComputedStyle(this).display === 'inline') this.style.display = 'block';
    if (this.iframe) this.iframe.remove();
    const iframe = document.createElement('iframe');
    iframe.allow = ALLOW;
    iframe.title = 'Video meeting';
    // Inline style properties (not a <style> element): they work under any style-src of the embedding page.
    Object.assign(iframe.style, {border: '0', width: '100%', height: '100%', display: 'block'});
    iframe.src = url.href;
    this.roomOrigin = url.origin;
    this.iframe = iframe;
    this.append(iframe);
  }

  receive(e) {
    if (!this.iframe || e.source !== this.iframe.contentWindow || e.origin !== this.roomOrigin) return;
    const m = e.data;
    if (!m || m.source !== 'herewith' || m.type !== 'event' || typeof m.event !== 'string') return;
    this.dispatchEvent(new CustomEvent(m.event, {detail: m.detail || {}}));
  }

  command(command, ...args) {
    if (!this.iframe || !this.iframe.contentWindow) return;
    this.iframe.contentWindow.postMessage({source: 'herewith-embed', type: 'command', command, args}, this.roomOrigin);
  }

  toggleCamera(enabled) { this.command('toggleCamera', ...(enabled === undefined ? [] : [Boolean(enabled)])); }
  toggleMicrophone(enabled) { this.command('toggleMicrophone', ...(enabled === undefined ? [] : [Boolean(enabled)])); }
  toggleScreenshare(enabled) { this.command('toggleScreenshare', ...(enabled === undefined ? [] : [Boolean(enabled)])); }
  toggleChat(enabled) { this.command('toggleChat', ...(enabled === undefined ? [] : [Boolean(enabled)])); }
  togglePeople(enabled) { this.command('togglePeople', ...(enabled === undefined ? [] : [Boolean(enabled)])); }
  startRecording() { this.command('startRecording'); }
  stopRecording() { this.command('stopRecording'); }
  knock() { this.command('knock'); }
  leave() { this.command('leave'); }
}

if (!customElements.get('herewith-embed')) customElements.define('herewith-embed', HerewithEmbed);
