"""Run an EmotionDetector over many files: one bad file is reported and skipped, never fatal.

Results stream out one file at a time (the caller prints, writes CSV rows, saves pictures), so a
folder of 10,000 photos never sits in memory.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from emodetect.vision.results import Result, face_columns
from emodetect.vision.images import ImageError, find_images



@dataclass
class Outcome:
    """One file's result, or the reason it was skipped."""

    path: Path
    result: Result | None = None
    error: str | None = None


def detect_files(detector, paths: list[str | Path], progress: bool | None = None) -> Iterator[Outcome]:
    """An Outcome per image file found under `paths` (files, or folders searched recursively)."""
    files, missing = find_images(paths)
    for path, reason in missing:
        yield Outcome(path, error=reason)
    # By default the bar shows on long runs only, and only on a terminal (tqdm's disable=None);
    # tqdm is not even imported for a few files (start-up time of `emodetect detect one.jpg`).
    disable = (True if len(files) <= 20 else None) if progress is None else not progress
    if disable is not True:
        from tqdm import tqdm

        files = tqdm(files, unit="img", disable=disable, leave=False)
    for path in files:
        try:
            yield Outcome(path, result=detector.detect(path))
        except ImageError as err:
            message = str(err)
            prefix = f"{path}: "
            yield Outcome(path, error=message[len(prefix):] if message.startswith(prefix) else message)


def csv_writer(handle: IO[str], labels: tuple[str, ...]) -> "csv.DictWriter":
    """A CSV writer whose columns are those of Result.to_rows() for this model's labels."""
    writer = csv.DictWriter(handle, fieldnames=face_columns(labels))
    writer.writeheader()
    return writer


def annotated_path(save_dir: Path, path: Path, roots: list[Path]) -> Path:
    """Where the annotated copy of `path` goes: its place under the folder argument it came from."""
    relative = Path(path.name)
    for root in roots:
        if root.is_dir():
            try:
                relative = path.resolve().relative_to(root.resolve())
                break
            except ValueError:
                continue
    suffix = ".png" if path.suffix.lower() == ".png" else ".jpg"
    return save_dir / relative.with_name(f"{relative.stem}_emotions{suffix}")


def save_annotated(result: Result, target: Path, blur: bool = False) -> Path:
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(result.plot(blur=blur))).save(target, quality=90)
    return target
