"""Video files: faces tracked across frames (vision/track.py), emotions smoothed over time.

`analyse_video` writes what the user asked for (annotated video, per-frame CSV, PNG plot, summary);
`webcam.run_webcam` shows a live window. Both use `track.FrameAnalyser`, which keeps the tracker
state for one stream.
"""

from __future__ import annotations

from emodetect.errors import InputError

import csv
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from emodetect.vision.track import FaceTracker, FrameAnalyser

log = logging.getLogger(__name__)


class VideoError(InputError):
    """A video file or camera that cannot be opened or read."""


def open_capture(source: str | int, container_format: str | None = None, max_pixels: int | None = None):
    """cv2.VideoCapture for a camera index, a file or a stream URL; VideoError if it will not open.

    With `container_format` (an upload's, `media.UPLOAD_FORMATS`) the file is read by PyAV with that
    demuxer alone: OpenCV would probe it, and follow a playlist to other files. `max_pixels`: frames
    larger than this are an error (reason too_large), from the stream's size before decoding.
    """
    import cv2

    if container_format is not None:
        from emodetect.media import AVCapture

        return AVCapture(source, container_format, max_pixels)
    if isinstance(source, str) and source.isdigit():
        source = int(source)
    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise VideoError(f"{source}: no such video file")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        what = f"camera {source}" if isinstance(source, int) else str(source)
        raise VideoError(f"{what}: cannot open (not a video, unsupported codec, or no such device)")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if max_pixels and width * height > max_pixels:
        capture.release()
        raise VideoError(f"{source}: too many pixels per frame: {width}x{height} = {width * height:,}, "
                         f"the limit is {max_pixels:,}", "too_large")
    return capture


