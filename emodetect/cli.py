"""The `emodetect` command: one verb per task, each a thin layer over a library function."""

from __future__ import annotations

import inspect
import json
import os
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from emodetect.console import fail, setup_logging
from emodetect.modalities import load_object, modalities, modality_help
from emodetect.vision import cli as vision_cli
from emodetect.vision.cli import DETECTOR_HELP

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


_TRAIN_EXTRA = "install the train extra: pip install 'emodetect[train]'"


def _needs_train_extra(err: ImportError) -> None:
    """`train` and `export` need torch and onnx; without them say which extra to install."""
    if err.name in ("torch", "onnx") or (err.name or "").startswith(("torch.", "onnx.")):
        fail(f"{err.name} is missing: {_TRAIN_EXTRA}")
    raise err


def _train_command(ctx: typer.Context, config: Optional[Path] = None, **values) -> None:
    from emodetect.config import config_defaults, load_config
    from emodetect.errors import EmodetectError

    if config is not None:
        # The saved recipe, with any flag given on the command line on top of it.
        try:
            recipe = load_config(config).__dict__
        except EmodetectError as err:  # names the file: missing, not JSON, an unknown key
            fail(err)
        given = {k: v for k, v in values.items()
                 if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") != "DEFAULT"}
        values = recipe | given
    try:
        from emodetect.train import TrainConfig, train
    except ImportError as err:
        _needs_train_extra(err)

    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, one process reports
    setup_logging(main_process)
    try:
        result = train(TrainConfig(**(config_defaults() | values)))
    except EmodetectError as err:
        fail(err)
    except FileNotFoundError as err:  # a --data, --pretrained or --init path that is not there
        fail(str(err))
    if main_process:
        typer.echo(json.dumps({"best_checkpoint": str(result.best_checkpoint),
                               "best_val_score": result.best_val_acc, "best_epoch": result.best_epoch}))


# A config field's type, as its annotation reads, to the flag's type; a tuple is a repeated flag.
_FLAG_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "tuple[str, ...]": str}
_FLAG_METADATA = ("help", "flag", "unit", "unset")  # read here; any other metadata is typer's (min)


def _field_options(config_class: type) -> list[inspect.Parameter]:
    """A typer option per field with `help` metadata of a config dataclass (TrainConfig,
    ServeConfig), keyword-only and named after the field: `--<field>` unless the metadata names the
    flag, of the field's type (`X | None`: optional; a tuple: repeated), its default in the flag's
    `unit` (or the `unset` value that keeps the field's default), with the field's help; booleans get
    --no-<flag> too, to turn a default off. `_field_values` reads the values back into fields."""
    params = []
    for f in fields(config_class):
        meta = f.metadata
        if "help" not in meta:
            continue
        type_name, _, optional = str(f.type).partition(" | ")
        kind = float if "unit" in meta else _FLAG_TYPES[type_name]  # megabytes of a byte count
        flag = f"--{meta.get('flag', f.name).replace('_', '-')}"
        if "unset" in meta:
            default = meta["unset"]
        elif f.default is MISSING:
            default = None
        else:
            default = f.default / meta["unit"] if "unit" in meta else f.default
        annotation = Optional[list[kind]] if type_name.startswith("tuple") else Optional[kind] if optional else kind
        option = typer.Option(default, f"{flag}/--no-{flag[2:]}" if kind is bool else flag,
                              help=meta["help"]() if callable(meta["help"]) else meta["help"],
                              **{k: v for k, v in meta.items() if k not in _FLAG_METADATA})
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=option))
    return params


def _field_values(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """The values of `_field_options`' flags as the fields hold them: megabytes as bytes, a repeated
    flag as a tuple (None when not given); a flag at its `unset` value is left out (the field's own
    default)."""
    settings = {}
    for f in fields(config_class):
        if f.name not in values or values[f.name] == f.metadata.get("unset", MISSING):
            continue
        value = values[f.name]
        if "unit" in f.metadata:
            value = int(value * f.metadata["unit"])
        elif isinstance(value, list):
            value = tuple(value) or None
        settings[f.name] = value
    return settings


def _train_signature() -> inspect.Signature:
    """`emodetect train` flags are exactly the TrainConfig fields, with the fields' help."""
    from emodetect.config import TrainConfig

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
              inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
        default=typer.Option(None, "--config", help="rerun a recipe: a config.json from a run folder "
                                                    "(flags given beside it override its values)"))]
    return inspect.Signature(params + _field_options(TrainConfig))


