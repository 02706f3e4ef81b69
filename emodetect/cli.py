"""The `emodetect` command: one verb per task, each a thin layer over a library function."""

from __future__ import annotations

import inspect
import json
import logging
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Emotion in faces, text and voice, offline, with CNNs.")


def _print_version(value: bool) -> None:
    if value:
        from emodetect import __version__

        typer.echo(f"emodetect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Emotion in faces, text and voice, offline, with CNNs."""


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(message)s", stream=sys.stderr)


def _detector_help() -> str:
    """Built from the detector table itself, so the help never goes stale."""
    from emodetect.vision.faces import DEFAULT_ORDER

    return (f"face detector: {', '.join(DEFAULT_ORDER)} (default: the first that can run here, "
            f"{DEFAULT_ORDER[0]} everywhere; the others need optional packages, see docs/pipeline.md)")


_DETECTOR_HELP = _detector_help()
_TRAIN_EXTRA = "install the train extra: pip install 'emodetect[train]'"


def _needs_train_extra(err: ImportError) -> None:
    """`train` and `export` need torch and onnx; without them say which extra to install."""
    if err.name in ("torch", "onnx") or (err.name or "").startswith(("torch.", "onnx.")):
        _fail(f"{err.name} is missing: {_TRAIN_EXTRA}")
    raise err


def _train_command(ctx: typer.Context, config: Optional[Path] = None, **values) -> None:
    from emodetect.config import config_defaults, load_config

    if config is not None:
        # The saved recipe, with any flag given on the command line on top of it.
        try:
            recipe = load_config(config).__dict__
        except (OSError, ValueError, TypeError) as err:
            _fail(f"{config}: not a readable config.json ({err})")
        given = {k: v for k, v in values.items()
                 if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") != "DEFAULT"}
        values = recipe | given
    try:
        from emodetect.train import TrainConfig, train
    except ImportError as err:
        _needs_train_extra(err)
    from emodetect.errors import EmodetectError

    _setup_logging(True)
    try:
        result = train(TrainConfig(**(config_defaults() | values)))
    except (EmodetectError, FileNotFoundError, ValueError, KeyError) as err:
        _fail(str(err))
    typer.echo(json.dumps({"best_checkpoint": str(result.best_checkpoint),
                           "best_val_score": result.best_val_acc, "best_epoch": result.best_epoch}))


def _train_signature() -> inspect.Signature:
    """`emodetect train` flags are exactly the TrainConfig fields, with the fields' help."""
    from emodetect.config import TrainConfig

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
              inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
        default=typer.Option(None, "--config", help="rerun a recipe: a config.json from a run folder "
                                                    "(flags given beside it override its values)"))]
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        kind = {"int": int, "float": float, "bool": bool, "str": str}[str(f.type)]
        flag = f"--{f.name.replace('_', '-')}"  # booleans get --no-<flag> too, to turn a default off
        params.append(inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
            default=typer.Option(default, flag if kind is not bool else f"{flag}/--no-{flag[2:]}",
                                 help=f.metadata.get("help"))))
    return inspect.Signature(params)


_train_command.__signature__ = _train_signature()  # type: ignore[attr-defined]
app.command("train", help="Train a model; flags are the fields of emodetect.TrainConfig "
                          "(needs the train extra).")(_train_command)


