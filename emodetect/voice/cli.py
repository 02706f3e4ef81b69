"""`emodetect voice`: a thin layer over VoiceEmotion that prints a table and writes CSV and plots."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from emodetect.errors import EmodetectError, InputError, MissingExtra

from emodetect.console import FILE_COLUMN, Column, ResultWriter, fail

# detect's table style: the file, the recording's label and confidence, then its length and how
# many of its windows had speech.
VOICE_COLUMNS = (FILE_COLUMN, Column("label", 9), Column("conf", 5, ">"), Column("seconds", 8, ">"),
                 Column("windows", 7, ">"), Column("voiced", 6, ">"))


def voice(
    files: list[Path] = typer.Argument(..., help="recordings: wav, flac, mp3, m4a, ogg, webm, mp4 (any container FFmpeg reads; any rate, any channels)"),
    model: Optional[str] = typer.Option(None, help="bundled voice model (default: Whisper's encoder; fast: a small CNN) or .onnx"),
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
    from emodetect.voice.features import AudioError
    from emodetect.voice.pipeline import VoiceEmotion

    try:
        engine = VoiceEmotion(model, window_s=window, hop_s=hop, words=words, text_model=text_model)
    except EmodetectError as err:  # ModelNotFoundError, ModelError, a window out of range, MissingExtra
        fail(err)
    if engine.words_hint:
        typer.secho(f"note: {engine.words_hint}", fg=typer.colors.YELLOW, err=True)
    # Plots only when asked for: a folder named, or a timeline CSV to sit beside.
    plot_dir = plot_dir or (csv_path.parent if csv_path is not None and timeline else None)
    for folder in {csv_path.parent if csv_path is not None else None, plot_dir} - {None}:
        folder.mkdir(parents=True, exist_ok=True)
    with ResultWriter(VOICE_COLUMNS, as_json, csv_path) as out:
        for path in files:
            try:
                result = engine.predict(path)
            except (AudioError, OSError, MemoryError) as err:
                out.skip(path, err)
                continue
            for note in result.notes:
                typer.secho(f"{path}: note: {note}", fg=typer.colors.YELLOW, err=True)
            out.write(path, cells=[_table_cells(result)], lines=_words_lines(result), documents=[result.to_dict()],
                      rows=result.to_rows(timeline))
            if plot_dir is not None and len(result.voiced) > 1:
                typer.echo(f"wrote {result.plot(plot_dir / f'{Path(result.source).stem}_timeline.png')}", err=True)
    raise typer.Exit(out.finish())


def _table_cells(result) -> list[object]:
    """A recording's row of the table, after the file column."""
    return [result.label or "silent", f"{result.confidence:.2f}", f"{result.duration_s:.2f}", len(result.windows),
            len(result.voiced)]


def _words_lines(result) -> list[str]:
    """The words spoken (with the speech extra), under their file's row, each with its emotion."""
    return [f"    {u.start_s:6.1f}-{u.end_s:<6.1f} {u.label or '':9} {u.text}" for u in result.transcript or []]


def _microphone_blocks(rate: int = 16_000, block_s: float = 0.1) -> Iterator[np.ndarray]:
    """Blocks from the default microphone (sounddevice, the listen extra) until Ctrl-C."""
    import queue

    try:
        import sounddevice
    except ImportError:
        raise MissingExtra("sounddevice", "listen", "listening to a microphone") from None
    except OSError as err:  # the package is there, the PortAudio library is not
        raise InputError(f"no audio input: PortAudio cannot be loaded ({err})") from None
    blocks: queue.Queue = queue.Queue()
    try:
        stream = sounddevice.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=int(rate * block_s),
                                         callback=lambda data, frames, time, status: blocks.put(data[:, 0].copy()))
    except Exception as err:  # sounddevice.PortAudioError: no device, device busy
        raise InputError(f"no audio input device to listen to ({err})") from None
    with stream:
        while True:
            yield blocks.get()


def _paced(blocks: Iterable[np.ndarray], rate: int, speed: float) -> Iterator[np.ndarray]:
    """The blocks no faster than `speed` x real time (0: as fast as they come)."""
    started, sent = time.perf_counter(), 0
    for block in blocks:
        if speed > 0:
            time.sleep(max(0.0, started + sent / rate / speed - time.perf_counter()))
        sent += len(block)
        yield block


def listen(
    source: Optional[Path] = typer.Option(None, help="a recording played as if live, instead of the microphone"),
    model: Optional[str] = typer.Option(None, help="bundled voice model (default: Whisper's encoder; fast: a small CNN) or .onnx"),
    seconds: Optional[float] = typer.Option(None, min=0.1, help="stop after this many seconds (default: Ctrl-C)"),
    speed: float = typer.Option(1.0, min=0.0, help="with --source: play it at this many times real time (0: at once)"),
    smoothing: float = typer.Option(3.0, min=0.0, help="time constant in seconds of the running state"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line, for another program to read"),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="also write one row per window as it comes"),
    words: Optional[bool] = typer.Option(None, "--words/--no-words", help="transcribe each utterance when it ends "
                                         "(default: where the speech extra is installed)"),
) -> None:
    """Emotion in speech as it happens: the microphone (or --source) window by window, with a
    smoothed running state; silent windows are marked. Ctrl-C stops and flushes."""
    from emodetect.voice.features import SAMPLE_RATE, stream_audio
    from emodetect.voice.pipeline import VoiceEmotion

    try:
        engine = VoiceEmotion(model, words=words)
        blocks = (_paced(stream_audio(source, block_seconds=0.1), SAMPLE_RATE, speed) if source is not None
                  else _microphone_blocks(SAMPLE_RATE))
        if seconds is not None:
            blocks = _first_seconds(blocks, seconds)
        handle = open(csv_path, "w", newline="", encoding="utf-8") if csv_path is not None else None
    except EmodetectError as err:  # the model, the source, MissingExtra
        fail(err)
    except OSError as err:  # the --csv file cannot be opened
        fail(str(err))
    writer = csv.DictWriter(handle, ["kind", "start_s", "end_s", "label", "confidence", "smoothed_label", "text",
                                     *engine.labels], extrasaction="ignore") if handle else None
    if writer:
        writer.writeheader()
    try:
        for update in engine.stream(blocks, SAMPLE_RATE, smoothing):
            typer.echo(json.dumps(update.to_dict()) if as_json else update.to_line())
            if writer:
                row = update.to_dict() | {k: round(v, 4) for k, v in update.probabilities.items()}
                writer.writerow(row)
                handle.flush()
    except KeyboardInterrupt:
        pass
    except EmodetectError as err:  # AudioError and the rest of the family
        fail(err)
    finally:
        if handle:
            handle.close()


def _first_seconds(blocks: Iterable[np.ndarray], seconds: float, rate: int = 16_000) -> Iterator[np.ndarray]:
    heard = 0
    for block in blocks:
        if heard >= seconds * rate:
            return
        heard += len(block)
        yield block
