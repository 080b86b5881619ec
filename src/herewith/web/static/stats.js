// Connection statistics: every ~5 s the page samples its peer connections and sends a `stats` message
// (packet loss in percent, bitrates in bits per second) that insights store as the participant's samples.
//
//   const sampler = new StatsSampler(() => media.peerConnections(), sample => sig.send(sample), 5000);
//   sampler.start(); sampler.stop();

async function totals(pc) {
  const t = {bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, packetsLost: 0, remoteLost: 0};
  try {
    (await pc.getStats()).forEach(s => {
      if (s.type === 'outbound-rtp') { t.bytesSent += s.bytesSent || 0; t.packetsSent += s.packetsSent || 0; }
      else if (s.type === 'inbound-rtp') { t.bytesReceived += s.bytesReceived || 0; t.packetsReceived += s.packetsReceived || 0;
                                           t.packetsLost += Math.max(0, s.packetsLost || 0); }
      else if (s.type === 'remote-inbound-rtp') t.remoteLost += Math.max(0, s.packetsLost || 0);
    });
  } catch { /* closed meanwhile */ }
  return t;
}

export class StatsSampler {
  constructor(getPcs, report, intervalMs = 5000) {
    this.getPcs = getPcs;
    this.report = report;
    this.intervalMs = intervalMs;
    this.last = new WeakMap();
    this.lastAt = performance.now();
    this.timer = null;
  }

  start() {
    this.stop();
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  stop() { clearInterval(this.timer); this.timer = null; }

  async tick() {
    const now = performance.now();
    const dt = Math.max(0.001, (now - this.lastAt) / 1000);
    this.lastAt = now;
    const d = {bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, packetsLost: 0, remoteLost: 0};
    for (const pc of this.getPcs()) {
      const cur = await totals(pc);
      const prev = this.last.get(pc) || {bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, packetsLost: 0, remoteLost: 0};
      for (const k of Object.keys(d)) d[k] += Math.max(0, cur[k] - prev[k]);
      this.last.set(pc, cur);
    }
    const pct = (lost, ok) => (lost + ok > 0 ? Math.min(100, (100 * lost) / (lost + ok)) : 0);
    this.report({
      type: 'stats',
      packetLossSend: Number(pct(d.remoteLost, Math.max(0, d.packetsSent - d.remoteLost)).toFixed(3)),
      packetLossRecv: Number(pct(d.packetsLost, d.packetsReceived).toFixed(3)),
      bitrateSend: Math.round((d.bytesSent * 8) / dt),
      bitrateRecv: Math.round((d.bytesReceived * 8) / dt),
      sampleRateMs: this.intervalMs,
    });
  }
}
