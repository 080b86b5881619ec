// A timer in a worker (composite.js): posts a message every `intervalMs` milliseconds (the last message it
// was sent; 0 stops). Worker timers keep their pace in a background tab, where page timers slow to 1 Hz.
let timer = null;
onmessage = ev => {
  clearInterval(timer);
  timer = ev.data > 0 ? setInterval(() => postMessage(0), ev.data) : null;
};