@app.command()
def evaluate(
    model: str = typer.Argument(..., help="ONNX file, bundled model name, or .pt checkpoint"),
    data: Path = typer.Argument(..., help="FER-2013 CSV(.gz) or image folder"),
    split: str = typer.Option("PrivateTest", help="Training/PublicTest/PrivateTest, or a subfolder"),
    ferplus: Optional[Path] = typer.Option(None, help="fer2013new.csv: score against FER+ majority labels"),
    out: Optional[Path] = typer.Option(None, help="folder for report.json/.md/.html and confusion.png"),
    modality: str = typer.Option("vision", help="vision, text or voice"),
) -> None:
    """Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix."""
    from emodetect.evaluate import evaluate as run_evaluate
    from emodetect.errors import DataError

    _setup_logging(False)
    options = {"ferplus": ferplus} if ferplus else {}
    try:
        report = run_evaluate(model, data, split, modality=modality, out_dir=out, **options)
    except (DataError, FileNotFoundError, KeyError, ValueError) as err:
        _fail(str(err))
    typer.echo(report.to_markdown())
    if out:
        typer.echo(f"reports written to {out}/")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="best.pt or last.pt from `emodetect train`"),
    out: Path = typer.Option(Path("model.onnx"), help="ONNX file to write"),
    flip_tta: bool = typer.Option(True, help="average with the mirrored face inside the graph"),
    shift_tta: int = typer.Option(0, help="also average copies shifted by this many pixels (x5 views)"),
    int8: bool = typer.Option(False, help="also write an int8 copy (<out>_int8.onnx)"),
    calibration_data: Optional[Path] = typer.Option(None, help="data for int8 calibration"),
    calibration_split: str = typer.Option("Training"),
    name: str = typer.Option("", help="model name stored in the metadata (e.g. default)"),
) -> None:
    """Export a checkpoint to ONNX (contract in the README) and check parity with torch (needs the train extra)."""
    import importlib

    try:
        import torch

        from emodetect.export import export_checkpoint
    except ImportError as err:
        _needs_train_extra(err)

    from emodetect.errors import EmodetectError
    from emodetect.train import read_checkpoint

    calibration = None
    try:
        if int8:
            if calibration_data is None:
                _fail("--int8 needs --calibration-data")
            modality = read_checkpoint(checkpoint)["config"].get("modality", "vision")
            inputs = importlib.import_module(f"emodetect.{modality}.data").evaluation_data(
                calibration_data, calibration_split)[0]
            calibration = inputs[torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))[:512].numpy()]
        report = export_checkpoint(checkpoint, out, flip_tta=flip_tta, shift_tta=shift_tta, int8=int8,
                                   calibration=calibration, extra_metadata={"name": name} if name else None)
    except EmodetectError as err:
        _fail(str(err))
    typer.echo(f"wrote {report.path} (max |torch - onnxruntime| = {report.max_abs_diff:.2e})")
    if report.int8_path:
        typer.echo(f"wrote {report.int8_path}")


@app.command()
def models(
    as_json: bool = typer.Option(False, "--json", help="print JSON lines (one object per model) instead of a table"),
) -> None:
    """List every bundled model with its modality, labels and test figures (no model is opened)."""
    from emodetect.runtime import bundled_models

    for m in bundled_models():
        figures = m.metadata.get("test_figures", "")
        if as_json:
            typer.echo(json.dumps({"name": m.name, "modality": m.modality, "file": m.path.name,
                                   "labels": list(m.labels), "test_figures": figures}))
        else:
            typer.echo(f"{m.modality:7} {m.name:14} {m.path.name:28} labels={','.join(m.labels)} {figures}")


