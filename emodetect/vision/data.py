"""Readers for face data: the FER-2013 CSV, the FER+ votes, and image folders, into one FaceDataset.

A bad row or file is reported (line number or path) and skipped; the caller sees how many were.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emodetect.config import FER2013_SPLITS, normalise_split, split_names
from emodetect.errors import DataError
from emodetect.labels import EMOTIONS, FERPLUS_COLUMNS, canonical_emotion
from emodetect.modalities import EvaluationData, csv_header
from emodetect.vision.faces import FACE_SIZE, FaceReader
from emodetect.vision.images import IMAGE_SUFFIXES, find_images

log = logging.getLogger(__name__)

# evaluate reads faces without the model.
EVALUATION_NEEDS_MODEL = False


@dataclass
class FaceDataset:
    """48x48 grey faces with hard labels and, for FER+, soft labels (vote shares)."""

    images: np.ndarray  # uint8, N x 48 x 48
    labels: np.ndarray  # int64, N, index into EMOTIONS
    source: str
    soft_labels: np.ndarray | None = None  # float32, N x 7, rows sum to 1
    skipped: list[str] = field(default_factory=list)  # one reason per skipped row or file

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(EMOTIONS)).tolist()

    def subset(self, index: np.ndarray) -> "FaceDataset":
        soft = None if self.soft_labels is None else self.soft_labels[index]
        return FaceDataset(self.images[index], self.labels[index], self.source, soft, self.skipped)


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def fer_usage(split: str) -> str:
    """A split as a FER-2013 CSV's Usage column spells it (`test` -> PrivateTest)."""
    usage = {canonical: name for name, canonical in FER2013_SPLITS.items()}
    return usage.get(normalise_split(split), split)


def read_fer_csv(path: str | Path, split: str | None = None) -> tuple[FaceDataset, np.ndarray]:
    """Read a FER-2013 CSV (plain or .gz); return the rows of `split` and their row indices.

    Row indices (0-based, header excluded) are what the FER+ file joins on.
    """
    path = Path(path)
    usage = fer_usage(split) if split else None
    images, labels, rows, skipped = [], [], [], []
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["emotion", "pixels"]:
            raise DataError(f"{path}: expected a header 'emotion,pixels,Usage', got {header!r}")
        for row_index, row in enumerate(reader):
            line = row_index + 2
            if usage is not None and (len(row) < 3 or row[2].strip() != usage):
                continue
            try:
                label = int(row[0])
                if not 0 <= label < len(EMOTIONS):
                    raise ValueError(f"emotion {label} is not in 0..6")
                pixels = np.array(row[1].split(), dtype=np.float32)
                if pixels.size != FACE_SIZE * FACE_SIZE:
                    raise ValueError(f"{pixels.size} pixels, expected {FACE_SIZE * FACE_SIZE}")
                if pixels.min() < 0 or pixels.max() > 255:
                    raise ValueError("pixel values outside 0..255")
            except (ValueError, IndexError) as err:
                skipped.append(f"{path}:{line}: {err}")
                continue
            images.append(pixels.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE))
            labels.append(label)
            rows.append(row_index)
    for reason in skipped:
        log.warning("skipped %s", reason)
    if not images:
        raise DataError(f"{path}: no usable rows" + (f" in split {usage!r}" if usage else ""))
    dataset = FaceDataset(
        np.stack(images), np.array(labels, dtype=np.int64), f"{path}[{usage or 'all'}]",
        skipped=skipped,
    )
    return dataset, np.array(rows, dtype=np.int64)