_train_command.__signature__ = _train_signature()  # type: ignore[attr-defined]
app.command("train", help="Train a model; flags are the fields of emodetect.TrainConfig "
                          "(needs the train extra).")(_train_command)


@app.command()
def evaluate(
    model: str = typer.Argument(..., help="ONNX file, bundled model name, or .pt checkpoint"),
    data: Path = typer.Argument(..., help="labelled data: FER-2013 CSV(.gz) or image folder, text CSV, speech folder"),
    split: str = typer.Option("test", help="train, validation or test (FER-2013's Training, PublicTest, "
                                           "PrivateTest are the same three), or a subfolder"),
    ferplus: Optional[Path] = typer.Option(None, help="fer2013new.csv: score against FER+ majority labels"),
    out: Optional[Path] = typer.Option(None, help="folder for report.json/.md/.html and confusion.png"),
    modality: Optional[str] = typer.Option(None, help=f"{modality_help()}; default: the model's own "
                                                       "(a bundled name several share: the one the data names)"),
    group_by: Optional[str] = typer.Option(None, help="a column of the data (corpus, speaker, gender, subject...): "
                                                      "figures per group with 95% bootstrap intervals and a plot"),
    head: Optional[str] = typer.Option(None, help="score this head of a multi-head model (the joint text model's "
                                                  "goemotions, isear or dair) on data in that head's labels"),
) -> None:
    """Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix."""
    from emodetect.evaluate import evaluate as run_evaluate
    from emodetect.errors import EmodetectError

    setup_logging(False)
    options = {"ferplus": ferplus} if ferplus else {}
    try:
        report = run_evaluate(model, data, split, modality=modality, out_dir=out, group_by=group_by, head=head,
                              **options)
    except EmodetectError as err:  # the model, the data, the split, the head, the output folder
        fail(err)
    except FileNotFoundError as err:  # a data path that is not there
        fail(str(err))
    typer.echo(report.to_markdown())
    if out:
        typer.echo(f"reports written to {out}/")


@app.command()
def export(
    checkpoints: list[Path] = typer.Argument(..., help="best.pt or last.pt from `emodetect train`; several "
                                                         "(e.g. seeds of one recipe): one model of their mean"),
    out: Path = typer.Option(Path("model.onnx"), help="ONNX file to write"),
    flip_tta: bool = typer.Option(True, help="average with the mirrored face inside the graph"),
    shift_tta: int = typer.Option(0, help="also average copies shifted by this many pixels (x5 views)"),
    int8: bool = typer.Option(False, help="also write an int8 copy (<out>_int8.onnx)"),
    calibration_data: Optional[Path] = typer.Option(None, help="data for int8 calibration (not needed by text_encoder, "
                                                           "whose int8 copy is quantised dynamically)"),
    calibration_split: str = typer.Option("train", help="the split of --calibration-data whose inputs (512 at "
                                                         "most, drawn with a fixed seed) calibrate the int8 copy"),
    name: str = typer.Option("", help="model name stored in the metadata (e.g. default)"),
    weight: list[float] = typer.Option([], help="with several checkpoints, each one's share of the average, in "
                                                "their order (e.g. --weight 0.3 --weight 0.7); default: equal"),
) -> None:
    """Export a checkpoint (or the average of several) to ONNX (contract in the README) and check parity with
    torch (needs the train extra)."""
    try:
        from emodetect.export import NeedsCalibration, export_checkpoint
    except ImportError as err:
        _needs_train_extra(err)
    from emodetect.errors import EmodetectError

    try:
        report = export_checkpoint(checkpoints, out, flip_tta=flip_tta, shift_tta=shift_tta, int8=int8,
                                   extra_metadata={"name": name} if name else None, weights=weight or None,
                                   calibration_data=calibration_data, calibration_split=calibration_split)
    except NeedsCalibration:  # an EmodetectError, said in the command's own words
        fail("--int8 needs --calibration-data for this model (static quantisation is calibrated on real inputs)")
    except EmodetectError as err:
        fail(err)
    typer.echo(f"wrote {report.path} (max |torch - onnxruntime| = {report.max_abs_diff:.2e})")
    if report.int8_path:
        typer.echo(f"wrote {report.int8_path}")


