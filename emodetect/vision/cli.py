"""The face commands: `detect` (photos), `predict` (cut-out crops), `explain` and `webcam`.

`video` (a video's faces, voice and words) is a top-level verb beside `batch`: emodetect/cli.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from emodetect.console import (FILE_COLUMN, Column, ResultWriter, check_outputs, fail,
                               setup_logging)


def _detector_help() -> str:
    """Built from the detector table itself, so the help never goes stale."""
    from emodetect.vision.detectors import detector_names

    names = detector_names()
    return (f"face detector: {', '.join(names)} (default: the first that can run here, "
            f"{names[0]} everywhere; the others need optional packages, see docs/pipeline.md)")


DETECTOR_HELP = _detector_help()


def _emotion_detector(model: Optional[str], detector: Optional[str], threads: int, detect_size: Optional[int] = None,
                      detect_threads: int = 2):
    from emodetect.errors import EmodetectError
    from emodetect.vision.detectors import create_detector
    from emodetect.vision.pipeline import EmotionDetector

    options = {"threads": detect_threads} | ({"max_side": detect_size} if detect_size is not None else {})
    try:
        face_detector = create_detector(detector, **options)
        return EmotionDetector(model, face_detector, threads)
    except EmodetectError as err:  # an unknown detector or model, a model file that cannot be used
        fail(err)


_DETECT_SIZE_HELP = "longer side (px) of the copy faces are searched in; 0 = full size (default: the detector's)"
# One stream at a time on the command line: the detector may use two cores (yunet at 480 px: 22 ms
# on one thread, 14 ms on two, bench/pipeline.py --detect-threads). The service keeps one per worker.
_DETECT_THREADS_HELP = "threads of the face detector (0 = its library's default)"
_DETECT_EVERY_HELP = "look for faces in every N-th analysed frame only, reading emotions at the last boxes in between"


# detect's table; predict's is its first columns. `.ci/run` reads detect's rows.
DETECT_COLUMNS = (FILE_COLUMN, Column("face", 4, ">"), Column("label", 9), Column("conf", 5, ">"),
                  Column("score", 5, ">"), Column("box (x,y,w,h)", gap="  "))
PREDICT_COLUMNS = (FILE_COLUMN, Column("label", 9), Column("conf", 5, ">"))


def predict(
    images: list[Path] = typer.Argument(..., help="face crops (any size up to 256 px; made 48x48 grey); "
                                                  "in a larger photo its largest face is found first"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name"),
    as_json: bool = typer.Option(False, "--json", help="print JSON lines (one object per crop) instead of a table"),
) -> None:
    """Classify face crops that are already cut out; a whole photo's largest face is found first
    (with a note: `detect` reads every face)."""
    from emodetect.errors import InputError, ModelError
    from emodetect.results import rounded
    from emodetect.vision.faces import FaceReader

    engine = _emotion_detector(model, None, 0)
    reader = FaceReader(engine.face_detector)
    with ResultWriter(PREDICT_COLUMNS, as_json) as out:
        for path in images:
            try:
                face, found = reader.read(path)
                # detect's classifier call, on the one crop
                probs = dict(zip(engine.labels, map(float, engine.predict_crops(face[None])[0])))
            except ModelError as err:  # inf/NaN answers: every further crop would be as wrong
                fail(err)
            except InputError as err:
                out.skip(path, err)
                continue
            if found is not None:  # a whole photo read as a face would be a confident wrong answer
                typer.secho(f"{path}: a whole photo, not a face crop: read its largest face (found by "
                            f"{reader.detector.name}); `emodetect detect` reads every face", fg=typer.colors.YELLOW, err=True)
            label = max(probs, key=probs.get)
            out.write(path, cells=[[label, f"{probs[label]:.2f}"]],
                      documents=[{"source": str(path), "label": label, "confidence": round(probs[label], 4),
                                  "probabilities": rounded(probs)}])
    raise typer.Exit(out.finish())


def detect(
    paths: list[Path] = typer.Argument(..., help="image files and/or folders (searched recursively)"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name (default: default)"),
    detector: Optional[str] = typer.Option(None, help=DETECTOR_HELP),
    json_out: bool = typer.Option(False, "--json", help="print JSON lines (one object per file, as it is done) instead of a table"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="write one row per face to this CSV file"),
    save_dir: Optional[Path] = typer.Option(None, "--out", "--save-dir", help="folder for annotated copies of the images (same sub-folders)"),
    blur: bool = typer.Option(False, help="blur the faces in the annotated copies"),
    threads: int = typer.Option(0, help="onnxruntime threads for the classifier (0 = automatic)"),
    detect_size: Optional[int] = typer.Option(None, min=0, help=_DETECT_SIZE_HELP),
    detect_threads: int = typer.Option(2, min=0, help=_DETECT_THREADS_HELP),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="progress bar (default: long runs on a terminal)"),
) -> None:
    """Find faces and their emotions in photos; bad files are reported and skipped (exit code 1)."""
    from emodetect.errors import ModelError
    from emodetect.vision.batch import annotated_path, detect_files, save_annotated
    from emodetect.vision.results import face_columns

    setup_logging(False)
    check_outputs(files=[csv_path], folders=[save_dir])
    engine = _emotion_detector(model, detector, threads, detect_size, detect_threads)
    with ResultWriter(DETECT_COLUMNS, json_out, csv_path, face_columns(engine.labels)) as out:
        try:
            for outcome in detect_files(engine, paths, progress):
                if outcome.error is not None:
                    out.skip(outcome.path, outcome.error)
                    continue
                result = outcome.result
                out.write(outcome.path, cells=_face_cells(result), rows=result.to_rows(),
                          documents=[{"source": str(outcome.path), **result.to_dict()}])
                if save_dir is not None:
                    save_annotated(result, annotated_path(save_dir, outcome.path, paths), blur)
                result.image = None  # a folder of photos must not pile up in memory
        except ModelError as err:  # inf/NaN answers: every further file would be as wrong
            fail(str(err))
    if out.seen == 0:
        fail("no image files found in " + ", ".join(map(str, paths)))
    raise typer.Exit(out.finish())


def _face_cells(result) -> list[list[object]]:
    """detect's table rows of one photo after the file column: one per face, or "no face"."""
    if not result.faces:
        return [["-", "no face"]]
    return [[face.id, face.label, f"{face.confidence:.2f}", f"{face.score:.2f}",
             f"{face.box.x},{face.box.y},{face.box.width},{face.box.height}"] for face in result.faces]


