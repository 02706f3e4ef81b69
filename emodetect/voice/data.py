"""Speech corpora (RAVDESS, EmoDB, or any folder with the same manifest.csv) into model windows.

Label space: the 7 groups of the face model, spelled as in `emodetect.labels.EMOTIONS`, plus two
voice-only classes kept apart rather than folded in: RAVDESS `calm` (acted as distinct from
neutral, and a model that merges them loses a class the corpus was built around) and EmoDB
`boredom` (no face group fits: it is low-arousal like sad but not negative like it). A model trained
on one corpus keeps that corpus's classes only: RAVDESS -> 8 labels (no boredom), EmoDB -> 7 labels
(no surprise, no calm); a model trained on both (`--data A+B`) gets the union of 9.

Splits are speaker-independent by construction: a split is a manifest `split` value
(train/validation/test, or the face loop's Training/PublicTest/PrivateTest aliases), several
joined with `+`, or a speaker selection such as `speaker=03,08` / `speaker!=03` (`actor=` for
RAVDESS), which is how leave-one-speaker-out folds are built.
"""

from __future__ import annotations

from emodetect.errors import DataError  # noqa: F401  (raised here, imported from here by older code)

import csv
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.config import normalise_split
from emodetect.labels import EMOTIONS, VOICE_ONLY, canonical_emotion
from emodetect.modalities import EvaluationData, csv_header
from emodetect.voice import features as F
from emodetect.voice.augment import WaveAugment, perturb

log = logging.getLogger(__name__)

# evaluate reads recordings without the model.
# evaluate passes the model: one that reads 16 kHz samples (feature whisper-wave-v1) is given
# the windows themselves, the others their log-mels.
EVALUATION_NEEDS_MODEL = True
WINDOW_S = 3.0  # model input: 3 s of speech (301 frames of 10 ms)
TRAIN_HOP_S = 1.0  # long clips give one training window per second
JITTER_S = 0.25  # training windows are cut this much longer, then randomly cropped back
FEATURE_VERSION = "logmel-v1"



@dataclass
class Clip:
    path: Path
    label: str  # emodetect spelling: EMOTIONS or VOICE_ONLY
    speaker: str
    split: str
    corpus: str
    row: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # the manifest row


def label_space(corpus_labels: set[str]) -> tuple[str, ...]:
    """The face model's order for shared groups, then the voice-only classes present."""
    return tuple(e for e in EMOTIONS if e in corpus_labels) + tuple(v for v in VOICE_ONLY if v in corpus_labels)


def _manifest_path(data: str | Path) -> Path:
    path = Path(data)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise DataError(f"{data}: expected a corpus folder holding manifest.csv, or the manifest itself")
    return path


def recognises(data: Path) -> bool:
    """Speech data: a corpus folder holding manifest.csv, the manifest itself, or several joined with '+'."""
    parts = [Path(part) for part in str(data).split("+")]
    return all({"path", "label", "split"} <= set(csv_header(p / "manifest.csv" if p.is_dir() else p)) for p in parts)


