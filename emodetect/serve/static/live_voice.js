// emodetect web page, Live voice tab: the microphone streamed over WS /v1/voice/stream; a message
// per window comes back as soon as the window is complete, drawn on a rolling chart.
const liveVoice = {
  stream: null, context: null, node: null, socket: null, history: [], windows: 0,

  async start() {
    const status = $("lv-status");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      return setStatus(status, `No microphone: ${err.message}`, true);
    }
    this.context = new AudioContext();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new WebSocket(`${scheme}://${location.host}/v1/voice/stream?sample_rate=${this.context.sampleRate}&format=f32`);
    this.socket.binaryType = "arraybuffer";
    this.history = [];
    this.windows = 0;
    $("lv-words").replaceChildren();
    this.socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    this.socket.onclose = (event) => {
      if (event.code !== 1000 && event.code !== 1005) setStatus(status, `Stream closed: ${event.reason || event.code}`, true);
      this.stop(false);
    };
    this.socket.onopen = () => {
      const source = this.context.createMediaStreamSource(this.stream);
      // ScriptProcessor needs no extra module file; each block goes out as it comes.
      this.node = this.context.createScriptProcessor(4096, 1, 1);
      this.node.onaudioprocess = (event) => {
        if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(new Float32Array(event.inputBuffer.getChannelData(0)).buffer);
      };
      source.connect(this.node);
      this.node.connect(this.context.destination);
      setStatus(status, "Listening... speak; each 3 s window is read as it completes.");
    };
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
    this.node?.disconnect();
    this.stream?.getTracks().forEach((track) => track.stop());
    this.context?.close();
    this.context = this.node = this.stream = null;
    $("lv-start").disabled = false;
    $("lv-stop").disabled = true;
  },
};

document.addEventListener("DOMContentLoaded", () => {
  $("lv-start").addEventListener("click", () => liveVoice.start());
  $("lv-stop").addEventListener("click", () => liveVoice.stop());
});
