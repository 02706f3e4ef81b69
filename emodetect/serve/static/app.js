// emodetect web page: photo upload and live camera over POST /v1/detect (text and voice tabs: text_voice.js).
// Plain browser JavaScript, no build step. Nothing is stored: frames go to the server and back.
"use strict";

// The colours of emodetect.vision.draw, so the page and ?annotate=true images agree.
const COLORS = {
  angry: "rgb(230,40,40)", disgust: "rgb(120,160,30)", fear: "rgb(150,60,200)", happy: "rgb(250,200,0)",
  sad: "rgb(40,110,230)", surprise: "rgb(250,120,0)", neutral: "rgb(200,200,200)",
};
const colorOf = (label) => COLORS[label] || "#2f6fde";
const $ = (id) => document.getElementById(id);
const pct = (p) => `${Math.round(p * 100)}%`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// POST a File or Blob as the raw body; the response, or an Error with the server's message.
async function postBlob(path, blob) {
  const response = await fetch(path, {
    method: "POST", body: blob,
    headers: { "Content-Type": blob.type || "application/octet-stream" },
  });
  if (!response.ok) throw await uploadError(response);
  return response;
}

// An Error for a refused upload, carrying the HTTP status and the server's own words.
async function uploadError(response) {
  const detail = await errorMessage(response);
  return Object.assign(new Error(detail), { status: response.status, detail });
}

// What went wrong with an upload, said to a person ("This file is not an image"); the server's own
// words, for whoever wants them, go in the status's tooltip (setStatus's `detail`).
const KIND_NAMES = { image: "an image", audio: "a recording", video: "a video" };
const KIND_FORMATS = {
  image: "a JPEG, PNG, WebP, BMP, GIF or TIFF photo",
  audio: "a WAV, MP3, M4A, OGG, FLAC or WebM recording",
  video: "an MP4, MOV, WebM, MKV or AVI video",
};
function personMessage(err, kind) {
  if (!err.status) return "The server could not be reached: is emodetect serve still running?";
  switch (err.status) {
    case 400: return "This file is empty or did not arrive whole: try choosing it again.";
    case 413: return "This file is too large for this service: try a smaller or shorter one.";
    case 415: return `This file is not ${KIND_NAMES[kind]}: choose ${KIND_FORMATS[kind]}.`;
    case 422: return `This file looks like ${KIND_NAMES[kind]} but seems damaged: it could not be read.`;
    case 503: return "The service is starting or busy: try again in a moment.";
    case 504: return "This took longer than the service allows: try a smaller or shorter file.";
    default: return `Something went wrong on the server (error ${err.status}).`;
  }
}

// An image to /v1/detect: JSON back, or an image Blob when the query asks for one.
async function detect(blob, query = "") {
  const response = await postBlob(`/v1/detect${query}`, blob);
  return query ? response.blob() : response.json();
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// Boxes as positioned elements in percent of the image, so they follow the image's displayed size.
function drawBoxes(overlay, result, mirror = false) {
  overlay.replaceChildren();
  const { width, height } = result.image;
  for (const face of result.faces) {
    const b = face.box;
    const x = mirror ? width - b.x - b.width : b.x;
    const box = el("div", { class: "box", "data-emotion": face.label });
    box.style.setProperty("--c", colorOf(face.label));
    Object.assign(box.style, {
      left: `${(100 * x) / width}%`, top: `${(100 * b.y) / height}%`,
      width: `${(100 * b.width) / width}%`, height: `${(100 * b.height) / height}%`,
    });
    if (b.y < 0.08 * height) box.classList.add("low");  // no room above: put the tag below
    box.append(el("span", { class: "tag", text: `#${face.id} ${face.label} ${pct(face.confidence)}` }));
    overlay.append(box);
  }
}

// One bar per label (in the given order, or the `top` most probable ones).
function probabilityBars(probabilities, top = 0) {
  let entries = Object.entries(probabilities);
  if (top) entries = entries.sort((a, b) => b[1] - a[1]).slice(0, top);
  return entries.map(([label, p]) => {
    const fill = el("div", { class: "fill", style: { width: pct(p) } });
    fill.style.setProperty("--c", colorOf(label));
    return el("div", { class: "bar", "data-label": label }, [
      el("span", { text: label }), el("div", { class: "track" }, [fill]), el("span", { class: "pct", text: pct(p) }),
    ]);
  });
}

// A JSON error body's `detail` as a message, or the status line.
async function errorMessage(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

function faceCard(face) {
  const bars = probabilityBars(face.probabilities);
  const title = el("h3", {}, [`Face ${face.id}: `, el("span", { class: "label", text: face.label }),
    ` ${pct(face.confidence)}`]);
  return el("div", { class: "face", "data-emotion": face.label }, [title, ...bars]);
}

function showFaces(container, result) {
  container.replaceChildren(...result.faces.map(faceCard));
}

function setStatus(node, text, error = false, detail = "") {
  node.textContent = text;
  node.title = detail;
  node.classList.toggle("error", error);
}

// ---- tabs
const TABS = ["photo", "live", "text", "voice", "livevoice", "video"];

function selectTab(name) {
  for (const tab of TABS) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`panel-${tab}`).hidden = tab !== name;
  }
  if (name !== "live") live.stop();
  if (name !== "voice") recorder.stop(false);
  if (name !== "livevoice") liveVoice.stop();
}

