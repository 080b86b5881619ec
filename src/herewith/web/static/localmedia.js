// Local media: camera and microphone (with device choice and on/off), and screen capture.
//
//   const local = new LocalMedia({width: 1280, height: 720});   // the camera size asked for (ideal)
//   await local.start();                 // {ok, error}: error 'denied' | 'unavailable' | null
//   local.setEnabled('audio', false);    // mute (the track keeps running, sends silence)
//   await local.useDevice('video', id);  // switch camera; listeners get ('video', newTrack)
//   const screen = await local.startScreen();

export class LocalMedia {
  constructor({width = 640, height = 480} = {}) {
    this.size = {width: {ideal: width}, height: {ideal: height}};
    this.stream = new MediaStream();   // stable id: receivers use it to tell camera from screen
    this.enabled = {audio: true, video: true};
    this.deviceIds = {audio: null, video: null};
    this.error = null;                 // 'denied' | 'unavailable' | null
    this.screen = null;                // MediaStream of the screen share, when sharing
    this.listeners = [];               // fn(kind, track|null)
    this.onscreenended = null;
    this.allowVideo = true;            // false: never ask for a camera (?cameraAccess=off)
  }

  track(kind) {
    return (kind === 'audio' ? this.stream.getAudioTracks() : this.stream.getVideoTracks())[0] || null;
  }

  onTrackChange(fn) { this.listeners.push(fn); }

  constraints(kind) {
    const id = this.deviceIds[kind];
    if (kind === 'video') return id ? {deviceId: {exact: id}, ...this.size} : {...this.size};
    return id ? {deviceId: {exact: id}} : true;
  }

  async start() {
    try {
      const s = await navigator.mediaDevices.getUserMedia({audio: this.constraints('audio'), video: this.allowVideo && this.constraints('video')});
      s.getTracks().forEach(t => this.stream.addTrack(t));
      this.error = null;
    } catch (e) {
      this.error = (e && (e.name === 'NotAllowedError' || e.name === 'SecurityError')) ? 'denied' : 'unavailable';
      if (this.error === 'unavailable') {  // maybe one of the two devices works
        for (const kind of this.allowVideo ? ['audio', 'video'] : ['audio']) {
          try {
            const s = await navigator.mediaDevices.getUserMedia({[kind]: this.constraints(kind)});
            s.getTracks().forEach(t => this.stream.addTrack(t));
          } catch { /* keep going without it */ }
        }
        if (this.stream.getTracks().length) this.error = 'partial';
      }
    }
    for (const kind of ['audio', 'video']) {
      const t = this.track(kind);
      if (t) { t.enabled = this.enabled[kind]; this.deviceIds[kind] = t.getSettings().deviceId || null; }
      else this.enabled[kind] = false;
    }
    return {ok: this.error === null, error: this.error};
  }

  has(kind) { return this.track(kind) !== null; }

  setEnabled(kind, on) {
    const t = this.track(kind);
    this.enabled[kind] = Boolean(on && t);
    if (t) t.enabled = this.enabled[kind];
    return this.enabled[kind];
  }

  async devices() {
    try {
      const all = await navigator.mediaDevices.enumerateDevices();
      return {audio: all.filter(d => d.kind === 'audioinput'), video: all.filter(d => d.kind === 'videoinput')};
    } catch { return {audio: [], video: []}; }
  }

  async useDevice(kind, deviceId) {
    this.deviceIds[kind] = deviceId || null;
    const s = await navigator.mediaDevices.getUserMedia({[kind]: this.constraints(kind)});
    const fresh = s.getTracks()[0];
    const old = this.track(kind);
    if (old) { this.stream.removeTrack(old); old.stop(); }
    fresh.enabled = this.enabled[kind] = true;
    this.stream.addTrack(fresh);
    this.listeners.forEach(fn => fn(kind, fresh));
    return fresh;
  }

  async startScreen(stream) {
    // ``stream`` lets tests hand in a ready-made stream (e.g. canvas.captureStream()).
    const s = stream || await navigator.mediaDevices.getDisplayMedia({video: {frameRate: 15}, audio: false});
    this.screen = s;
    const track = s.getVideoTracks()[0];
    if (track) track.addEventListener('ended', () => { if (this.screen === s && this.onscreenended) this.onscreenended(); });
    return s;
  }

  // The room does not let us send this kind (its policy): stop and remove the track.
  drop(kind) {
    const t = this.track(kind);
    if (t) { this.stream.removeTrack(t); t.stop(); }
    this.enabled[kind] = false;
  }

  stopScreen() {
    if (this.screen) this.screen.getTracks().forEach(t => t.stop());
    this.screen = null;
  }

  stop() {
    this.stream.getTracks().forEach(t => t.stop());
    this.stopScreen();
  }
}
