"""Faces followed across the frames of one stream, their emotions smoothed over time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emodetect.errors import InputError
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
    face lost for a blink keeps its id. A box whose side is more than `max_size_jump` times the
    track's (or less than its inverse) is another face, not this one grown: a cut from a wide shot
    to a close-up at the same place otherwise handed the close-up the first face's history
    (issue 32). `cut()` ends every live track at a scene cut (`SceneCuts`).

    Smoothing is an exponential moving average with time constant `smoothing` seconds
    (0 = no smoothing): weight of the past = exp(-dt / smoothing), so the result does not depend on
    the frame rate or on `--every`.
    """

    def __init__(self, smoothing: float = 0.5, max_missed: int = 10, min_iou: float = 0.2,
                 max_size_jump: float = 1.5):
        self.smoothing = smoothing
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.max_size_jump = max_size_jump
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
                grown = math.sqrt(max(box[2] * box[3], 1.0) / max(track.box[2] * track.box[3], 1.0))
                if max(grown, 1.0 / grown) > self.max_size_jump:
                    continue
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

    def cut(self) -> None:
        """A scene cut: every live track ends here, so a face after it starts a track of its own
        instead of inheriting the smoothed probabilities of whoever stood there before."""
        self.finished += self.tracks
        self.tracks = []

    def all_tracks(self) -> list[Track]:
        return sorted(self.finished + self.tracks, key=lambda tr: tr.id)


def _centre(box) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


class SceneCuts:
    """Says when a sampled frame starts a new shot: the Bhattacharyya distance between the grey
    histograms (32 bins, of the frame shrunk to 160 x 120) of two consecutive sampled frames
    exceeds `threshold`.

    Measured on the bundled samples: a face drifting 4 px a frame scores 0.01-0.02, a pan by a
    fifth of the frame 0.11, a cut between two of the photos 0.31-0.47; 0.25 sits between. A
    flash or a fade of +30 grey levels scores 0.57 and counts as a cut: a face then gets a new id,
    which costs less than a new person inheriting the last one's emotions. Costs ~0.1 ms a frame.
    """

    def __init__(self, threshold: float = 0.25):
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def __call__(self, rgb: np.ndarray) -> bool:
        import cv2

        small = cv2.resize(rgb, (160, 120), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        hist = cv2.calcHist([grey], [0], None, [32], [0, 256])
        previous, self._previous = self._previous, hist
        if previous is None:
            return False
        return float(cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA)) > self.threshold


class FrameAnalyser:
    """Detector + tracker for one stream: `analyse(rgb, t)` returns a Result with tracked ids.

    `detect_every=N` looks for faces only in every N-th analysed frame and classifies the faces
    at their last boxes in between: finding faces costs more than reading them, and at video
    frame rates a face moves a few pixels between frames.

    At a scene cut (`SceneCuts`; `cut_threshold=None` turns it off) every track ends and faces
    are looked for again whatever `detect_every` says; `cuts` holds the times of the cuts seen.
    """

    def __init__(self, detector, smoothing: float = 0.5, max_missed: int = 10, detect_every: int = 1,
                 cut_threshold: float | None = 0.25):
        if detect_every < 1:
            raise InputError(f"detect_every must be >= 1, not {detect_every}")
        self.detector = detector
        self.tracker = FaceTracker(smoothing, max_missed)
        self.detect_every = detect_every
        self.scene_cuts = SceneCuts(cut_threshold) if cut_threshold is not None else None
        self.cuts: list[float] = []
        self._frames = 0
        self._detections: list[Detection] = []

    def analyse(self, rgb: np.ndarray, t: float) -> Result:
        det = self.detector
        cut = self.scene_cuts is not None and self.scene_cuts(rgb)
        if cut:
            self.tracker.cut()
            self.cuts.append(t)
        if cut or self._frames % self.detect_every == 0:
            self._detections = det.face_detector.detect(rgb)
            self._frames = 0  # the next detection counts from this one
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
