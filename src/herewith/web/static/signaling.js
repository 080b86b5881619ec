// Signaling client: one WebSocket to /signal/{roomName}, typed JSON messages (herewith/signaling/protocol.py),
// keepalive, and automatic reconnection with back-off when the connection drops.
//
//   const sig = new SignalingClient(url, () => joinMessage);
//   sig.on('joined', m => ...); sig.on('closed', ({code, final}) => ...); sig.connect();
//   sig.send({type: 'chat', text: 'hi'});
//
// A page that joins by itself can open the socket early, while the camera starts, and hand it over:
//   const early = preconnect(url); ...; sig.connect(early);

// Close codes after which reconnecting makes no sense (live_room.py).
const FINAL_CODES = new Set([1000, 1008, 4001, 4003, 4404, 4409, 4410]);

function socketUrl(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

// Open the signaling socket ahead of the join, so the TCP and WebSocket handshakes overlap the camera start.
// The server closes a socket that has sent no join within 10 s; connect() then opens a fresh one.
export function preconnect(path) {
  const ws = new WebSocket(socketUrl(path));
  ws.onerror = () => {};
  return ws;
}

export class SignalingClient {
  constructor(url, makeJoin) {
    this.url = url;
    this.makeJoin = makeJoin;   // () => join message, called at every (re)connect
    this.handlers = new Map();
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.pingIntervalMs = 20000;
    this.lastHeard = 0;
    this.watchdog = null;
    this.finalError = null;
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
  }

  emit(type, msg) {
    for (const fn of this.handlers.get(type) || []) {
      try { fn(msg); } catch (e) { console.error('handler for', type, 'failed', e); }
    }
    for (const fn of this.handlers.get('*') || []) {
      try { fn(msg); } catch (e) { console.error(e); }
    }
  }

  // early: a socket from preconnect(), used when it is still connecting or open.
  connect(early = null) {
    this.stopped = false;
    const usable = early && (early.readyState === WebSocket.CONNECTING || early.readyState === WebSocket.OPEN);
    const ws = usable ? early : new WebSocket(socketUrl(this.url));
    this.ws = ws;
    const start = () => {
      this.lastHeard = Date.now();
      ws.send(JSON.stringify(this.makeJoin()));
      this.emit('open', {type: 'open', reconnect: this.attempt > 0});
    };
    if (ws.readyState === WebSocket.OPEN) start(); else ws.onopen = start;
    ws.onmessage = ev => {
      this.lastHeard = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'ping') { this.send({type: 'pong'}); return; }
      if (msg.type === 'joined') {
        this.attempt = 0;
        this.pingIntervalMs = msg.pingIntervalMs || this.pingIntervalMs;
        this.startWatchdog();
      }
      if (msg.type === 'error' && ['room_full', 'room_gone', 'room_not_found', 'knock_rejected'].includes(msg.code)) {
        this.finalError = msg;
      }
      this.emit(msg.type, msg);
    };
    ws.onclose = ev => this.closed(ws, ev.code, ev.reason);
  }

  closed(ws, code, reason) {
    if (this.ws !== ws) return;
    this.ws = null;
    clearInterval(this.watchdog);
    const final = this.stopped || FINAL_CODES.has(code) || this.finalError !== null;
    this.emit('closed', {type: 'closed', code, reason, final, error: this.finalError});
    if (!final) this.scheduleReconnect();
  }

  // The server pings after pingIntervalMs of silence; hearing nothing for 2.5 intervals means the link is dead.
  startWatchdog() {
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastHeard > 2.5 * this.pingIntervalMs) {
        const ws = this.ws;
        if (!ws) return;
        try { ws.close(); } catch {}
        this.closed(ws, 1006, 'keepalive timeout');
      }
    }, Math.max(1000, this.pingIntervalMs / 4));
  }

  scheduleReconnect() {
    const delay = Math.min(5000, 300 * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.emit('reconnecting', {type: 'reconnecting', attempt: this.attempt, delay});
    setTimeout(() => { if (!this.stopped) this.connect(); }, delay);
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  close() {
    this.stopped = true;
    clearInterval(this.watchdog);
    if (this.ws) { try { this.ws.close(1000); } catch {} }
  }
}