@app.command()
def predict(
    images: list[Path] = typer.Argument(..., help="face crops (any size; made 48x48 grey)"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name"),
    as_json: bool = typer.Option(False, "--json", help="print JSON lines (one object per crop) instead of a table"),
) -> None:
    """Classify face crops that are already cut out (no face detection)."""
    import numpy as np

    from emodetect.runtime import load_model
    from emodetect.vision.data import load_grey_face

    onnx_model = load_model(model)
    failed = 0
    for path in images:
        try:
            face = load_grey_face(path)
        except (ValueError, FileNotFoundError) as err:
            typer.secho(f"{path}: skipped: {err}", fg=typer.colors.YELLOW, err=True)
            failed += 1
            continue
        probs = onnx_model.predict(face[None, None].astype(np.float32))[0]
        top = int(probs.argmax())
        if as_json:
            typer.echo(json.dumps({"source": str(path), "emotion": onnx_model.labels[top],
                                   "confidence": round(float(probs[top]), 4),
                                   "probabilities": {k: round(float(v), 4) for k, v in zip(onnx_model.labels, probs)}}))
        else:
            typer.echo(f"{path}\t{onnx_model.labels[top]}\t{probs[top]:.3f}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 for every interface)"),
    port: int = typer.Option(8000, help="TCP port"),
    model: Optional[str] = typer.Option(None, help="bundled face model name or ONNX file"),
    detector: Optional[str] = typer.Option(None, help=_DETECTOR_HELP),
    threads: int = typer.Option(1, help="onnxruntime threads per worker"),
    workers: int = typer.Option(0, help="inferences at the same time (0 = one per core, at most 4)"),
    max_upload_mb: float = typer.Option(10.0, help="largest upload accepted, in MB (413 above)"),
    max_pixels: int = typer.Option(40_000_000, help="largest image accepted, in pixels (decompression bombs)"),
    max_audio_seconds: float = typer.Option(600.0, help="longest recording accepted by /v1/voice, in seconds "
                                                        "(413 above; checked on the header before decoding)"),
    access_log: bool = typer.Option(False, help="log one line per request (method, path, status; never bodies)"),
    allowed_host: Optional[list[str]] = typer.Option(
        None, help="a Host name this server answers to (repeat for several); default on a loopback "
                   "address: 127.0.0.1, localhost, ::1 (against DNS rebinding); elsewhere any"),
    max_connections: int = typer.Option(100, min=1, help="connections at once; more are answered 503"),
    body_timeout: float = typer.Option(30.0, help="seconds an upload may take to arrive (408 after)"),
    ssl_certfile: Optional[Path] = typer.Option(None, help="HTTPS certificate: browsers allow the camera "
                                                       "only over HTTPS or on localhost"),
    ssl_keyfile: Optional[Path] = typer.Option(None, help="HTTPS private key"),
) -> None:
    """The HTTP API (/docs) and the web page (/) on the bundled models; nothing uploaded is stored."""
    try:
        import uvicorn

        from emodetect.serve import ServeConfig, create_app
        from emodetect.serve.state import default_workers
    except ImportError as err:
        _fail(f"{err.name} is missing: install the service extra with pip install 'emodetect[serve]'")
    _setup_logging(False)
    try:
        config = ServeConfig(model=model, detector=detector, threads=threads,
                             workers=workers or default_workers(),
                             max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels,
                             max_audio_seconds=max_audio_seconds, body_timeout_s=body_timeout,
                             allowed_hosts=_allowed_hosts(host, allowed_host))
    except ValueError as err:
        _fail(str(err))
    if model and not Path(model).exists():
        from emodetect.runtime import bundled_model_path

        try:
            bundled_model_path(model, "vision")
        except KeyError as err:
            _fail(f"--model {model}: no such file, and {err.args[0]}")
    typer.echo(f"emodetect serve: http://{host}:{port}/ (API docs at /docs); uploads are never stored", err=True)
    uvicorn.run(create_app(config), host=host, port=port, access_log=access_log, log_level="warning",
                limit_concurrency=max_connections, timeout_keep_alive=5,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)


def _allowed_hosts(bind: str, given: Optional[list[str]]) -> Optional[tuple[str, ...]]:
    """Host names to answer to: those given, else the loopback names on a loopback bind."""
    from emodetect.serve.security import LOOPBACK_HOSTS

    if given:
        return tuple(given)
    return LOOPBACK_HOSTS if bind in LOOPBACK_HOSTS else None


def _emotion_detector(model: Optional[str], detector: Optional[str], threads: int, detect_size: Optional[int] = None,
                      detect_threads: int = 2):
    from emodetect.vision.faces import create_detector
    from emodetect.vision.pipeline import EmotionDetector

    options = {"threads": detect_threads} | ({"max_side": detect_size} if detect_size is not None else {})
    try:
        face_detector = create_detector(detector, **options)
        return EmotionDetector(model, face_detector, threads)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
        _fail(str(err))