def read_manifest(data: str | Path) -> list[Clip]:
    """Rows of a manifest (path,label,speaker|actor,split,...), paths made absolute."""
    manifest = _manifest_path(data)
    clips = []
    with open(manifest, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        speaker_col = "speaker" if "speaker" in (reader.fieldnames or []) else "actor"
        missing = {"path", "label", "split", speaker_col} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{manifest}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                label = canonical_emotion(row["label"], keep=VOICE_ONLY)
            except ValueError as err:
                raise DataError(f"{manifest}:{line}: {err}") from err
            row = dict(row)
            row.setdefault("corpus", manifest.parent.name)  # for --group-by corpus over joined corpora
            clips.append(Clip(manifest.parent / row["path"], label, row[speaker_col].strip(),
                              row["split"].strip(), manifest.parent.name, row))
    if not clips:
        raise DataError(f"{manifest}: no rows")
    return clips


def select(clips: list[Clip], split: str) -> list[Clip]:
    """Clips of a split spec: `train`, `train+validation`, `all`, `speaker=03,08`, `speaker!=03`.
    Joined corpora can share speaker ids (RAVDESS actor 10, EmoDB speaker 10): `emodb/10` names
    one corpus's speaker (the corpus is its folder's name), a bare `10` every corpus's."""
    spec = split.strip()
    if spec.lower() == "all":
        return clips
    for op in ("!=", "="):
        if op in spec:
            key, values = spec.split(op, 1)
            if key.strip().lower() not in ("speaker", "actor"):
                raise DataError(f"split {split!r}: select on speaker= or actor=")
            wanted = {(corpus or None, speaker.lstrip("0"))
                      for corpus, _, speaker in (v.strip().rpartition("/") for v in values.split(",") if v.strip())}
            inside = [c for c in clips if (c.corpus, c.speaker.lstrip("0")) in wanted
                      or (None, c.speaker.lstrip("0")) in wanted]
            chosen = [c for c in clips if c not in inside] if op == "!=" else inside
            break
    else:
        names = {normalise_split(s).lower() for s in spec.split("+")}
        chosen = [c for c in clips if c.split.lower() in names]
    if not chosen:
        raise DataError(f"split {split!r} selects no clips (splits: {sorted({c.split for c in clips})}, "
                        f"speakers: {sorted({c.speaker for c in clips})})")
    return chosen


def load_corpus(data: str | Path) -> tuple[list[Clip], tuple[str, ...]]:
    """One corpus, or several joined with '+': clips and the label space they share."""
    clips: list[Clip] = []
    for part in str(data).split("+"):
        clips += read_manifest(part)
    return clips, label_space({c.label for c in clips})


def _cache_file(kind: str, clips: list[Clip], params: dict[str, Any]) -> Path:
    key = hashlib.sha256(repr((kind, FEATURE_VERSION, params, [(str(c.path), c.label) for c in clips]))
                         .encode()).hexdigest()[:20]
    root = Path(os.environ.get("EMODETECT_CACHE", Path(tempfile.gettempdir()) / "emodetect_cache"))
    return root / f"voice_{kind}_{key}.npz"


def clip_rows(clips: list[Clip], labels: tuple[str, ...], window_s: float, hop_s: float,
              kind: str = "eval", copies: int = 0, feature: str = FEATURE_VERSION) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-mel windows of every clip, as the pipeline cuts them: rows, label index, clip index
    (with `feature` "whisper-wave-v1", the windows' 16 kHz samples themselves).

    Each clip is trimmed of leading/trailing silence, then cut into windows (short clips are
    centred in one); `copies` perturbed versions of it (`emodetect.voice.augment`, seeded by the
    clip's position) follow the original. Results are cached (outside the repo) keyed on files
    and parameters.
    """
    params = {"window_s": window_s, "hop_s": hop_s, "silence": (F.SILENCE_DBFS, F.SILENCE_RELATIVE_DB)}
    if feature != FEATURE_VERSION:
        params["feature"] = feature
    if copies:
        params.update(copies=copies, augment=WaveAugment().key())
    cache = _cache_file(kind, clips, params)
    if cache.is_file():
        with np.load(cache) as saved:
            return saved["x"], saved["y"], saved["clip"]
    xs, ys, owner = [], [], []
    for i, clip in enumerate(clips):
        wave = F.trim_silence(F.load_audio(clip.path))
        if len(wave) == 0:
            log.warning("skipped %s: all silent", clip.path)
            continue
        versions = [wave] + [perturb(wave, np.random.default_rng([i, k])) for k in range(copies)]
        for version in versions:
            windows, _ = F.clip_windows(version, window_s, hop_s)
            mels = windows.astype(np.float32) if feature == "whisper-wave-v1" else F.window_log_mels(windows)
            xs.append(mels.astype(np.float16) if kind == "train" else mels)
            ys += [labels.index(clip.label)] * len(mels)
            owner += [i] * len(mels)
    if not xs:
        raise DataError("no usable clips")
    x, y, clip_index = np.concatenate(xs), np.array(ys, dtype=np.int64), np.array(owner, dtype=np.int64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache.with_suffix(".tmp.npz"), x=x, y=y, clip=clip_index)
    os.replace(cache.with_suffix(".tmp.npz"), cache)
    return x, y, clip_index


def augment_batch(x, gen, window_frames: int, freq_masks: int = 2, freq_width: int = 8,
                  time_masks: int = 2, time_width: int = 40, freq_shift: int = 2):
    """Random crop to the model window, a small mel-axis shift (a cheap vocal-tract-length
    perturbation, for unseen speakers) and SpecAugment masks (filled with each example's mean)."""
    import torch

    n, _, mels, frames = x.shape
    start = int(torch.randint(frames - window_frames + 1, (1,), generator=gen))
    x = x[..., start:start + window_frames].float().clone()
    if freq_shift:
        shift = int(torch.randint(-freq_shift, freq_shift + 1, (1,), generator=gen))
        if shift > 0:
            x = torch.cat([x[:, :, :1].expand(-1, -1, shift, -1), x[:, :, :-shift]], dim=2)
        elif shift < 0:
            x = torch.cat([x[:, :, -shift:], x[:, :, -1:].expand(-1, -1, -shift, -1)], dim=2)
    fill = x.mean(dim=(1, 2, 3), keepdim=True)
    mel_idx = torch.arange(mels).view(1, 1, mels, 1)
    frame_idx = torch.arange(window_frames).view(1, 1, 1, window_frames)
    for count, width, index, size in ((freq_masks, freq_width, mel_idx, mels),
                                      (time_masks, time_width, frame_idx, window_frames)):
        for _ in range(count):
            w = torch.randint(width + 1, (n, 1, 1, 1), generator=gen)
            s = (torch.rand((n, 1, 1, 1), generator=gen) * (size - w)).long()
            x = torch.where((index >= s) & (index < s + w), fill, x)
    return x


def _speaker_note(clips: list[Clip]) -> str:
    return ",".join(sorted({c.speaker for c in clips}, key=lambda s: (len(s), s)))


def training_data(cfg):  # cfg: emodetect.train.TrainConfig (not imported: it needs torch)
    """Training windows (cut longer by JITTER_S each side, cropped at random) and validation
    windows cut exactly as the pipeline cuts them."""
    import torch

    from emodetect.train import TrainingData

    clips, labels = load_corpus(cfg.data)
    final_fit = cfg.val_split.strip().lower() == "none"  # no validation: keep the last epoch
    train, val = select(clips, cfg.train_split), ([] if final_fit else select(clips, cfg.val_split))
    overlap = {(c.corpus, c.speaker) for c in train} & {(c.corpus, c.speaker) for c in val}
    if overlap:
        raise DataError(f"speakers {sorted(overlap)} are in both the training and validation split")
    if cfg.limit:
        train = train[:cfg.limit]
    x_train, y_train, _ = clip_rows(train, labels, WINDOW_S + 2 * JITTER_S, TRAIN_HOP_S, kind="train",
                                    copies=cfg.wave_copies)
    if val:
        x_val, y_val, _ = clip_rows(val, labels, WINDOW_S, TRAIN_HOP_S)
    else:
        x_val, y_val = np.zeros((0, *x_train.shape[1:]), np.float32), np.zeros(0, np.int64)
    log.info("voice train: %d windows from %d clips (speakers %s); val: %d windows from %d clips "
             "(speakers %s); labels %s", len(y_train), len(train), _speaker_note(train), len(y_val),
             len(val), _speaker_note(val), labels)
    window_frames = F.n_frames(int(WINDOW_S * F.SAMPLE_RATE))
    return TrainingData(
        train_inputs=torch.from_numpy(x_train),
        train_targets=torch.nn.functional.one_hot(torch.from_numpy(y_train), len(labels)).float(),
        val_inputs=torch.from_numpy(x_val),
        val_labels=torch.from_numpy(y_val),
        labels=labels,
        augment=lambda x, gen: augment_batch(x, gen, window_frames),
        extras=feature_extras(),
    )


def feature_extras(window_s: float = WINDOW_S) -> dict[str, Any]:
    """What the pipeline needs to cut and featurise audio exactly as in training (ONNX `extras`)."""
    return {"feature": FEATURE_VERSION, "sample_rate": F.SAMPLE_RATE, "n_fft": F.N_FFT,
            "win_length": F.WIN_LENGTH, "hop_length": F.HOP_LENGTH, "n_mels": F.N_MELS,
            "f_min": F.F_MIN, "f_max": F.F_MAX, "window_s": window_s}


def export_example(checkpoint) -> tuple:  # checkpoint: emodetect.checkpoint.Checkpoint
    """Example input and description of the voice ONNX contract (log-mel windows)."""
    import torch

    window_s = float(checkpoint.extras.get("window_s", WINDOW_S))
    frames = F.n_frames(int(window_s * F.SAMPLE_RATE))
    spec = {"name": "log_mel", "shape": ["N", 1, F.N_MELS, frames], "dtype": "float32",
            "range": "natural-log mel power of a 16 kHz window (emodetect.voice.features.log_mel)",
            "normalisation": "inside the graph (peak-relative, floored)"}
    return torch.zeros(1, 1, F.N_MELS, frames), spec


def evaluation_data(data: str | Path, split: str | None, window_s: float = WINDOW_S,
                    hop_s: float = TRAIN_HOP_S, model: Any = None):
    """Window-level inputs (N x 1 x mels x frames), labels, label names, a source description, and
    each window's clip: `evaluate` scores every clip once, on the mean of its windows, as users
    (and the README's figures) count clips."""
    clips, labels = load_corpus(data)
    chosen = select(clips, split or "test")
    extras = getattr(model, "extras", None)
    extras = (extras() if callable(extras) else extras) or {}
    x, y, clip = clip_rows(chosen, labels, window_s, hop_s, feature=extras.get("feature", FEATURE_VERSION))
    return EvaluationData(x.astype(np.float32), y, labels, f"{data}[{split}] speakers {_speaker_note(chosen)}", clip)


def evaluation_groups(data: str | Path, split: str | None, column: str, window_s: float = WINDOW_S,
                      hop_s: float = TRAIN_HOP_S, **_: Any) -> np.ndarray:
    """The manifest's `column` (gender, speaker, corpus, ...) for each window evaluation_data gives."""
    clips, labels = load_corpus(data)
    chosen = select(clips, split or "test")
    if chosen and column not in chosen[0].row:
        raise DataError(f"{data}: no manifest column {column!r} to group by; the columns are: "
                        f"{', '.join(chosen[0].row)}")
    _, _, clip = clip_rows(chosen, labels, window_s, hop_s)
    return np.array([(chosen[i].row.get(column) or "").strip() or "(empty)" for i in clip])