@app.command()
def models(
    as_json: bool = typer.Option(False, "--json", help="print JSON lines (one object per model) instead of a table"),
    card: Optional[str] = typer.Option(None, help="print the model card of this bundled model (Markdown)"),
    modality: Optional[str] = typer.Option(None, help="with --card: the modality, for a name several share (default)"),
) -> None:
    """List every bundled model with its modality, labels and test figures (no model is opened)."""
    from emodetect.cards import figures_text
    from emodetect.runtime import bundled_models

    if card is not None:
        from emodetect.cards import model_card
        from emodetect.errors import EmodetectError

        from emodetect.runtime import model_owners

        # A name several modalities share: the card is the first one's, as the README shows it,
        # chosen here and said on stderr (_note_shared_name); the library refuses to guess.
        owners = model_owners(card)
        try:
            typer.echo(model_card(card, modality or (owners[0] if len(owners) > 1 else None)))
        except EmodetectError as err:  # ModelNotFoundError lists the bundled names
            fail(err)
        _note_shared_name(card, modality)
        return

    for m in bundled_models():
        figures = m.metadata.get("test_figures", "")
        if as_json:
            typer.echo(json.dumps({"name": m.name, "modality": m.modality, "file": m.path.name,
                                   "labels": list(m.labels), "test_figures": figures}))
        else:
            typer.echo(f"{m.modality:7} {m.name:14} {m.path.name:28} labels={','.join(m.labels)} "
                       f"{figures_text(figures)}")


def _note_shared_name(name: str, modality: Optional[str]) -> None:
    """A card asked for by a name several modalities share says, on stderr, whose it is and how to
    get the others', so that `--card default` never silently means the face model."""
    from emodetect.runtime import model_owners

    owners = model_owners(name)
    if modality is None and len(owners) > 1:
        others = " or ".join(f"--modality {m}" for m in owners[1:])
        typer.secho(f"note: {name!r} names a bundled model of each of {', '.join(owners)}; this is the "
                    f"{owners[0]} one ({others} for the others)", fg=typer.colors.YELLOW, err=True)


@app.command()
def batch(
    source: str = typer.Argument(..., help="a folder or glob of images or of recordings, or a CSV/Parquet/TXT of texts"),
    out: Path = typer.Option(..., help="folder of Parquet files (a rerun into it skips what is there)"),
    address: Optional[str] = typer.Option(None, help="Ray cluster: auto, or ray://host:10001 (default: a local Ray here)"),
    workers: int = typer.Option(2, min=1, help="worker actors, each with its own copy of the models"),
    model: Optional[str] = typer.Option(None, help="bundled model name or ONNX file (default: the modality's)"),
    detector: Optional[str] = typer.Option(None, help=DETECTOR_HELP),
    column: str = typer.Option("text", help="the column of texts in a CSV or Parquet file"),
    batch_size: int = typer.Option(16, min=1, help="inputs per call of a worker"),
    verbose: bool = typer.Option(False, "--verbose", help="show Ray's own logs on the terminal (by default "
                                                          "they go to OUT/_ray.log)"),
) -> None:
    """Score a folder of images or recordings, or a file of texts, on Ray Data: Parquet out,
    one row per face, window or text (needs the distributed extra)."""
    try:
        import ray  # noqa: F401  (the extra's heaviest part: checked before anything starts)

        from emodetect.distributed import run_batch
    except ImportError as err:
        fail(f"{err.name} is missing: install the distributed extra: pip install 'emodetect[distributed]'")
    from emodetect.errors import EmodetectError

    setup_logging(False)
    try:
        report = run_batch(source, out, address, workers, model, detector, column, batch_size, verbose)
    except EmodetectError as err:  # no input found, a file of texts that cannot be read, an unknown model
        fail(err)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: Ray is shut down, the finished batches are on disk
        fail(f"stopped: the batches finished so far are in {out}/; the same command resumes", 130)
    typer.echo(report.to_text())
    raise typer.Exit(1 if report.errors else 0)


