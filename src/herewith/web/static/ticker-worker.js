// A timer in a worker (composite.js): posts a message every `intervalMs` milliseconds (the last message it
// was sent; 0 stops). Worker timers keep their pace in a background tab, where page timers slow to 1 Hz.
// Ticks are due at start + n x interval, so a late tick does not push the later ones back (no drift); ticks
// missed while the machine was busy are skipped, not sent in a burst.
let timer = null;
onmessage = ev => {
  clearTimeout(timer);
  timer = null;
  const interval = ev.data;
  if (!(interval > 0)) return;
  const start = performance.now();
  let n = 0;
  const tick = () => {
    postMessage(0);
    const now = performance.now();
    n = Math.max(n + 1, Math.floor((now - start) / interval) + 1);
    timer = setTimeout(tick, Math.max(0, start + n * interval - now));
  };
  timer = setTimeout(tick, interval);
};