def read_ferplus_votes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read fer2013new.csv: per FER-2013 row, vote shares over EMOTIONS and whether it is a face.

    Contempt votes count as disgust (the nearest of the 7 classes). A row is kept as a face when
    FER+ named it and most votes went to one of the 7 emotions (not 'unknown' or 'not a face').
    """
    path = Path(path)
    to_emotion = [EMOTIONS.index(canonical_emotion(c)) if c not in ("unknown", "NF") else -1
                  for c in FERPLUS_COLUMNS]
    votes_all, is_face = [], []
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[2:]) != FERPLUS_COLUMNS:
            raise DataError(f"{path}: expected FER+ columns {FERPLUS_COLUMNS}, got {header!r}")
        for line, row in enumerate(reader, start=2):
            votes = np.zeros(len(EMOTIONS), dtype=np.float32)
            try:
                counts = [float(v) for v in row[2:12]]
                if len(counts) != len(FERPLUS_COLUMNS):
                    raise ValueError(f"{len(counts)} vote columns")
            except ValueError as err:
                log.warning("skipped %s:%d: %s", path, line, err)
                votes_all.append(votes)
                is_face.append(False)
                continue
            for target, count in zip(to_emotion, counts):
                if target >= 0:
                    votes[target] += count
            named = bool(row[1].strip())
            votes_all.append(votes)
            is_face.append(named and votes.sum() > counts[8] + counts[9])
    votes_arr = np.stack(votes_all)
    return votes_arr, np.array(is_face)


def read_ferplus(fer_csv: str | Path, ferplus_csv: str | Path, split: str | None = None) -> FaceDataset:
    """FER-2013 pixels with FER+ labels: soft labels (vote shares) and majority hard labels."""
    base, rows = read_fer_csv(fer_csv, split)
    votes, is_face = read_ferplus_votes(ferplus_csv)
    if rows.max() >= len(votes):
        raise DataError(f"{ferplus_csv}: {len(votes)} rows, but {fer_csv} has more; not a matching pair")
    keep = is_face[rows]
    votes = votes[rows][keep]
    soft = votes / votes.sum(axis=1, keepdims=True)
    dropped = int((~keep).sum())
    log.info("FER+: dropped %d rows marked as not a face or unknown", dropped)
    return FaceDataset(
        base.images[keep], soft.argmax(axis=1).astype(np.int64), f"{base.source}+FER+",
        soft.astype(np.float32), base.skipped,
    )


def read_image_folder(root: str | Path) -> FaceDataset:
    """Read `root/<emotion>/*.png|jpg`; folder names are matched through label synonyms. Each
    image is a face crop or a whole photo whose largest face is found and cropped as `detect`
    crops it (`FaceReader`); a photo with no face is reported and skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    images, labels, skipped = [], [], []
    reader = FaceReader()
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            label = EMOTIONS.index(canonical_emotion(class_dir.name))
        except ValueError as err:
            skipped.append(f"{class_dir}: {err}")
            continue
        # find_images reports what cannot be read (dangling links, link loops, FIFOs, folders
        # that cannot be listed): skipped with a word, where rglob's is_file() dropped them silently.
        files, problems = find_images([class_dir])
        skipped += [f"{path}: {reason}" for path, reason in problems]
        for file in files:
            try:
                images.append(reader.read(file)[0])
                labels.append(label)
            except ValueError as err:
                skipped.append(f"{file}: {err}")
    for reason in skipped:
        log.warning("skipped %s", reason)
    if not images:
        raise DataError(f"{root}: no images found in <emotion>/ subfolders")
    # The report says when faces were found by a detector: its figures then include the detector's.
    source = str(root) + (f" ({reader.photos} photos: largest face found by {reader.detector.name})"
                          if reader.photos else "")
    return FaceDataset(np.stack(images), np.array(labels, dtype=np.int64), source, skipped=skipped)


def recognises(data: Path) -> bool:
    """Face data: a FER-2013 style CSV (emotion, pixels columns) or a folder holding images."""
    if data.is_dir():
        return any(p.suffix.lower() in IMAGE_SUFFIXES for p in data.rglob("*"))
    return csv_header(data)[:2] == ["emotion", "pixels"]


def load_faces(data: str | Path, split: str | None = None, ferplus: str | Path | None = None) -> FaceDataset:
    """One entry point for every face source.

    `data` is a FER-2013 CSV (split = train/validation/test, or Training/PublicTest/PrivateTest), or
    a folder: `data/<split>/<emotion>/` (under any name of the split: `val/` for validation) when
    split is given and that folder exists, else `data/<emotion>/`. `ferplus` (fer2013new.csv) swaps
    in the FER+ labels.
    """
    path = Path(data)
    if path.is_dir():
        if split:
            for name in split_names(split):
                if (path / name).is_dir():
                    return read_image_folder(path / name)
            if normalise_split(split) == "validation" and (path / "test").is_dir():
                # The common Kaggle folder layout has no validation split: fall back to test.
                log.warning("%s has no val/ folder; using test/ for validation", path)
                return read_image_folder(path / "test")
            raise DataError(f"{path}: no '{split}' subfolder (found {sorted(p.name for p in path.iterdir())})")
        return read_image_folder(path)
    if ferplus is not None:
        return read_ferplus(path, ferplus, split)
    return read_fer_csv(path, split)[0]