@app.command()
def video(
    file: Path = typer.Argument(..., help="video file"),
    out: Optional[Path] = typer.Option(None, help="output folder (default: next to the video)"),
    subtitles: Optional[Path] = typer.Option(None, help="SubRip (.srt) or WebVTT (.vtt) file: the text model reads each cue"),
    voice: bool = typer.Option(True, "--voice/--no-voice", help="read the sound track with the voice model"),
    words: Optional[bool] = typer.Option(None, "--words/--no-words", help="without subtitles, transcribe the speech "
                                         "and read its words (default: where the speech extra is installed)"),
    captions: bool = typer.Option(False, help="draw the fused label of the moment in a band under the video"),
    segment: float = typer.Option(3.0, min=0.5, help="seconds per fused segment when there are no subtitles"),
    model: Optional[str] = typer.Option(None, help="face model: ONNX file or bundled model name"),
    voice_model: Optional[str] = typer.Option(None, help="bundled voice model (default: Whisper's encoder; fast: a small CNN) or .onnx"),
    text_model: Optional[str] = typer.Option(None, help="bundled text model (default: the joint one; minilm-int8, accurate, goemotions) or .onnx"),
    detector: Optional[str] = typer.Option(None, help=DETECTOR_HELP),
    every: int = typer.Option(1, min=1, help="analyse every N-th frame"),
    smoothing: float = typer.Option(0.5, min=0.0, help="time constant in seconds of the probability smoothing (0 = off)"),
    blur: bool = typer.Option(False, help="blur the faces in the annotated video"),
    save_video: bool = typer.Option(True, "--save-video/--no-save-video", help="write <name>_annotated.mp4 (H.264, with the sound)"),
    max_frames: Optional[int] = typer.Option(None, min=1, help="stop after this many analysed frames"),
    threads: int = typer.Option(0, help="onnxruntime threads for the classifier (0 = automatic)"),
    detect_size: Optional[int] = typer.Option(None, min=0, help=vision_cli._DETECT_SIZE_HELP),
    detect_threads: int = typer.Option(2, min=0, help=vision_cli._DETECT_THREADS_HELP),
    detect_every: int = typer.Option(1, min=1, help=vision_cli._DETECT_EVERY_HELP),
) -> None:
    """Faces, voice and subtitles of a video on one timeline: per-frame and per-segment CSVs,
    stacked plot, summary, annotated H.264 video with its sound."""
    from emodetect.errors import EmodetectError
    from emodetect.multimodal import analyse_video

    setup_logging(False)
    emotion_detector = vision_cli._emotion_detector(model, detector, threads, detect_size, detect_threads)
    try:
        analysis = analyse_video(file, subtitles, out, voice_model=voice_model, text_model=text_model, voice=voice,
                                 every=every, smoothing=smoothing, segment_s=segment, blur=blur,
                                 save_video=save_video, captions=captions, max_frames=max_frames,
                                 progress=sys.stderr.isatty(), detect_every=detect_every, threads=threads,
                                 emotion_detector=emotion_detector, words=words)
    except EmodetectError as err:  # InputError (a file, a model name), MissingExtra
        fail(err, 1)  # exit 1, as the video command always answered (tests/test_video.py)
    typer.echo(analysis.to_text())


