"""The modality table: face images, text and voice, each declared once.

Training, evaluation, export, the model registry, `emodetect models`, the command line and the
service read this table and name no modality themselves. A modality is a subpackage with the same
stages (data, models, pipeline, cli, a service router) plus one `Modality` row: the built-in rows
are `BUILTIN`; any installed package adds one through the `emodetect.modalities` entry point
group, e.g. in its pyproject.toml:

    [project.entry-points."emodetect.modalities"]
    toy = "toy_modality:MODALITY"

Everything here is a dotted name, imported only when used, so reading the table imports no
modality (and no torch).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from emodetect.errors import InputError

ENTRY_POINT_GROUP = "emodetect.modalities"


@dataclass(frozen=True)
class Modality:
    """What the shared stages need to know about one modality."""

    name: str  # "vision", "text", "voice": the --modality value and the ONNX metadata's modality
    summary: str  # one line for help texts and docs
    # Module with training_data(cfg) -> TrainingData, evaluation_data(data, split, **options),
    # export_example(state) -> (example tensor, input spec), and optionally export_extras(state,
    # model), EVALUATION_NEEDS_MODEL (the model's vocabulary encodes the data) and
    # recognises(data) -> bool (whether data is of this modality, from its names and header alone:
    # how `evaluate` picks among bundled models that share a name).
    data: str
    architectures: str  # module whose @register_model functions are this modality's networks (torch)
    pipeline: str  # "module:Class", the inference class of the Python API
    commands: tuple[str, ...] = ()  # "module:function" typer commands, each named after its function
    router: str | None = None  # service module with SERVICE, router and optionally load(config)
    assets: str = "emodetect.assets"  # package holding its ONNX models and their models.json
    default_model: str = "default"  # bundled model used when none is named
    mirror_tta: bool = False  # inputs are images that stay valid mirrored (export's flip/shift TTA)

    def data_module(self) -> ModuleType:
        return importlib.import_module(self.data)

    def pipeline_class(self) -> Any:
        return load_object(self.pipeline)


BUILTIN: tuple[Modality, ...] = (
    Modality(
        name="vision", summary="faces in photos, videos and camera streams",
        data="emodetect.vision.data", architectures="emodetect.vision.models",
        pipeline="emodetect.vision.pipeline:EmotionDetector",
        commands=("emodetect.vision.cli:detect", "emodetect.vision.cli:explain", "emodetect.vision.cli:predict",
                  "emodetect.vision.cli:video", "emodetect.vision.cli:webcam"),
        router="emodetect.serve.routes_vision", mirror_tta=True,
    ),
    Modality(
        name="text", summary="English texts: posts, reviews, chat, survey answers",
        data="emodetect.text.data", architectures="emodetect.text.models",
        pipeline="emodetect.text.pipeline:TextEmotion", commands=("emodetect.text.cli:text", "emodetect.text.cli:ensemble"),
        router="emodetect.serve.routes_text",
    ),
    Modality(
        name="voice", summary="speech recordings",
        data="emodetect.voice.data", architectures="emodetect.voice.models",
        pipeline="emodetect.voice.pipeline:VoiceEmotion", commands=("emodetect.voice.cli:voice", "emodetect.voice.cli:listen"),
        router="emodetect.serve.routes_voice",
    ),
)


def load_object(reference: str) -> Any:
    """The object a "module:attribute" reference names."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def modalities() -> tuple[Modality, ...]:
    """The built-in modalities, then those installed packages register, in a stable order."""
    found = list(BUILTIN)
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        modality = entry.load()
        if not isinstance(modality, Modality):
            raise TypeError(f"entry point {entry.value!r} ({ENTRY_POINT_GROUP}) is not a Modality")
        if any(m.name == modality.name for m in found):
            raise ValueError(f"modality {modality.name!r} is registered twice (again by {entry.value!r})")
        found.append(modality)
    return tuple(found)


def modality_names() -> tuple[str, ...]:
    return tuple(m.name for m in modalities())


def get_modality(name: str) -> Modality:
    """The table row of a modality, or an error that lists the known ones."""
    for modality in modalities():
        if modality.name == name:
            return modality
    raise InputError(f"unknown modality {name!r}; known: {', '.join(modality_names())}", "unknown_modality")


def data_modality(data: str | Path, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The one modality of `candidates` whose data module recognises `data`, else None."""
    claims = [name for name in candidates
              if getattr(get_modality(name).data_module(), "recognises", lambda _: False)(Path(data))]
    return claims[0] if len(claims) == 1 else None


def csv_header(path: str | Path) -> list[str]:
    """The header row of a CSV file (plain or .gz), stripped; [] when there is none or it cannot be
    read: data modules recognise their files by their columns."""
    import csv
    import gzip

    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            return [cell.strip() for cell in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def modality_help() -> str:
    """'vision (faces in ...), text (...), voice (...)', for the flags that take a modality."""
    return ", ".join(f"{m.name} ({m.summary})" for m in modalities())