def training_data(cfg):  # cfg: emodetect.train.TrainConfig (not imported: it needs torch)
    """Face splits as the training loop wants them: float pixel tensors and target rows."""
    import torch

    from emodetect.train import TrainingData
    from emodetect.vision.augment import AugmentConfig, augment_batch

    ferplus = cfg.ferplus or None
    train = load_faces(cfg.data, cfg.train_split, ferplus)
    val = load_faces(cfg.data, cfg.val_split, ferplus)
    if cfg.limit:
        train = train.subset(np.arange(min(cfg.limit, len(train))))
    for name, ds in (("train", train), ("val", val)):
        log.info("%s: %d faces from %s, class counts %s, %d skipped", name, len(ds), ds.source,
                 ds.class_counts(), len(ds.skipped))
    if cfg.soft_labels and train.soft_labels is not None:
        targets = torch.from_numpy(train.soft_labels)
    else:
        targets = torch.nn.functional.one_hot(torch.from_numpy(train.labels), len(EMOTIONS)).float()
    if cfg.teacher:
        from emodetect.vision.distill import distill_targets

        targets = torch.from_numpy(distill_targets(cfg.teacher, train.images, targets.numpy(), cfg.distill,
                                                   cfg.threads))
    aug_cfg = AugmentConfig()
    model_kwargs, init = _pretrained_backbone(cfg)
    return TrainingData(
        train_inputs=torch.from_numpy(train.images).float().unsqueeze(1),
        train_targets=targets,
        val_inputs=torch.from_numpy(val.images).float().unsqueeze(1),
        val_labels=torch.from_numpy(val.labels),
        labels=EMOTIONS,
        augment=lambda x, gen: augment_batch(x, aug_cfg, gen),
        model_kwargs=model_kwargs,
        init_weights=init,
    )


def _pretrained_backbone(cfg) -> tuple[dict, object]:
    """With --pretrained GRAPH.json (a TF.js graph model such as HSE-FaceRes), the model's backbone
    spec (saved with the checkpoint) and the function that copies the pre-trained weights in."""
    if not cfg.pretrained:
        return {}, None
    import inspect

    from emodetect.registry import _MODELS, list_models
    from emodetect.vision.tfjs import read_tfjs_graph

    if cfg.model not in list_models() or "backbone" not in inspect.signature(_MODELS[cfg.model]).parameters:
        raise DataError(f"--pretrained {cfg.pretrained}: model {cfg.model!r} does not start from a "
                        "pre-trained backbone; use faceres_fer or a variant (faceres_fer_all, _160, _160_all, _224)")
    graph = read_tfjs_graph(cfg.pretrained, outputs=["global_pooling/Mean"])
    weights = graph.state_dict()
    log.info("backbone %s: %d weights", cfg.pretrained, sum(v.numel() for v in weights.values()))
    return {"backbone": graph.spec}, lambda model: model.backbone.load_state_dict(weights)


def export_example(checkpoint) -> tuple:  # checkpoint: emodetect.checkpoint.Checkpoint
    """Example input and input description for the face ONNX contract."""
    import torch

    spec = {"name": "pixels", "shape": ["N", 1, FACE_SIZE, FACE_SIZE], "dtype": "float32",
            "range": "raw grey pixels 0..255", "normalisation": "inside the graph"}
    return torch.zeros(1, 1, FACE_SIZE, FACE_SIZE), spec


def evaluation_data(data: str | Path, split: str | None, ferplus: str | Path | None = None):
    """Pixels (N x 1 x 48 x 48 float32), true labels, label names and a source description."""
    faces = load_faces(data, split, ferplus)
    return EvaluationData(faces.images[:, None].astype(np.float32), faces.labels, EMOTIONS, faces.source)


def evaluation_groups(data: str | Path, split: str | None, column: str, ferplus: str | Path | None = None) -> np.ndarray:
    """The value of `column` for each face evaluation_data gives, from a FER-2013 style CSV that
    carries that column beside emotion, pixels and Usage (e.g. a manifest of who is in each face)."""
    path = Path(data)
    if path.is_dir() or ferplus is not None:
        raise DataError(f"{path}: --group-by reads a column of a FER-2013 style CSV (not an image folder, "
                        "not with --ferplus)")
    _, rows = read_fer_csv(path, split)
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        if column not in (reader.fieldnames or []):
            raise DataError(f"{path}: no column {column!r} to group by; the columns are: "
                            f"{', '.join(reader.fieldnames or [])}")
        values = [(row.get(column) or "").strip() or "(empty)" for row in reader]
    return np.array(values)[rows]
