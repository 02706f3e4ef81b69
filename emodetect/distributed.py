"""Batch inference on Ray Data (`emodetect batch`, the `distributed` extra): images, recordings or
texts, read and scored in parallel by worker actors that open the ONNX models once, written as
Parquet files under one folder, so memory stays flat whatever the input.

- Without an address a local Ray starts on this machine; `address="auto"` or `"ray://host:10001"`
  joins a cluster, so the same call runs on a laptop and on a cluster.
- Resumable: each input's rows carry its `source`; a rerun into the same folder reads the sources
  already written and skips them. A file that cannot be read becomes a row with its `error`,
  never a failed job. Ray Data names each output file after its write and block, so a task Ray
  retries after a worker died rewrites its own file instead of adding rows.
- The rows are the command line's: per face (images), per window (recordings), per text, with
  the same numbers as `emodetect detect`, `voice --timeline` and `text`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emodetect.errors import InputError

TEXT_SUFFIXES = (".csv", ".parquet", ".txt")


@dataclass
class BatchReport:
    inputs: int  # found in INPUT
    skipped: int  # already in the output folder from an earlier run
    processed: int
    rows: int  # written by this run
    errors: int  # inputs that became an error row
    seconds: float
    out: str
    kind: str  # "images", "audio" or "texts"

    def to_text(self) -> str:
        rate = self.processed / self.seconds if self.seconds else 0.0
        return (f"{self.kind}: {self.inputs} found, {self.skipped} already done, {self.processed} processed "
                f"({rate:.1f}/s), {self.rows} rows written to {self.out}/, {self.errors} error(s)")


class _FaceWorker:
    """One per actor: opens the face pipeline once, scores batches of image paths."""

    def __init__(self, model: str | None, detector: str | None):
        from emodetect.vision.detectors import create_detector
        from emodetect.vision.pipeline import EmotionDetector

        from emodetect.vision.results import face_columns

        self.detector = EmotionDetector(model, create_detector(detector, threads=1), threads=1)
        text = {"source", "label", "emotion", "model", "detector", "error"}
        whole = {"image_width", "image_height", "face_id", "x", "y", "width", "height"}
        self.schema = _schema([*face_columns(self.detector.labels), "error"], text, whole)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from emodetect.vision.images import ImageError

        rows: list[dict[str, Any]] = []
        for source, unreadable in zip(batch["source"], batch["error"]):
            if unreadable:  # found unreadable by list_inputs (a dangling link, a FIFO)
                rows.append({"source": source, "error": str(unreadable)})
                continue
            try:
                result = self.detector.detect(source)
            except (ImageError, OSError) as err:
                rows.append({"source": source, "error": str(err)})
                continue
            faces = result.to_rows() or [{"source": source, "face_id": -1}]  # no face: one row says so
            rows += [{**row, "source": source, "error": None} for row in faces]
        return _table(rows, self.schema)


class _VoiceWorker:
    def __init__(self, model: str | None):
        from emodetect.voice.pipeline import VoiceEmotion

        self.engine = VoiceEmotion(model, threads=1)
        self.schema = _schema(["source", "start_s", "end_s", "label", *self.engine.labels, "clip_label", "error"],
                              {"source", "label", "clip_label", "error"})

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows: list[dict[str, Any]] = []
        for source, unreadable in zip(batch["source"], batch["error"]):
            if unreadable:  # found unreadable by list_inputs (a dangling link, a FIFO)
                rows.append({"source": source, "error": str(unreadable)})
                continue
            try:
                result = self.engine.predict(source)
            except (InputError, OSError, MemoryError) as err:
                rows.append({"source": source, "error": str(err)})
                continue
            for window in result.to_rows(timeline=True):
                rows.append({**{k: v for k, v in window.items() if k != "path"}, "source": source,
                             "clip_label": result.label or "", "error": None})
        return _table(rows, self.schema)


class _TextWorker:
    def __init__(self, model: str | None):
        from emodetect.text.pipeline import TextEmotion

        self.reader = TextEmotion(model, threads=1)
        # A multi-head model (the joint default) adds each head's labels and probabilities.
        head_text = [f"{seg.name}_{c}" for seg in self.reader.head_segments for c in ("label", "labels")]
        head_probs = [f"p_{seg.name}:{k}" for seg in self.reader.head_segments for k in seg.labels]
        names = ["source", "text", "label", "labels", *(["group"] if self.reader.groups else []),
                 *(f"p_{k}" for k in self.reader.labels), *head_text, *head_probs, "truncated", "error"]
        self.schema = _schema(names, {"source", "text", "label", "labels", "group", "error", *head_text},
                              boolean={"truncated"})

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        results = self.reader.predict([str(t) for t in batch["text"]])
        rows = [{"source": s, **row} for s, row in zip(batch["source"], results.to_rows())]
        return _table(rows, self.schema)


def _schema(names: list[str], text: set[str], whole: set[str] = frozenset(), boolean: set[str] = frozenset()):
    """One Arrow schema per kind of input, so every Parquet file of a run (and of a rerun) has
    the same columns and types, whichever rows its batch held."""
    import pyarrow as pa

    def kind(name: str) -> Any:
        return (pa.string() if name in text else pa.int64() if name in whole else
                pa.bool_() if name in boolean else pa.float64())

    return pa.schema([(name, kind(name)) for name in names])


def _table(rows: list[dict[str, Any]], schema: Any) -> Any:
    """Rows as an Arrow table of `schema`; a value a row lacks (an error row has no box) or
    leaves empty is null."""
    import pyarrow as pa

    columns = {f.name: [None if row.get(f.name) == "" and f.type != pa.string() else row.get(f.name)
                        for row in rows] for f in schema}
    return pa.table(columns, schema=schema)


def list_inputs(source: str | Path, column: str = "text") -> tuple[str, list[dict[str, Any]]]:
    """The kind of input and one item per image, recording or text (texts keep their line)."""
    from emodetect.vision.images import IMAGE_SUFFIXES, find_images
    from emodetect.voice.features import AUDIO_SUFFIXES

    path = Path(source)
    if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            texts = [t or "" for t in pq.read_table(path, columns=[column]).column(column).to_pylist()]
            return "texts", [{"source": f"{path.resolve()}#{i}", "text": t} for i, t in enumerate(texts)]
        from emodetect.text.pipeline import read_texts

        _, _, texts = read_texts(path, column)
        first = 1 if path.suffix.lower() == ".txt" else 2  # sources name the file's line
        return "texts", [{"source": f"{path.resolve()}:{first + i}", "text": t} for i, t in enumerate(texts)]
    given = sorted(Path().glob(str(source))) if not path.is_dir() and any(c in str(source) for c in "*?[") \
        else [path]
    # What cannot be read (a dangling link, a link loop, a FIFO, a folder that cannot be listed) is
    # an error row, never a silent skip: its item carries the reason in `error` ("" = to be read).
    found, problems = find_images(given, suffixes=IMAGE_SUFFIXES | AUDIO_SUFFIXES)
    # Absolute paths: a cluster's workers do not share the driver's working folder.
    files = sorted(f.resolve() for f in found)
    unreadable = [(Path(os.path.abspath(p)), reason) for p, reason in problems]
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    audio = [f for f in files if f.suffix.lower() in AUDIO_SUFFIXES]
    image_named = any(p.suffix.lower() in IMAGE_SUFFIXES for p, _ in unreadable)
    audio_named = any(p.suffix.lower() in AUDIO_SUFFIXES for p, _ in unreadable)
    if images or (image_named and not audio):  # images win when a folder holds both, as before
        kind, readable, other = "images", images, AUDIO_SUFFIXES
    elif audio or audio_named:
        kind, readable, other = "audio", audio, IMAGE_SUFFIXES
    else:
        why = f" ({unreadable[0][0]}: {unreadable[0][1]})" if unreadable else ""
        raise InputError(f"{source}: no images, recordings or text file (CSV, Parquet, TXT) found{why}")
    items = [{"source": str(f), "error": ""} for f in readable]
    # An unreadable folder or loop has no media suffix: it is reported with either kind.
    items += [{"source": str(p), "error": reason} for p, reason in unreadable if p.suffix.lower() not in other]
    return kind, sorted(items, key=lambda item: item["source"])


def done_sources(out: Path) -> set[str]:
    """The sources already written under `out` by earlier runs."""
    import pyarrow.dataset as pads

    files = sorted(out.glob("*.parquet"))
    if not files:
        return set()
    return set(pads.dataset([str(f) for f in files], format="parquet").to_table(columns=["source"])
               .column("source").to_pylist())


RAY_LOG = "_ray.log"  # in the output folder; Parquet readers skip names starting with "_"


@contextmanager
def ray_quiet(log_path: Path, verbose: bool = False) -> Iterator[None]:
    """Ray's own lines kept off the user's terminal while it runs: its Python loggers show errors
    only, and what its C++ core and processes write to file descriptor 2 (an `E ... core_worker.cc`
    line among them) goes to `log_path`; Python's own stderr (Ray's progress bars on a terminal, our
    errors) stays on the terminal. `verbose` lets everything through. A first `batch` printed 34 of
    Ray's lines around a one-line answer. Everything is put back after the run."""
    import logging

    if verbose:
        yield
        return
    import ray.data  # noqa: F401  (configures the "ray.data" logger and its console handler on import)

    ray_logger = logging.getLogger("ray")
    consoles = [h for h in logging.getLogger("ray.data").handlers if isinstance(h, logging.StreamHandler)]
    saved = ray_logger.level, [h.level for h in consoles]
    ray_logger.setLevel(logging.ERROR)
    for handler in consoles:
        handler.setLevel(logging.ERROR)
    try:
        with _descriptor_2_to(log_path):
            yield
    finally:
        ray_logger.setLevel(saved[0])
        for handler, level in zip(consoles, saved[1]):
            handler.setLevel(level)


