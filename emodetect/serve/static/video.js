// emodetect web page, video tab: POST /v1/video?media=true with the video (and optional subtitles);
// shows the annotated H.264 clip with its sound, the stacked timeline and the fused segments.
// Uses the helpers of app.js (loaded first).
"use strict";

function base64Blob(data, type) {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

const videoTab = {
  urls: [],

  async analyse() {
    const status = $("video-status");
    const file = $("video-input").files[0];
    if (!file) return setStatus(status, "Choose a video first.", true);
    const form = new FormData();
    form.append("file", file);
    const subtitles = $("subtitles-input").files[0];
    if (subtitles) form.append("subtitles", subtitles);
    setStatus(status, `Analysing ${file.name} (faces, voice${subtitles ? ", subtitles" : ""})...`);
    $("video-go").disabled = true;
    let body;
    try {
      const response = await fetch("/v1/video?media=true&captions=true", { method: "POST", body: form });
      if (!response.ok) {
        const err = await uploadError(response);
        return setStatus(status, personMessage(err, "video"), true, err.detail);
      }
      body = await response.json();
    } catch (err) {
      return setStatus(status, personMessage(err, "video"), true, err.detail || err.message);
    } finally {
      $("video-go").disabled = false;
    }
    this.urls.forEach((url) => URL.revokeObjectURL(url));
    const video = URL.createObjectURL(base64Blob(body.video_mp4_base64, "video/mp4"));
    const timeline = URL.createObjectURL(base64Blob(body.timeline_png_base64, "image/png"));
    this.urls = [video, timeline];
    const player = $("video-player");
    player.src = video;
    player.hidden = false;
    const img = $("video-timeline");
    img.src = timeline;
    img.hidden = false;
    $("video-segments").replaceChildren(...body.segments.map((s) => {
      const streams = ["face", "voice", "text"].filter((k) => s[k]).map((k) => `${k} ${s[k].label}`).join(", ");
      const words = s.words ? ` “${s.words}”` : "";
      const fused = s.label ? `${s.label} ${pct(s.confidence)}` : "nothing read";
      return el("li", { "data-emotion": s.label ?? "",
        text: `${s.start_s.toFixed(1)}-${s.end_s.toFixed(1)} s: ${fused} (${streams || "no stream"})${words}` });
    }));
    const notes = body.notes.length ? ` Notes: ${body.notes.join("; ")}.` : "";
    setStatus(status, `${body.segments.length} segment(s); share of labelled time: ${Object.entries(body.fused.time_shares ?? {}).map(([k, v]) => `${k} ${Math.round(100 * v)}%`).join(", ") || "-"}.${notes}`);
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const input = $("video-input");
  input.addEventListener("change", () => { $("video-go").disabled = !input.files[0]; });
  $("video-go").addEventListener("click", () => videoTab.analyse());
});