_DETECT_SIZE_HELP = "longer side (px) of the copy faces are searched in; 0 = full size (default: the detector's)"
# One stream at a time on the command line: the detector may use two cores (yunet at 480 px: 22 ms
# on one thread, 14 ms on two, bench/pipeline.py --detect-threads). The service keeps one per worker.
_DETECT_THREADS_HELP = "threads of the face detector (0 = its library's default)"
_DETECT_EVERY_HELP = "look for faces in every N-th analysed frame only, reading emotions at the last boxes in between"


def _fit_path(path: Path, width: int) -> str:
    """The path, or its last characters after an ellipsis when it is longer than the column."""
    text = str(path)
    return text if len(text) <= width else "…" + text[-(width - 1):]


@app.command()
def detect(
    paths: list[Path] = typer.Argument(..., help="image files and/or folders (searched recursively)"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name (default: default)"),
    detector: Optional[str] = typer.Option(None, help=_DETECTOR_HELP),
    json_out: bool = typer.Option(False, "--json", help="print JSON lines (one object per file, as it is done) instead of a table"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="write one row per face to this CSV file"),
    save_dir: Optional[Path] = typer.Option(None, help="save annotated copies of the images here"),
    blur: bool = typer.Option(False, help="blur the faces in the annotated copies"),
    threads: int = typer.Option(0, help="onnxruntime threads for the classifier (0 = automatic)"),
    detect_size: Optional[int] = typer.Option(None, min=0, help=_DETECT_SIZE_HELP),
    detect_threads: int = typer.Option(2, min=0, help=_DETECT_THREADS_HELP),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="progress bar (default: long runs on a terminal)"),
) -> None:
    """Find faces and their emotions in photos; bad files are reported and skipped (exit code 1)."""
    from emodetect.vision.batch import annotated_path, csv_writer, detect_files, save_annotated

    _setup_logging(False)
    emotion_detector = _emotion_detector(model, detector, threads, detect_size, detect_threads)
    csv_handle = open(csv_path, "w", newline="") if csv_path else None
    rows = csv_writer(csv_handle, emotion_detector.labels) if csv_handle else None
    failed, files = 0, 0
    if not json_out:
        typer.echo(f"{'file':40} {'face':>4} {'emotion':9} {'conf':>5} {'score':>5}  box (x,y,w,h)")
    try:
        for outcome in detect_files(emotion_detector, paths, progress):
            files += 1
            if outcome.error is not None:
                failed += 1
                typer.secho(f"{outcome.path}: skipped: {outcome.error}", fg=typer.colors.YELLOW, err=True)
                if json_out:
                    typer.echo(json.dumps({"source": str(outcome.path), "error": outcome.error}))
                continue
            result = outcome.result
            # Written as they are made (JSON lines, CSV rows): a kill or a later failure loses nothing.
            if json_out:
                typer.echo(json.dumps({"source": str(outcome.path), **result.to_dict()}))
            else:
                shown = _fit_path(outcome.path, 40)
                if not result.faces:
                    typer.echo(f"{shown:40} {'-':>4} no face")
                for face in result.faces:
                    b = face.box
                    typer.echo(f"{shown:40} {face.id:>4} {face.emotion:9} "
                               f"{face.confidence:5.2f} {face.score:5.2f}  {b.x},{b.y},{b.width},{b.height}")
            if rows is not None:
                rows.writerows(result.to_rows())
                csv_handle.flush()
            if save_dir is not None:
                save_annotated(result, annotated_path(save_dir, outcome.path, paths), blur)
            result.image = None  # a folder of photos must not pile up in memory
    finally:
        if csv_handle:
            csv_handle.close()
    if files == 0:
        _fail("no image files found in " + ", ".join(map(str, paths)))
    if failed:
        typer.secho(f"{failed} of {files} file(s) skipped", fg=typer.colors.YELLOW, err=True)
    raise typer.Exit(1 if failed else 0)


