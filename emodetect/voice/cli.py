"""`emodetect voice`: a thin layer over VoiceEmotion that prints a table and writes CSV and plots."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import typer

from emodetect.console import FILE_COLUMN, Column, fail, fit_path, table_header, table_line

# detect's table style: the file, the recording's label and confidence, then its length and how
# many of its windows had speech.
VOICE_COLUMNS = (FILE_COLUMN, Column("label", 9), Column("conf", 5, ">"), Column("seconds", 8, ">"),
                 Column("windows", 7, ">"), Column("voiced", 6, ">"))


def voice(
    files: list[Path] = typer.Argument(..., help="recordings: wav, flac, mp3, m4a, ogg, webm, mp4 (any container FFmpeg reads; any rate, any channels)"),
    model: Optional[str] = typer.Option(None, help="bundled voice model (default, ravdess, emodb) or .onnx"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="write one row per file (or per window)"),
    timeline: bool = typer.Option(False, help="with --csv: one row per window instead of per file, and the "
                                               "emotion-over-time PNGs next to the CSV"),
    plot_dir: Optional[Path] = typer.Option(
        None, "--out", "--plot-dir", help="folder for emotion-over-time PNGs of multi-window files (nothing is "
                                          "drawn without it or --timeline)"),
    window: Optional[float] = typer.Option(None, help="window length in seconds (default: the model's)"),
    hop: Optional[float] = typer.Option(None, help="hop between windows in seconds (default: half a window)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per file instead of a table"),
    words: Optional[bool] = typer.Option(None, "--words/--no-words", help="transcribe the speech and read its "
                                         "words' emotion too (default: where the speech extra is installed)"),
    text_model: Optional[str] = typer.Option(None, help="text model that reads the words (default: default)"),
) -> None:
    """Emotion in speech: whole-file label, and a per-window timeline for long recordings."""
    from emodetect.errors import MissingExtra
    from emodetect.voice.features import AudioError
    from emodetect.voice.pipeline import VoiceEmotion

    try:
        engine = VoiceEmotion(model, window_s=window, hop_s=hop, words=words, text_model=text_model)
    except (FileNotFoundError, KeyError, ValueError, MissingExtra) as err:
        fail(str(err))
    if engine.words_hint:
        typer.secho(f"note: {engine.words_hint}", fg=typer.colors.YELLOW, err=True)
    results, failed = [], 0
    if not as_json:
        typer.echo(table_header(VOICE_COLUMNS))
    for path in files:
        try:
            result = engine.predict(path)
        except (AudioError, OSError, MemoryError) as err:
            typer.secho(f"{path}: skipped: {err}", fg=typer.colors.YELLOW, err=True)
            failed += 1
            continue
        results.append(result)
        for note in result.notes:
            typer.secho(f"{path}: note: {note}", fg=typer.colors.YELLOW, err=True)
        if as_json:
            typer.echo(result.to_json())
        else:
            typer.echo(table_line(VOICE_COLUMNS, [fit_path(path, FILE_COLUMN.width), result.label or "silent",
                                                  f"{result.confidence:.2f}", f"{result.duration_s:.2f}",
                                                  len(result.windows), len(result.voiced)]))
            for u in result.transcript or []:  # the words under their file, with their emotion
                typer.echo(f"    {u.start_s:6.1f}-{u.end_s:<6.1f} {u.label or '':9} {u.text}")
    if csv_path is not None and results:
        rows = [row for r in results for row in r.to_rows(timeline)]
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        typer.echo(f"wrote {csv_path} ({len(rows)} rows)", err=True)
    # Plots only when asked for: a folder named, or a timeline CSV to sit beside.
    out_dir = plot_dir or (csv_path.parent if csv_path is not None and timeline else None)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for result in results:
            if len(result.voiced) > 1:
                png = result.plot(out_dir / f"{Path(result.source).stem}_timeline.png")
                typer.echo(f"wrote {png}", err=True)
    raise typer.Exit(1 if failed else 0)