def _serve_command(
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0 for every interface)"),
    port: int = typer.Option(8000, help="TCP port"),
    access_log: bool = typer.Option(False, help="log one line per request (method, path, status; never bodies)"),
    ssl_certfile: Optional[Path] = typer.Option(None, help="HTTPS certificate: browsers allow the camera "
                                                       "only over HTTPS or on localhost"),
    ssl_keyfile: Optional[Path] = typer.Option(None, help="HTTPS private key"),
    **values: Any,
) -> None:
    """The HTTP API (/docs) and the web page (/) on the bundled models; nothing uploaded is stored."""
    try:
        from emodetect.serve import create_app
        from emodetect.serve.server import run  # imports uvicorn: the extra is checked before any work
    except ImportError as err:
        fail(f"{err.name} is missing: install the service extra with pip install 'emodetect[serve]'")
    from emodetect.errors import EmodetectError

    setup_logging(False)
    try:
        config = _serve_config(host, values)
    except EmodetectError as err:  # a limit out of range (ServeConfig checks them)
        fail(err)
    _check_model_names(config)
    typer.echo(f"emodetect serve: http://{host}:{port}/ (API docs at /docs); uploads are never stored", err=True)

    # serve.server sets the socket settings: a head timeout, and a cap on requests in flight, not on
    # sockets (uvicorn's limit_concurrency let 99 idle connections lock everyone out; issue 34).
    try:
        run(create_app(config), host, port, access_log=access_log,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
    except EmodetectError as err:
        fail(str(err))


def _serve_signature() -> inspect.Signature:
    """`emodetect serve` flags: where to listen (uvicorn's settings), then the ServeConfig fields
    that have help, then the model option of each modality whose row names one ServeConfig has no
    field for (an installed package's), then the access log and HTTPS files."""
    from emodetect.serve.config import FIELD_NAMES, ServeConfig

    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)  # all but **values
           for p in list(inspect.signature(_serve_command).parameters.values())[:-1]]
    models = [inspect.Parameter(
        m.model_option, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
        default=typer.Option(None, f"--{m.model_option.replace('_', '-')}",
                             help=f"{m.name} model of the service ({m.summary}): a bundled name or ONNX file "
                                  f"(default: {m.default_model})"))
        for m in modalities() if m.router and m.model_option not in FIELD_NAMES]
    return inspect.Signature([*own[:2], *_field_options(ServeConfig), *models, *own[2:]])


_serve_command.__signature__ = _serve_signature()  # type: ignore[attr-defined]
app.command("serve")(_serve_command)


def _serve_config(host: str, values: dict[str, Any]) -> Any:
    """The ServeConfig the flags give: the model options of rows without a field go into `models`;
    on a loopback address with no --allowed-host, the loopback names are the allowed hosts."""
    from emodetect.serve.config import FIELD_NAMES, ServeConfig

    settings = _field_values(ServeConfig, values)
    settings["allowed_hosts"] = _allowed_hosts(host, settings.get("allowed_hosts"))
    settings["models"] = {m.name: values[m.model_option] for m in modalities()
                          if m.model_option not in FIELD_NAMES and values.get(m.model_option)}
    return ServeConfig(**settings)


def _check_model_names(config: Any) -> None:
    """Each model the options name is a file or a bundled model of its modality: a typo is one
    line naming the option and the bundled names, before the service starts."""
    from emodetect.errors import InputError
    from emodetect.runtime import resolve_model

    for m in modalities():
        given = config.model_for(m.name) if m.router else None
        if not given or Path(given).exists():
            continue
        flag = f"--{m.model_option.replace('_', '-')}"
        try:
            found = resolve_model(given, m.name)
        except InputError as err:  # ModelNotFoundError lists the modality's bundled names
            fail(f"{flag} {given}: no such file, and {err}")
        if found.bundled is None:
            fail(f"{flag} {given}: no such file")


def _allowed_hosts(bind: str, given: Optional[Sequence[str]]) -> Optional[tuple[str, ...]]:
    """Host names to answer to: those given, else the loopback names on a loopback bind."""
    from emodetect.serve.security import LOOPBACK_HOSTS

    if given:
        return tuple(given)
    return LOOPBACK_HOSTS if bind in LOOPBACK_HOSTS else None


def _register_modality_commands() -> None:
    """Each modality's verbs live in its own cli module (the modality table lists them); importing
    them needs only typer."""
    for modality in modalities():
        for reference in modality.commands:
            app.command(reference.partition(":")[2])(load_object(reference))


_register_modality_commands()


def main() -> None:
    app()