@app.command()
def video(
    file: Path = typer.Argument(..., help="video file"),
    out: Optional[Path] = typer.Option(None, help="output folder (default: next to the video)"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name"),
    detector: Optional[str] = typer.Option(None, help=_DETECTOR_HELP),
    every: int = typer.Option(1, min=1, help="analyse every N-th frame"),
    smoothing: float = typer.Option(0.5, min=0.0, help="time constant in seconds of the probability smoothing (0 = off)"),
    blur: bool = typer.Option(False, help="blur the faces in the annotated video"),
    save_video: bool = typer.Option(True, "--save-video/--no-save-video", help="write <name>_annotated.mp4"),
    max_frames: Optional[int] = typer.Option(None, min=1, help="stop after this many analysed frames"),
    threads: int = typer.Option(0, help="onnxruntime threads for the classifier (0 = automatic)"),
    detect_size: Optional[int] = typer.Option(None, min=0, help=_DETECT_SIZE_HELP),
    detect_threads: int = typer.Option(2, min=0, help=_DETECT_THREADS_HELP),
    detect_every: int = typer.Option(1, min=1, help=_DETECT_EVERY_HELP),
) -> None:
    """Track faces through a video: per-frame CSV, emotion-over-time PNG, summary, annotated video."""
    from emodetect.vision.video import VideoError, analyse_video

    _setup_logging(False)
    emotion_detector = _emotion_detector(model, detector, threads, detect_size, detect_threads)
    try:
        summary = analyse_video(emotion_detector, file, out, every=every, smoothing=smoothing, blur=blur,
                                save_video=save_video, max_frames=max_frames, progress=sys.stderr.isatty(),
                                detect_every=detect_every)
    except VideoError as err:
        _fail(str(err), 1)
    typer.echo(summary.to_text())


@app.command()
def webcam(
    source: str = typer.Option("0", help="camera index, video file or stream URL"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name (default: realtime-int8)"),
    detector: Optional[str] = typer.Option(None, help=_DETECTOR_HELP),
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
    from emodetect.vision.video import VideoError, run_webcam

    _setup_logging(False)
    emotion_detector = _emotion_detector(model or _live_model(), detector, threads, detect_size, detect_threads)

    def show(index: int, t: float, result) -> None:
        faces = " ".join(f"#{f.id}:{f.emotion}:{f.confidence:.2f}" for f in result.faces) or "-"
        typer.echo(f"{index}\t{t:.2f}\t{faces}")

    try:
        stats = run_webcam(emotion_detector, source, every=every, smoothing=smoothing, blur=blur,
                           max_frames=max_frames, window=window, on_result=None if window else show,
                           detect_every=detect_every)
    except VideoError as err:
        _fail(str(err), 1)
    typer.echo(f"{stats['frames']} frames, {stats['fps']} frames/s, {stats['faces']} face track(s), "
               f"model {emotion_detector.model_name}", err=True)


def _live_model() -> Optional[str]:
    """Live video wants speed: the bundled real-time face model (int8 first) when there is one."""
    from emodetect.runtime import bundled_models

    names = {m.name for m in bundled_models() if m.modality == "vision"}
    return next((name for name in ("realtime-int8", "realtime") if name in names), None)


def _register_voice() -> None:
    # The command lives with its modality (emodetect/voice/cli.py); importing it needs only typer.
    from emodetect.voice.cli import voice

    app.command("voice")(voice)


_register_voice()


def _register_text() -> None:
    # The command lives with its modality (emodetect/text/cli.py); importing it needs only typer.
    from emodetect.text.cli import text

    app.command("text")(text)


_register_text()


def main() -> None:
    app()
