// emodetect web page, Live voice tab: the microphone streamed over WS /v1/voice/stream; a message
// per window comes back as soon as the window is complete, drawn on a rolling chart.
const liveVoice = {
  mic: null, socket: null, history: [], windows: 0,

  async start() {
    const status = $("lv-status");
    try {
      // Each block goes out as it comes, once the stream is open.
      this.mic = await openMicrophone((samples) => {
        if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(samples.buffer);
      });
    } catch (err) {
      return setStatus(status, `No microphone: ${err.message}`, true);
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new WebSocket(`${scheme}://${location.host}/v1/voice/stream?sample_rate=${this.mic.rate}&format=f32`);
    this.socket.binaryType = "arraybuffer";
    this.history = [];
    this.windows = 0;
    $("lv-words").replaceChildren();
    this.socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    this.socket.onclose = (event) => {
      if (event.code !== 1000 && event.code !== 1005) setStatus(status, `Stream closed: ${event.reason || event.code}`, true);
      this.stop(false);
    };
    this.socket.onopen = () => setStatus(status, "Listening... speak; each 3 s window is read as it completes.");
    $("lv-start").disabled = true;
    $("lv-stop").disabled = false;
  },

  receive(m) {
    const now = performance.now();
    if (m.kind === "window") {
      this.windows += 1;
      this.history.push({ t: now, probabilities: m.silent && !m.smoothed_label ? null : m.smoothed });
      this.history = this.history.filter((h) => now - h.t < HISTORY_SECONDS * 1000);
      drawChart($("lv-chart"), $("lv-legend"), this.history, now);
      $("lv-windows").textContent = String(this.windows);
      $("lv-now").textContent = m.silent ? "silent" : `${m.label} ${pct(m.confidence)}`;
      $("lv-now").dataset.emotion = m.silent ? "" : m.label;
      $("lv-running").textContent = m.smoothed_label ?? "-";
    } else if (m.kind === "utterance") {
      $("lv-words").append(el("li", { "data-emotion": m.label ?? "",
        text: `${m.start_s.toFixed(1)}-${m.end_s.toFixed(1)} s: “${m.text}” ${m.label ?? ""} ${pct(m.confidence)}` }));
    }
  },

  stop(flush = true) {
    if (this.socket?.readyState === WebSocket.OPEN && flush) this.socket.send(JSON.stringify({ end: true }));
    this.mic?.close();
    this.mic = null;
    $("lv-start").disabled = false;
    $("lv-stop").disabled = true;
  },
};

document.addEventListener("DOMContentLoaded", () => {
  $("lv-start").addEventListener("click", () => liveVoice.start());
  $("lv-stop").addEventListener("click", () => liveVoice.stop());
});
