"""Faces followed across the frames of one stream, their emotions smoothed over time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emodetect.vision.detectors import Detection, box_iou
from emodetect.vision.results import Result


@dataclass
class Track:
    id: int
    box: tuple[float, float, float, float]
    probabilities: np.ndarray  # smoothed
    last_time: float
    first_time: float
    missed: int = 0
    frames: int = 0
    prob_sum: np.ndarray | None = None  # of smoothed probabilities, for the summary
    top_frames: np.ndarray | None = None  # frames in which each label was the (smoothed) top one


class FaceTracker:
    """Give each face a stable id across frames and smooth its probabilities over time.

    Matching is greedy on box overlap (IoU), falling back to centre distance for fast motion: at
    video frame rates a face moves little between two sampled frames, so this is enough and costs
    nothing next to the CNNs. A track survives `max_missed` sampled frames without a match, so a
    face lost for a blink keeps its id.

    Smoothing is an exponential moving average with time constant `smoothing` seconds
    (0 = no smoothing): weight of the past = exp(-dt / smoothing), so the result does not depend on
    the frame rate or on `--every`.
    """

    def __init__(self, smoothing: float = 0.5, max_missed: int = 10, min_iou: float = 0.2):
        self.smoothing = smoothing
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.tracks: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 0

    def update(self, detections: list[Detection], probabilities: np.ndarray, t: float) -> list[tuple[int, np.ndarray]]:
        """Match this frame's detections to tracks; returns (track id, smoothed probs) per detection."""
        boxes = [(d.x, d.y, d.width, d.height) for d in detections]
        pairs = []
        for ti, track in enumerate(self.tracks):
            for di, box in enumerate(boxes):
                iou = box_iou(track.box, box)
                size = max(track.box[2], track.box[3], box[2], box[3])
                dist = math.dist(_centre(track.box), _centre(box)) / max(size, 1.0)
                if iou >= self.min_iou or dist < 0.5:
                    pairs.append((iou - dist, ti, di))
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, ti, di in sorted(pairs, reverse=True):
            if ti not in used_tracks and di not in assigned:
                assigned[di] = ti
                used_tracks.add(ti)
        out = []
        for di, box in enumerate(boxes):
            probs = np.asarray(probabilities[di], dtype=np.float64)
            if di in assigned:
                track = self.tracks[assigned[di]]
                keep = math.exp(-(t - track.last_time) / self.smoothing) if self.smoothing > 0 else 0.0
                track.probabilities = keep * track.probabilities + (1.0 - keep) * probs
                track.box, track.last_time, track.missed = box, t, 0
            else:
                track = Track(self._next_id, box, probs.copy(), t, t, prob_sum=np.zeros_like(probs))
                self._next_id += 1
                self.tracks.append(track)
                used_tracks.add(len(self.tracks) - 1)
            track.frames += 1
            track.prob_sum = track.prob_sum + track.probabilities
            if track.top_frames is None:
                track.top_frames = np.zeros(len(probs), np.int64)
            track.top_frames[int(track.probabilities.argmax())] += 1
            out.append((track.id, track.probabilities.copy()))
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.missed += 1
        self.finished += [tr for tr in self.tracks if tr.missed > self.max_missed]
        self.tracks = [tr for tr in self.tracks if tr.missed <= self.max_missed]
        return out

    def all_tracks(self) -> list[Track]:
        return sorted(self.finished + self.tracks, key=lambda tr: tr.id)


def _centre(box) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


class FrameAnalyser:
    """Detector + tracker for one stream: `analyse(rgb, t)` returns a Result with tracked ids.

    `detect_every=N` looks for faces only in every N-th analysed frame and classifies the faces
    at their last boxes in between: finding faces costs more than reading them, and at video
    frame rates a face moves a few pixels between frames.
    """

    def __init__(self, detector, smoothing: float = 0.5, max_missed: int = 10, detect_every: int = 1):
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, not {detect_every}")
        self.detector = detector
        self.tracker = FaceTracker(smoothing, max_missed)
        self.detect_every = detect_every
        self._frames = 0
        self._detections: list[Detection] = []

    def analyse(self, rgb: np.ndarray, t: float) -> Result:
        det = self.detector
        if self._frames % self.detect_every == 0:
            self._detections = det.face_detector.detect(rgb)
        self._frames += 1
        detections = self._detections
        raw = det.predict_crops(det.crops(rgb, detections)) if detections else np.zeros((0, len(det.labels)))
        tracked = self.tracker.update(detections, raw, t)
        # Stacked with the label count as width: a frame with no face is a 0 x 7 array, which
        # reshape(0, -1) cannot infer (issue 34: a landscape shot stopped the whole video).
        smoothed = np.zeros((len(tracked), len(det.labels)))
        for row, (_, probs) in enumerate(tracked):
            smoothed[row] = probs
        faces = det.classify_with(rgb, detections, [tid for tid, _ in tracked], smoothed)
        return Result(width=rgb.shape[1], height=rgb.shape[0], model=det.model_name,
                      detector=det.detector_name, faces=faces, image=rgb)
