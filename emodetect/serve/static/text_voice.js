// emodetect web page, text and voice tabs: POST /v1/text (JSON) and POST /v1/voice (an audio file,
// or a WAV recorded from the microphone here). Uses the helpers of app.js (loaded first).
"use strict";

const MAX_RECORD_S = 60;

function resultCard(title, label, confidence, probabilities, extra = [], top = 0) {
  const head = el("h3", {}, [title, el("span", { class: "label", text: label ?? "no label" }),
    label ? ` ${pct(confidence)}` : ""]);
  return el("div", { class: "face", "data-emotion": label ?? "" }, [head, ...extra, ...probabilityBars(probabilities, top)]);
}

// ---- text
const text = {
  async read() {
    const status = $("text-status");
    const texts = $("text-input").value.split("\n").map((t) => t.trim()).filter(Boolean);
    if (!texts.length) return setStatus(status, "Type a text first (one per line).", true);
    setStatus(status, `Reading ${texts.length} text(s)...`);
    const response = await fetch("/v1/text", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ texts }),
    });
    if (!response.ok) return setStatus(status, await errorMessage(response), true);
    const body = await response.json();
    $("text-results").replaceChildren(...body.results.map((r) => {
      const notes = [];
      if (r.group) notes.push(el("p", { class: "note", text: `Face-model group: ${r.group}` }));
      if (r.labels.length > 1) notes.push(el("p", { class: "note", text: `All labels: ${r.labels.join(", ")}` }));
      // The joint model's other label sets, named by what they are ("6 basic: joy"), on request.
      const sets = Object.entries(r.heads ?? {}).filter(([, h]) => h.label)
        .map(([name, h]) => el("p", { class: "note head", text: `${h.title || name}: ${h.labels.join(", ")}` }));
      if (sets.length) notes.push(el("details", { class: "label-sets" }, [el("summary", { text: "Other label sets" }), ...sets]));
      if (r.truncated) notes.push(el("p", { class: "note", text: `Only the first ${body.max_tokens} tokens were read.` }));
      if (r.error) notes.push(el("p", { class: "note", text: r.error }));
      const snippet = r.text.length > 80 ? `${r.text.slice(0, 77)}...` : r.text;
      return resultCard(`“${snippet}”: `, r.label, r.probabilities[r.label] ?? 0, r.probabilities, notes, 5);
    }));
    setStatus(status, `${body.results.length} text(s), model ${body.model}.`);
  },
};

// ---- voice
async function analyseAudio(blob, name) {
  const status = $("voice-status");
  setStatus(status, `Analysing ${name}...`);
  let r;
  try {
    r = await (await postBlob("/v1/voice", blob)).json();
  } catch (err) {
    return setStatus(status, personMessage(err, "audio"), true, err.detail);
  }
  const voiced = r.windows.filter((w) => !w.silent);
  const timeline = el("ol", { class: "timeline" }, voiced.map((w) =>
    el("li", { class: w.carries_label ? "carries" : "",
      text: `${w.start_s.toFixed(1)}-${w.end_s.toFixed(1)} s: ${w.label} ${pct(w.confidence)}${w.carries_label ? " ★" : ""}` })));
  const notes = r.notes.map((n) => el("p", { class: "note", text: n }));
  // The words heard (the service's speech extra), each utterance with its text emotion.
  const said = r.transcript?.length ? [el("h4", { text: "Words heard" }), el("ol", { class: "transcript" },
    r.transcript.map((u) => el("li", { "data-emotion": u.label ?? "",
      text: `${u.start_s.toFixed(1)}-${u.end_s.toFixed(1)} s: “${u.text}” ${u.label ?? ""} ${pct(u.confidence)}` })))] : [];
  $("voice-result").replaceChildren(resultCard(`${name}, ${r.duration_s.toFixed(1)} s: `, r.label, r.confidence,
    r.probabilities, [...notes, ...said, timeline]));
  setStatus(status, r.label ? `${voiced.length} voiced window(s), model ${r.model}.` : "All silent: nothing to read.",
    !r.label);
}

