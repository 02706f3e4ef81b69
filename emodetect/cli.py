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


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(message)s", stream=sys.stderr)


def _train_command(**values) -> None:
    from emodetect.train import TrainConfig, train
    from emodetect.vision.data import DataError

    _setup_logging(True)
    try:
        result = train(TrainConfig(**values))
    except (DataError, FileNotFoundError, ValueError, KeyError) as err:
        _fail(str(err))
    typer.echo(json.dumps({"best_checkpoint": str(result.best_checkpoint),
                           "best_val_score": result.best_val_acc, "best_epoch": result.best_epoch}))


def _train_signature() -> inspect.Signature:
    """`emodetect train` flags are exactly the TrainConfig fields."""
    from emodetect.train import TrainConfig

    params = []
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        kind = {"int": int, "float": float, "bool": bool, "str": str}[str(f.type)]
        params.append(inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
            default=typer.Option(default, f"--{f.name.replace('_', '-')}")))
    return inspect.Signature(params)


_train_command.__signature__ = _train_signature()  # type: ignore[attr-defined]
app.command("train", help="Train a model; flags are the fields of emodetect.TrainConfig.")(_train_command)


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
    from emodetect.vision.data import DataError

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
    int8: bool = typer.Option(False, help="also write an int8 copy (<out>_int8.onnx)"),
    calibration_data: Optional[Path] = typer.Option(None, help="data for int8 calibration"),
    calibration_split: str = typer.Option("Training"),
    name: str = typer.Option("", help="model name stored in the metadata (e.g. default)"),
) -> None:
    """Export a checkpoint to ONNX (contract in the README) and check parity with torch."""
    import importlib

    import torch

    from emodetect.export import export_checkpoint

    calibration = None
    if int8:
        if calibration_data is None:
            _fail("--int8 needs --calibration-data")
        modality = torch.load(checkpoint, map_location="cpu", weights_only=False)["config"].get("modality", "vision")
        inputs = importlib.import_module(f"emodetect.{modality}.data").evaluation_data(
            calibration_data, calibration_split)[0]
        calibration = inputs[torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))[:512].numpy()]
    if not checkpoint.is_file():
        _fail(f"{checkpoint}: no such checkpoint")
    report = export_checkpoint(checkpoint, out, flip_tta=flip_tta, int8=int8, calibration=calibration,
                               extra_metadata={"name": name} if name else None)
    typer.echo(f"wrote {report.path} (max |torch - onnxruntime| = {report.max_abs_diff:.2e})")
    if report.int8_path:
        typer.echo(f"wrote {report.int8_path}")


@app.command()
def models() -> None:
    """List every bundled model with its modality, labels and test figures."""
    from emodetect.runtime import bundled_models

    for m in bundled_models():
        figures = m.metadata.get("test_figures", "")
        typer.echo(f"{m.modality:7} {m.name:14} {m.path.name:28} labels={','.join(m.labels)} {figures}")


@app.command()
def predict(
    images: list[Path] = typer.Argument(..., help="face crops (any size; made 48x48 grey)"),
    model: Optional[str] = typer.Option(None, help="ONNX file or bundled model name"),
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
        typer.echo(f"{path}\t{onnx_model.labels[top]}\t{probs[top]:.3f}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 for every interface)"),
    port: int = typer.Option(8000, help="TCP port"),
    model: Optional[str] = typer.Option(None, help="bundled face model name or ONNX file"),
    detector: Optional[str] = typer.Option(None, help="face detector (yunet, centerface, haar)"),
    threads: int = typer.Option(1, help="onnxruntime threads per worker"),
    workers: int = typer.Option(0, help="inferences at the same time (0 = one per core, at most 4)"),
    max_upload_mb: float = typer.Option(10.0, help="largest upload accepted, in MB (413 above)"),
    max_pixels: int = typer.Option(40_000_000, help="largest image accepted, in pixels (decompression bombs)"),
    access_log: bool = typer.Option(False, help="log one line per request (method, path, status; never bodies)"),
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
                             max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels)
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
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)


def main() -> None:
    app()