def _face_bar():
    """A progress bar over faces on stderr: explaining takes about a second a face, so a group photo
    or a folder runs long. Shown on a terminal only, after two seconds (tqdm's disable=None, delay)."""
    from tqdm import tqdm

    return tqdm(unit="face", desc="explaining", disable=None, delay=2.0, leave=False, file=sys.stderr)


def explain(
    paths: list[Path] = typer.Argument(..., help="image files and/or folders (searched recursively)"),
    emotion: Optional[str] = typer.Option(None, help="explain this emotion for every face (default: each face's own)"),
    method: str = typer.Option("rise", help="rise (random masks; the most faithful in bench/explain.py) or occlusion"),
    out: Optional[Path] = typer.Option(None, help="folder for <name>_explained.png, the maps drawn over each image "
                                                  "(without it nothing is written)"),
    json_out: bool = typer.Option(False, "--json", help="print JSON lines with each face's 48x48 saliency map"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name (default: default)"),
    detector: Optional[str] = typer.Option(None, help=DETECTOR_HELP),
    threads: int = typer.Option(0, help="onnxruntime threads for the classifier (0 = automatic)"),
    max_faces: int = typer.Option(8, min=0, help="map at most this many faces per image, the largest first "
                                                 "(about a second each); the rest are listed unmapped; 0 = all"),
    accurate: bool = typer.Option(False, "--accurate", help="a finer map from 4x the masks, in 4x the time "
                                                            "(default: the fast one, the same regions)"),
) -> None:
    """Why the model read each face as it did: a saliency map over the face, from the ONNX model alone."""
    from emodetect.vision.images import ImageError, find_images

    from emodetect.errors import InputError

    setup_logging(False)
    check_outputs(folders=[out])  # before any work, as detect does
    emotion_detector = _emotion_detector(model, detector, threads)
    files, problems = find_images(paths)
    failed = len(problems)
    for path, reason in problems:
        typer.secho(f"{path}: skipped: {reason}", fg=typer.colors.YELLOW, err=True)
    bar = _face_bar()
    for path in files:
        try:
            explanation = emotion_detector.explain(path, emotion=emotion, method=method,
                                                   progress=lambda done, faces: bar.update(1),
                                                   max_faces=max_faces or None, accurate=accurate)
        except ImageError as err:
            typer.secho(f"{path}: skipped: {err}", fg=typer.colors.YELLOW, err=True)
            failed += 1
            continue
        except InputError as err:  # an unknown emotion or method: the same for every file
            bar.close()
            fail(err)
        target = _save_explained(explanation, out, path, paths) if out is not None else None
        if json_out:
            typer.echo(json.dumps({"source": str(path), **explanation.to_dict(),
                                   "image_out": None if target is None else str(target)}))
        else:
            faces = ", ".join(f"#{f.face.id} {f.label} {f.probability:.2f}" for f in explanation.faces) or "no face"
            typer.echo(f"{path}: {faces}" + (f" -> {target}" if target is not None else ""))
        if explanation.unexplained:
            typer.secho(f"{path}: {len(explanation.unexplained)} more face(s) not mapped (--max-faces {max_faces})",
                        fg=typer.colors.YELLOW, err=True)
    bar.close()
    if not files and not problems:
        fail("no image files found in " + ", ".join(map(str, paths)))
    if out is None and not json_out and files:
        typer.echo("(--out DIR draws the maps over each image, as <name>_explained.png)", err=True)
    raise typer.Exit(1 if failed else 0)


def _save_explained(explanation, out: Path, path: Path, paths: list[Path]) -> Path:
    """<out>/<name>_explained.png, keeping the folder structure under the paths given."""
    from PIL import Image

    from emodetect.vision.batch import annotated_path

    target = annotated_path(out, path, paths).with_name(f"{path.stem}_explained.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(explanation.plot()).save(target)
    return target


def webcam(
    source: str = typer.Option("0", help="camera index, video file or stream URL"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name (default: realtime-int8)"),
    detector: Optional[str] = typer.Option(None, help=DETECTOR_HELP),
    every: int = typer.Option(1, min=1, help="analyse every N-th frame"),
    smoothing: float = typer.Option(0.5, min=0.0, help="time constant in seconds of the probability smoothing (0 = off)"),
    blur: bool = typer.Option(False, help="blur the faces in the window"),
    max_frames: Optional[int] = typer.Option(None, min=1, help="stop after this many analysed frames"),
    window: bool = typer.Option(True, "--window/--no-window", help="--no-window: print one line per frame instead"),
    threads: int = typer.Option(0, help="onnxruntime threads for the classifier (0 = automatic)"),
    detect_size: Optional[int] = typer.Option(None, min=0, help=_DETECT_SIZE_HELP),
    detect_threads: int = typer.Option(2, min=0, help=_DETECT_THREADS_HELP),
    detect_every: int = typer.Option(1, min=1, help=_DETECT_EVERY_HELP),
) -> None:
    """Live emotions from a camera in an OpenCV window (q or Esc quits); --no-window runs headless."""
    from emodetect.vision.video import VideoError
    from emodetect.vision.webcam import run_webcam

    setup_logging(False)
    emotion_detector = _emotion_detector(model or _live_model(), detector, threads, detect_size, detect_threads)

    def show(index: int, t: float, result) -> None:
        faces = " ".join(f"#{f.id}:{f.label}:{f.confidence:.2f}" for f in result.faces) or "-"
        typer.echo(f"{index}\t{t:.2f}\t{faces}")

    try:
        stats = run_webcam(emotion_detector, source, every=every, smoothing=smoothing, blur=blur,
                           max_frames=max_frames, window=window, on_result=None if window else show,
                           detect_every=detect_every)
    except VideoError as err:
        fail(str(err), 1)
    typer.echo(f"{stats['frames']} frames, {stats['fps']} frames/s, {stats['faces']} face track(s), "
               f"model {emotion_detector.model_name}", err=True)


def _live_model() -> Optional[str]:
    """Live video wants speed: the bundled real-time face model (int8 first) when there is one."""
    from emodetect.runtime import bundled_models

    names = {m.name for m in bundled_models() if m.modality == "vision"}
    return next((name for name in ("realtime-int8", "realtime") if name in names), None)