// 16-bit mono PCM WAV from Float32 samples: what /v1/voice reads without any codec.
function wavBlob(chunks, rate) {
  const n = chunks.reduce((sum, c) => sum + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const ascii = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  ascii(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); ascii(8, "WAVEfmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); ascii(36, "data"); view.setUint32(40, 2 * n, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const x of chunk) { view.setInt16(offset, Math.max(-1, Math.min(1, x)) * 0x7fff, true); offset += 2; }
  }
  return new Blob([view], { type: "audio/wav" });
}

// The browser microphone: its Float32 blocks handed to `onSamples` as they come (ScriptProcessor
// needs no extra module file); `close()` stops it and gives the device back. The Voice tab's
// recorder and the Live voice tab both listen through it.
async function openMicrophone(onSamples) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const node = context.createScriptProcessor(4096, 1, 1);
  node.onaudioprocess = (event) => onSamples(new Float32Array(event.inputBuffer.getChannelData(0)));
  context.createMediaStreamSource(stream).connect(node);
  node.connect(context.destination);
  return {
    rate: context.sampleRate,
    close() {
      node.disconnect();
      stream.getTracks().forEach((track) => track.stop());
      context.close();
    },
  };
}

const recorder = {
  mic: null, chunks: [],

  async start() {
    const status = $("voice-status");
    this.chunks = [];
    try {
      this.mic = await openMicrophone((samples) => {
        this.chunks.push(samples);
        const seconds = this.seconds();
        $("rec-seconds").textContent = seconds.toFixed(1);
        if (seconds >= MAX_RECORD_S) this.stop(true);
      });
    } catch (err) {
      return setStatus(status, `No microphone: ${err.message}`, true);
    }
    $("rec-start").disabled = true;
    $("rec-stop").disabled = false;
    setStatus(status, "Recording... speak, then press Stop.");
  },

  seconds() {
    return this.mic ? this.chunks.reduce((sum, c) => sum + c.length, 0) / this.mic.rate : 0;
  },

  stop(analyse) {
    if (!this.mic) return;
    const rate = this.mic.rate;
    this.mic.close();
    const chunks = this.chunks;
    this.mic = null;
    this.chunks = [];
    $("rec-start").disabled = false;
    $("rec-stop").disabled = true;
    if (analyse && chunks.length) analyseAudio(wavBlob(chunks, rate), "recording");
  },
};

document.addEventListener("DOMContentLoaded", () => {
  $("text-go").addEventListener("click", () => text.read());
  const audio = $("audio-input");
  audio.addEventListener("change", () => { if (audio.files[0]) analyseAudio(audio.files[0], audio.files[0].name); });
  $("rec-start").addEventListener("click", () => recorder.start());
  $("rec-stop").addEventListener("click", () => recorder.stop(true));
});

// ---- the report on a CSV of posts or reviews: POST /v1/text/report, the page offered as a download
// (it is a page of its own, with its own styles: opened here it would be held to this page's policy).
const textReport = {
  url: null,

  async make() {
    const status = $("report-status");
    const file = $("report-input").files[0];
    if (!file) return setStatus(status, "Choose a CSV first.", true);
    const query = new URLSearchParams({ column: $("report-column").value.trim() || "text" });
    for (const [key, id] of [["by", "report-by"], ["over", "report-over"], ["split_at", "report-split"]]) {
      if ($(id).value.trim()) query.set(key, $(id).value.trim());
    }
    const form = new FormData();
    form.append("file", file);
    setStatus(status, `Reading ${file.name}...`);
    $("report-go").disabled = true;
    let body;
    try {
      const response = await fetch(`/v1/text/report?${query}`, { method: "POST", body: form });
      if (!response.ok) return setStatus(status, await errorMessage(response), true);
      body = await response.json();
    } catch (err) {
      return setStatus(status, err.message, true);
    } finally {
      $("report-go").disabled = false;
    }
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = URL.createObjectURL(new Blob([body.html], { type: "text/html" }));
    const link = $("report-link");
    link.href = this.url;
    link.hidden = false;
    const s = body.summary;
    const top = s.shares.filter((r) => r.group === "all").sort((a, b) => b.share - a.share)[0];
    setStatus(status, `${s.hygiene.scored} of ${s.hygiene.rows} row(s) read${top ? `; most often ${top.label} (${pct(top.share)})` : ""}; ` +
      `${s.changes.length} supported change(s) over time.`);
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const input = $("report-input");
  input.addEventListener("change", () => { $("report-go").disabled = !input.files[0]; });
  $("report-go").addEventListener("click", () => textReport.make());
});