// ---- photo
const photo = {
  file: null,
  url: null,

  async show(file) {
    const status = $("photo-status");
    if (!file) return;
    this.file = file;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = URL.createObjectURL(file);
    setStatus(status, `Analysing ${file.name}...`);
    const started = performance.now();
    try {
      const result = await detect(file);
      $("photo-image").src = this.url;
      $("photo-overlay").hidden = false;
      $("explain-toggle").checked = false;
      $("photo-result").hidden = false;
      drawBoxes($("photo-overlay"), result);
      showFaces($("photo-faces"), result);
      const ms = Math.round(performance.now() - started);
      const n = result.faces.length;
      setStatus(status, `${n} face${n === 1 ? "" : "s"} in ${result.image.width}x${result.image.height} ` +
        `(${ms} ms, model ${result.model}, detector ${result.detector})` + (n ? "" : ": try a clearer, frontal face"));
    } catch (err) {
      $("photo-result").hidden = true;
      setStatus(status, personMessage(err, "image"), true, err.detail);
    }
  },

  explained: null,

  // The server draws each face's saliency map (POST /v1/explain?annotate=true); it replaces the
  // photo, and the page's own boxes are hidden, until the toggle is turned off.
  async explain(on) {
    const status = $("photo-status");
    if (!this.file) return;
    if (!on) {
      $("photo-image").src = this.url;
      $("photo-overlay").hidden = false;
      return;
    }
    setStatus(status, "Computing what each emotion rests on (saliency maps)...");
    const started = performance.now();
    // About a second a face: past 2 s the toggle shows it is working, with the seconds so far.
    const toggle = $("explain-toggle"), bar = $("explain-progress");
    toggle.disabled = true;
    const busy = setInterval(() => {
      const seconds = Math.round((performance.now() - started) / 1000);
      if (seconds < 2) return;
      bar.hidden = false;
      $("explain-label").setAttribute("aria-busy", "true");
      setStatus(status, `Computing what each emotion rests on (saliency maps): ${seconds} s so far, about a second a face...`);
    }, 500);
    try {
      const blob = await (await postBlob("/v1/explain?annotate=true", this.file)).blob();
      if (this.explained) URL.revokeObjectURL(this.explained);
      this.explained = URL.createObjectURL(blob);
      $("photo-image").src = this.explained;
      $("photo-overlay").hidden = true;
      setStatus(status, `Saliency maps drawn (${Math.round(performance.now() - started)} ms): warm colours are ` +
        "where hiding the face would most change the emotion read.");
    } catch (err) {
      $("explain-toggle").checked = false;
      setStatus(status, `Could not explain: ${err.message}`, true);
    } finally {
      clearInterval(busy);
      bar.hidden = true;
      $("explain-label").removeAttribute("aria-busy");
      toggle.disabled = false;
    }
  },

  async download(query, suffix) {
    if (!this.file) return;
    try {
      const blob = await detect(this.file, query);
      const link = el("a", { href: URL.createObjectURL(blob), download: `${this.file.name.replace(/\.[^.]*$/, "")}_${suffix}.${blob.type === "image/png" ? "png" : "jpg"}` });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (err) {
      setStatus($("photo-status"), err.message, true);
    }
  },
};

// ---- live camera
const HISTORY_SECONDS = 30;

const live = {
  running: false,
  stream: null,
  history: [],   // {t, probabilities|null} of the most confident face per frame
  done: [],      // completion times of recent frames, for FPS

  async start() {
    const status = $("live-status");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus(status, "This browser gives no camera access here (it needs https or localhost).", true);
      return;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      setStatus(status, `Camera unavailable: ${err.message || err.name}`, true);
      return;
    }
    const video = $("live-video");
    video.srcObject = this.stream;
    await video.play();
    this.running = true;
    this.history = [];
    this.done = [];
    $("live-start").disabled = true;
    $("live-stop").disabled = false;
    setStatus(status, "Live: frames are analysed and discarded.");
    this.loop();
  },

  stop() {
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    $("live-start").disabled = false;
    $("live-stop").disabled = true;
  },

  async loop() {
    const video = $("live-video");
    const canvas = document.createElement("canvas");
    const context = canvas.getContext("2d");
    while (this.running) {
      const started = performance.now();
      const interval = 1000 / Number($("live-rate").value);
      if (video.videoWidth) {
        // Send at most 640 px wide: enough for faces, light on the network and the server.
        const scale = Math.min(1, 640 / video.videoWidth);
        canvas.width = Math.round(video.videoWidth * scale);
        canvas.height = Math.round(video.videoHeight * scale);
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
        try {
          const result = await detect(blob);
          if (!this.running) break;
          this.render(result, performance.now() - started);
        } catch (err) {
          setStatus($("live-status"), `Frame failed: ${err.message}`, true);
        }
      }
      const wait = interval - (performance.now() - started);
      if (wait > 0) await sleep(wait);
    }
  },

  render(result, latency) {
    const mirror = $("live-mirror").checked;
    $("live-video").classList.toggle("mirror", mirror);
    drawBoxes($("live-overlay"), result, mirror);
    showFaces($("live-faces"), result);
    const now = performance.now();
    this.done.push(now);
    this.done = this.done.filter((t) => now - t < 3000);
    const span = this.done.length > 1 ? (this.done[this.done.length - 1] - this.done[0]) / 1000 : 0;
    $("fps").textContent = span ? ((this.done.length - 1) / span).toFixed(1) : "0.0";
    $("latency").textContent = `${Math.round(latency)} ms`;
    $("live-count").textContent = String(result.faces.length);
    const top = result.faces.reduce((best, f) => (!best || f.confidence * f.score > best.confidence * best.score ? f : best), null);
    this.history.push({ t: now, probabilities: top ? top.probabilities : null });
    this.history = this.history.filter((h) => now - h.t < HISTORY_SECONDS * 1000);
    this.chart(now);
  },

  chart(now) {
    drawChart($("live-chart"), $("chart-legend"), this.history, now);
  },
};