def frames(capture, every: int = 1, max_frames: int | None = None,
           counter: dict[str, int] | None = None,
           frame_limit: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, time in seconds, BGR frame) of every `every`-th frame.

    `counter["read"]`, when given, is kept equal to the number of frames taken from the stream
    (analysed or skipped). `frame_limit`: the most frames the stream may hold, counted as they are
    decoded, never taken from the header (a Matroska header saying 1 s held 10,000 frames; issue 34):
    one frame more is a VideoError, reason too_large. `max_frames` stops quietly instead.
    """
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    index = sampled = 0
    start = time.perf_counter()
    while max_frames is None or sampled < max_frames:
        if frame_limit is not None and index >= frame_limit and capture.grab():
            raise VideoError(f"video has more than {frame_limit:,} frames, the limit is {frame_limit:,} "
                             "(counted while decoding)", "too_large")
        if index % every:
            # grab() skips decoding into an image; far cheaper than read() for skipped frames.
            if not capture.grab():
                break
            index += 1
            if counter is not None:
                counter["read"] = index
            continue
        ok, frame = capture.read()
        if not ok:
            break
        if counter is not None:
            counter["read"] = index + 1
        t = index / fps if fps > 0 else time.perf_counter() - start
        yield index, t, frame
        index += 1
        sampled += 1


CSV_FIELDS = ["frame", "time_s", "face_id", "x", "y", "width", "height", "score", "label", "confidence"]


@dataclass
class VideoSummary:
    source: str
    frames_read: int
    frames_analysed: int
    fps: float
    duration_s: float
    faces: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    scene_cuts_s: list[float] = field(default_factory=list)  # where every face track ended (track.SceneCuts)
    # Every analysed frame's (index, time, faces), kept in memory for the other streams and the
    # annotated video; not written to the summary (the per-frame CSV has it).
    frame_faces: list[tuple[int, float, list[Any]]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "frame_faces"}

    def to_text(self) -> str:
        lines = [f"{self.source}: {self.frames_analysed} of {self.frames_read} frames analysed "
                 f"({self.duration_s:.1f} s of video in {self.seconds:.1f} s), {len(self.faces)} face track(s)"
                 + (f", {len(self.scene_cuts_s)} scene cut(s)" if self.scene_cuts_s else "")]
        for face in self.faces:
            shares = ", ".join(f"{k} {v:.0%}" for k, v in list(face["frame_shares"].items())[:3])
            lines.append(f"  face #{face['id']}: {face['first_s']:.1f}-{face['last_s']:.1f} s, "
                         f"{face['frames']} frames; share of its frames by top label: {shares}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for name, path in self.outputs.items():
            lines.append(f"  {name}: {path}")
        return "\n".join(lines)


def analyse_video(detector, source: str | Path, out_dir: str | Path | None = None, every: int = 1,
                  smoothing: float = 0.5, blur: bool = False, save_video: bool = True,
                  max_frames: int | None = None, progress: bool = False, detect_every: int = 1,
                  container_format: str | None = None, frame_limit: int | None = None,
                  max_pixels: int | None = None) -> VideoSummary:
    """Track faces through a video file and write the per-frame CSV, plot, summary and video.

    Outputs go to `out_dir` (default: next to the video): <stem>_emotions.csv, <stem>_emotions.png,
    <stem>_summary.json and, when `save_video`, <stem>_annotated.mp4 (H.264 with the original
    sound, faces blurred if `blur`). `emodetect.multimodal.analyse_video` adds the voice and the
    words to the same timeline. `container_format`: the demuxer an upload is read with (`open_capture`).
    `frame_limit`: the most frames read (`frames`), a VideoError past it.
    `max_pixels`: the largest frame (`open_capture`), checked before decoding.
    """
    import cv2

    from emodetect.media import VideoWriter

    if every < 1:
        raise InputError(f"every must be >= 1, not {every}")
    source = Path(source)
    capture = open_capture(str(source), container_format, max_pixels)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    out_dir = Path(out_dir) if out_dir else source.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = source.stem
    csv_path, png_path = out_dir / f"{stem}_emotions.csv", out_dir / f"{stem}_emotions.png"
    summary_path, video_path = out_dir / f"{stem}_summary.json", out_dir / f"{stem}_annotated.mp4"
    analyser = FrameAnalyser(detector, smoothing, detect_every=detect_every)
    labels = list(detector.labels)
    writer = None
    series: list[tuple[float, int, np.ndarray]] = []
    frame_faces: list[tuple[int, float, list[Any]]] = []
    analysed = 0
    counter = {"read": 0}  # frames taken from the video, analysed or skipped
    started = time.perf_counter()
    bar = _progress(total // every if total else None, progress)
    try:
        with open(csv_path, "w", newline="") as handle:
            rows = csv.writer(handle)
            rows.writerow(CSV_FIELDS + labels)
            for index, t, bgr in frames(capture, every, max_frames, counter, frame_limit):
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                result = analyser.analyse(rgb, t)
                analysed += 1
                for face in result.faces:
                    b = face.box
                    probs = [face.probabilities[k] for k in labels]
                    rows.writerow([index, f"{t:.3f}", face.id, b.x, b.y, b.width, b.height, f"{face.score:.3f}",
                                   face.label, f"{face.confidence:.4f}", *[f"{p:.4f}" for p in probs]])
                    series.append((t, face.id, np.array(probs)))
                frame_faces.append((index, t, result.faces))
                if save_video:
                    if writer is None:
                        writer = VideoWriter(video_path, rgb.shape[1], rgb.shape[0], fps / every, audio_from=source,
                                             audio_format=container_format)
                    writer.write(result.plot(blur=blur))
                bar.update(1)
    finally:
        bar.close()
        capture.release()
    notes = writer.close() if writer is not None else []
    if analysed == 0:
        csv_path.unlink(missing_ok=True)
        raise VideoError(f"{source}: no frame could be read")
    outputs = {"csv": str(csv_path)}
    if writer is not None:
        outputs["video"] = str(video_path)
    if plot_timeline(series, labels, png_path, title=source.name):
        outputs["plot"] = str(png_path)
    outputs["summary"] = str(summary_path)
    summary = VideoSummary(str(source), frames_read=counter["read"], frames_analysed=analysed, fps=fps,
                           duration_s=round(counter["read"] / fps, 3), faces=_track_summaries(analyser.tracker, labels),
                           outputs=outputs, seconds=round(time.perf_counter() - started, 3), notes=notes,
                           scene_cuts_s=[round(t, 3) for t in analyser.cuts], frame_faces=frame_faces)
    summary_path.write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
    return summary


def _progress(total: int | None, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=not enabled, leave=False)


def _track_summaries(tracker: FaceTracker, labels: list[str]) -> list[dict[str, Any]]:
    """Per track: `frame_shares`, the share of its frames in which each label was on top (what the
    summary line reports: face-time per emotion), and the mean probabilities; `dominant` is the
    label with the largest share of frames."""
    out = []
    for track in tracker.all_tracks():
        mean = track.prob_sum / max(track.frames, 1)
        counts = track.top_frames if track.top_frames is not None else np.zeros(len(labels))
        shares = {labels[k]: round(float(counts[k]) / max(track.frames, 1), 4)
                  for k in np.argsort(-counts, kind="stable") if counts[k] > 0}
        out.append({"id": track.id, "frames": track.frames, "first_s": round(track.first_time, 3),
                    "last_s": round(track.last_time, 3), "dominant": next(iter(shares), labels[int(mean.argmax())]),
                    "frame_shares": shares,
                    "mean_probabilities": {k: round(float(v), 4) for k, v in zip(labels, mean)}})
    return out


def plot_timeline(series: list[tuple[float, int, np.ndarray]], labels: list[str], path: Path,
                  title: str = "", max_faces: int = 6) -> bool:
    """PNG of each face's (smoothed) emotion probabilities over time; False when there is no face."""
    if not series:
        return False
    from matplotlib.figure import Figure  # no pyplot: no backend switch for the caller

    from emodetect.vision.draw import PROBABILITY_LIMITS, plot_colour

    counts: dict[int, int] = {}
    for _, face_id, _ in series:
        counts[face_id] = counts.get(face_id, 0) + 1
    ids = sorted(sorted(counts, key=lambda i: -counts[i])[:max_faces])
    if len(counts) > len(ids):  # say so on the chart rather than drop faces silently
        shown = f"the {len(ids)} longest-tracked of {len(counts)} faces shown (all are in the CSV)"
        title = f"{title}; {shown}" if title else shown
    # Constrained layout with the legend "outside" the axes: the figure is as tall as what it holds
    # (tight_layout left an empty band above the legend; issue 32).
    fig = Figure(figsize=(9, 1.9 * len(ids) + 0.9), dpi=100, layout="constrained")
    axes = fig.subplots(len(ids), 1, sharex=True, squeeze=False)[:, 0]
    for ax, face_id in zip(axes, ids):
        times = np.array([t for t, i, _ in series if i == face_id])
        probs = np.array([p for _, i, p in series if i == face_id])
        for k, label in enumerate(labels):
            ax.plot(times, probs[:, k], label=label, color=plot_colour(label), linewidth=1.5)
        ax.set_ylim(*PROBABILITY_LIMITS)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel(f"face #{face_id}")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), ncol=len(labels), fontsize=7, loc="outside upper center")
    axes[-1].set_xlabel("time (s)")
    if title:  # over the top axes: constrained layout lays a suptitle over an "outside" legend
        axes[0].set_title(title, fontsize=9)
    fig.savefig(path)
    return True