@contextmanager
def _descriptor_2_to(path: Path) -> Iterator[None]:
    """File descriptor 2 into `path` (Ray's C++ logging and child processes write there), with
    Python's sys.stderr moved to a copy of the old descriptor when it was on 2."""
    import os
    import sys

    sys.stderr.flush()
    terminal = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    python_stderr = sys.stderr
    on_descriptor_2 = _fileno(python_stderr) == 2
    if on_descriptor_2:
        sys.stderr = open(terminal, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace",
                          closefd=False)
    try:
        yield
    finally:
        if on_descriptor_2:
            sys.stderr.flush()
            sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)


def _fileno(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def run_batch(source: str | Path, out: str | Path, address: str | None = None, workers: int = 2,
              model: str | None = None, detector: str | None = None, column: str = "text",
              batch_size: int = 16, verbose: bool = False) -> BatchReport:
    """Score every input of `source` on Ray Data with `workers` actors and write Parquet to `out`;
    Ray's own logs go to `out/_ray.log` unless `verbose` (`ray_quiet`)."""
    started = time.perf_counter()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    kind, items = list_inputs(source, column)
    done = done_sources(out)
    todo = [item for item in items if item["source"] not in done]
    report = BatchReport(len(items), len(items) - len(todo), len(todo), 0, 0, 0.0, str(out), kind)
    if todo:
        with ray_quiet(out / RAY_LOG, verbose):
            _score(todo, out, kind, address, workers, model, detector, batch_size)
        report.rows, report.errors = _rows_for(out, {item["source"] for item in todo})
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _score(todo: list[dict[str, Any]], out: Path, kind: str, address: str | None, workers: int,
           model: str | None, detector: str | None, batch_size: int) -> None:
    """The Ray part: start (or join) Ray, score `todo` with `workers` actors, write Parquet to `out`."""
    import ray

    owns_ray = not ray.is_initialized()
    if owns_ray:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        worker, args = {"images": (_FaceWorker, (model, detector)), "audio": (_VoiceWorker, (model,)),
                        "texts": (_TextWorker, (model,))}[kind]
        # At least one block per worker, so that every actor has work from the start.
        blocks = max(workers, min(len(todo) // batch_size, 64 * workers))
        dataset = ray.data.from_items(todo, override_num_blocks=blocks)
        scored = dataset.map_batches(worker, fn_constructor_args=args,
                                     compute=ray.data.ActorPoolStrategy(size=workers),
                                     batch_size=batch_size, batch_format="numpy", num_cpus=1)
        scored.write_parquet(str(out))
    finally:
        if owns_ray:
            ray.shutdown()


def _rows_for(out: Path, sources: set[str]) -> tuple[int, int]:
    """Rows, and sources with an error, written for `sources`."""
    import pyarrow.dataset as pads

    dataset = pads.dataset(str(out), format="parquet")
    columns = [c for c in ("source", "error") if c in dataset.schema.names]
    table = dataset.to_table(columns=columns)  # two columns, not the whole output
    names = table.column("source").to_pylist()
    errors = table.column("error").to_pylist() if "error" in columns else [None] * len(names)
    mine = [(s, e) for s, e in zip(names, errors) if s in sources]
    return len(mine), len({s for s, e in mine if e})