// A rolling chart of probabilities over time, [{t, probabilities}] (null: a gap), on a canvas;
// the live camera's and the live voice's.
function drawChart(canvas, legend, history, now) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#e3e5e8";
  ctx.lineWidth = 1;
  for (const y of [0.25, 0.5, 0.75]) {
    ctx.beginPath(); ctx.moveTo(0, height * y); ctx.lineTo(width, height * y); ctx.stroke();
  }
  const labels = [...new Set(history.flatMap((h) => (h.probabilities ? Object.keys(h.probabilities) : [])))];
  if (legend.childElementCount !== labels.length) {
    legend.replaceChildren(...labels.map((label) => {
      const item = el("span", { text: label });
      item.style.setProperty("--c", colorOf(label));
      return item;
    }));
  }
  // The time axis grows with the session up to 30 s, so a new session fills the chart at once.
  const first = history.length ? history[0].t : now;
  const span = Math.min(HISTORY_SECONDS * 1000, Math.max(5000, now - first));
  const xOf = (t) => width - ((now - t) / span) * width;
  ctx.fillStyle = "#888";  // pure grey: the browser test counts coloured pixels as lines
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillText("100%", 2, 10);
  ctx.fillText("50%", 2, height / 2 - 2);
  ctx.fillText(`-${Math.round(span / 1000)} s`, 2, height - 4);
  ctx.lineWidth = 2;
  for (const label of labels) {
    ctx.strokeStyle = colorOf(label);
    ctx.beginPath();
    let drawing = false;
    for (const h of history) {
      if (!h.probabilities) { drawing = false; continue; }  // a gap where nothing was read
      const x = xOf(h.t);
      const y = height - 4 - h.probabilities[label] * (height - 8);
      if (drawing) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      drawing = true;
    }
    ctx.stroke();
  }
}

// ---- wiring
document.addEventListener("DOMContentLoaded", () => {
  for (const tab of TABS) $(`tab-${tab}`).addEventListener("click", () => selectTab(tab));
  // The card of the face model this server answers with.
  fetch("/v1/models").then((r) => r.json()).then((body) => {
    const served = body.models.find((m) => m.modality === "vision" && m.loaded);
    if (served) $("model-card").href = served.card;
  }).catch(() => {});

  const input = $("file-input");
  input.addEventListener("change", () => photo.show(input.files[0]));
  const zone = $("dropzone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) photo.show(event.dataTransfer.files[0]);
  });
  $("download-annotated").addEventListener("click", () => photo.download("?annotate=true", "annotated"));
  $("download-blurred").addEventListener("click", () => photo.download("?annotate=true&blur=true", "blurred"));
  $("explain-toggle").addEventListener("change", (event) => photo.explain(event.target.checked));

  $("live-start").addEventListener("click", () => live.start());
  $("live-stop").addEventListener("click", () => live.stop());
  $("live-mirror").addEventListener("change", () => $("live-video").classList.toggle("mirror", $("live-mirror").checked));
  $("live-video").classList.toggle("mirror", $("live-mirror").checked);
});
