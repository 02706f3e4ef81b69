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
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

from emodetect.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from emodetect.checkpoint import Checkpoint
    from emodetect.config import TrainConfig
    from emodetect.train import TrainingData

ENTRY_POINT_GROUP = "emodetect.modalities"


@dataclass
class EvaluationData:
    """What a data module hands `evaluate`: model inputs, their truth, and where they come from."""

    inputs: Any  # N model inputs (numpy; a text ensemble, which tokenises its own way, gets the texts)
    y_true: "np.ndarray"  # N class indices, or N x C multi-hot rows (multi-label data)
    labels: Sequence[str]  # the data's label names, in the order y_true indexes them
    source: str  # file and split, for the report
    # The example each row is part of (a clip's windows), or None: evaluate then scores each
    # example once, on the mean of its rows' probabilities.
    example: "np.ndarray | None" = None


@runtime_checkable
class ModalityData(Protocol):
    """The data module a `Modality` row names: what `train`, `evaluate`, `export` and the
    shared-name lookup call. A module may add `export_extras(checkpoint, model) -> dict` (extras
    worked out at export, e.g. text thresholds tuned on validation; such checkpoints are then not
    averaged by export)."""

    # evaluate passes the opened model to evaluation_data as `model=` (text: its vocabulary
    # encodes the data)
    EVALUATION_NEEDS_MODEL: bool

    def recognises(self, data: Path) -> bool:
        """Whether `data` is of this modality, from its names and header alone."""

    def training_data(self, cfg: "TrainConfig") -> "TrainingData":
        """The train and validation splits as the training loop wants them."""

    def evaluation_data(self, data: str | Path, split: str | None, **options: Any) -> EvaluationData:
        """One split as `evaluate` scores it."""

    def evaluation_groups(self, data: str | Path, split: str | None, column: str, **options: Any) -> "np.ndarray":
        """The value of `column` for each row evaluation_data gives (evaluate --group-by)."""

    def export_example(self, checkpoint: "Checkpoint") -> tuple[Any, dict[str, Any]]:
        """An example input batch (torch) and the input spec written into the ONNX metadata."""


# The Protocol's members, read from it (its annotations, then its functions, in their order).
CONTRACT = (*ModalityData.__annotations__,
            *(name for name, value in vars(ModalityData).items() if callable(value) and not name.startswith("_")))


def missing_members(module: Any) -> list[str]:
    """The ModalityData members a module lacks."""
    return [name for name in CONTRACT if not hasattr(module, name)]


@dataclass(frozen=True)
class BatchInputs:
    """What `emodetect batch` reads of a modality and what scores it (emodetect.distributed)."""

    kind: str  # the inputs' name in batch's report: "images", "texts", "audio"
    suffixes: str  # "module:NAME" of the file suffixes read (lower case, with the dot), defined once there
    # "module:Class" run on each Ray actor: Class(model, **options) opens the model once, and
    # .score(batch) takes a dict of numpy columns ("source" and the listing's others) and returns a
    # pyarrow Table with "source" and "error" columns, of one schema for every batch (emodetect.arrow).
    worker: str
    # "module:function" (path, column) -> rows, each with its "source": a file of these suffixes is
    # listed into rows (the texts of a CSV). None: each file of these suffixes found in a folder or
    # glob is a row: "source" (its path), "path" (its bytes) and "error" ("", or why it cannot be read).
    rows: str | None = None
    options: tuple[str, ...] = ()  # the batch options its worker takes besides the model ("detector")

    def suffix_set(self) -> frozenset[str]:
        return frozenset(load_object(self.suffixes))


@dataclass(frozen=True)
class Modality:
    """What the shared stages need to know about one modality."""

    name: str  # "vision", "text", "voice": the --modality value and the ONNX metadata's modality
    summary: str  # one line for help texts and docs
    data: str  # module honouring ModalityData (training, evaluation and export data)
    architectures: str  # module whose @register_model functions are this modality's networks (torch)
    pipeline: str  # "module:Class", the inference class of the Python API
    commands: tuple[str, ...] = ()  # "module:function" typer commands, each named after its function
    router: str | None = None  # service module with SERVICE, router and optionally load(config)
    assets: str = "emodetect.assets"  # package holding its ONNX models and their models.json
    default_model: str = "default"  # bundled model used when none is named
    mirror_tta: bool = False  # inputs are images that stay valid mirrored (export's flip/shift TTA)
    # The `emodetect serve` option naming the model its router loads ("" is "<name>_model"): a
    # ServeConfig field for the built-in rows; for another package's row, a flag all the same, its
    # value in ServeConfig.models (ServeConfig.model_for reads either).
    serve_option: str = ""
    # Its model cards (emodetect.cards), said once for every model of the modality: what the models
    # are for, and what is known to be weak.
    intended: str = ""
    gaps: tuple[str, ...] = ()
    # The TrainConfig fields only some modalities read, that this one reads; a run of another
    # modality that sets one is refused (check_train_options) instead of silently ignoring it.
    train_options: tuple[str, ...] = ()
    batch: BatchInputs | None = None  # what `emodetect batch` reads of it; None: nothing

    def data_module(self) -> ModuleType:
        """The data module, checked against ModalityData (a missing member is named here, not
        as an AttributeError in the middle of a stage)."""
        module = importlib.import_module(self.data)
        missing = missing_members(module)
        if missing:
            raise TypeError(f"modality {self.name!r}: its data module {self.data} lacks {', '.join(missing)} "
                            "(emodetect.modalities.ModalityData)")
        return module

    def pipeline_class(self) -> Any:
        return load_object(self.pipeline)

    @property
    def model_option(self) -> str:
        """The `emodetect serve` option (ServeConfig field) naming this modality's model: "text_model"
        is --text-model."""
        return self.serve_option or f"{self.name}_model"


BUILTIN: tuple[Modality, ...] = (
    Modality(
        name="vision", summary="faces in photos, videos and camera streams",
        data="emodetect.vision.data", architectures="emodetect.vision.models",
        pipeline="emodetect.vision.pipeline:FaceEmotion",
        commands=("emodetect.vision.cli:detect", "emodetect.vision.cli:explain", "emodetect.vision.cli:predict",
                  "emodetect.vision.cli:webcam"),
        router="emodetect.serve.routes_vision", mirror_tta=True,
        serve_option="model",  # the face model's option is the plain --model: it came first
        intended="Reading the apparent facial expression of consenting people in photos and video, for research, "
                 "user studies, media analysis and accessibility aids; as one signal among others.",
        gaps=("Trained on FER-2013: 48x48 grey web faces, mostly frontal, labels from one annotator each "
              "(human agreement about 65%); disgust is rare and the weakest class.",
              "Accuracy differs between populations. On expression data sets of other populations, kept outside "
              "this project, `default` scored (48x48 crops framed like FER-2013): CK+ peak frames (mostly "
              "Euro-American adults) 0.807, JAFFE (Japanese women) 0.545, a Taiwanese performers' corpus 0.559, "
              "Yale faces (15 subjects) 0.695: a gap of 0.26 between the best and the worst population.",
              "FER-2013 has no age, gender or skin-tone labels, so the gaps between such groups are not measured "
              "here; `emodetect evaluate --group-by COLUMN` measures them on data that has them."),
        train_options=("ferplus", "soft_labels", "pretrained", "teacher", "distill"),
        batch=BatchInputs("images", "emodetect.vision.images:IMAGE_SUFFIXES", "emodetect.vision.workers:FaceWorker",
                          options=("detector",)),
    ),
    Modality(
        name="text", summary="English texts: posts, reviews, chat, survey answers",
        data="emodetect.text.data", architectures="emodetect.text.models",
        pipeline="emodetect.text.pipeline:TextEmotion", commands=("emodetect.text.cli:text", "emodetect.text.cli:ensemble"),
        router="emodetect.serve.routes_text", serve_option="text_model",
        intended="Reading the emotions expressed in English texts (posts, reviews, chat, survey answers) in "
                 "aggregate: shares over many texts, trends, routing for a human to read.",
        gaps=("English only. A model trained on one corpus reads the others poorly (python bench/text_corpora.py, "
              "shared labels, accuracy): `goemotions` 0.441 on MELD (TV dialogue) and 0.172 on ISEAR (described "
              "situations), `dair-emotion` 0.129 on MELD (it has no neutral) and 0.397 on ISEAR; `default` and "
              "`shared`, trained on all four corpora, are in their domain on each of them and still untested on a "
              "fifth. The default's heads trail each corpus's own model there (GoEmotions macro-F1 0.4571 against "
              "0.4633, dair accuracy 0.918 against 0.9235).",
              "Sarcasm, negation over long spans and context outside the text are not read."),
        train_options=("embeddings", "pretrained", "teacher", "distill", "distill_heads", "head_loss"),
        batch=BatchInputs("texts", "emodetect.text.workers:SUFFIXES", "emodetect.text.workers:TextWorker",
                          rows="emodetect.text.workers:text_rows"),
    ),
    Modality(
        name="voice", summary="speech recordings",
        data="emodetect.voice.data", architectures="emodetect.voice.models",
        pipeline="emodetect.voice.pipeline:VoiceEmotion", commands=("emodetect.voice.cli:voice", "emodetect.voice.cli:listen"),
        router="emodetect.serve.routes_voice", serve_option="voice_model",
        intended="Reading the emotion in the tone of recorded speech of consenting speakers, for research and "
                 "aggregate analytics; as one signal among others.",
        gaps=("Trained on acted speech (RAVDESS: 24 North American actors; EmoDB: 10 German speakers; both "
              "models on both); spontaneous, accented or synthetic speech is read less well. `default` reads "
              "through Whisper tiny.en's encoder (OpenAI, MIT licence; pre-trained on 680,000 hours of web audio, "
              "its English part; frozen here): on telephone, noisy and reverberant copies of the test clips "
              "(python bench/voice_corpora.py) it keeps 0.68-0.69 on RAVDESS and 0.80-0.87 on EmoDB, where `fast` "
              "(a CNN trained from scratch) keeps 0.48-0.61 and 0.64-0.67. Neither stores or transcribes audio: "
              "the words of speech are the separate speech extra's.",
              "Figures differ between genders and between held-out speakers: see the tables under Test figures."),
        train_options=("wave_copies",),
        batch=BatchInputs("audio", "emodetect.voice.features:AUDIO_SUFFIXES", "emodetect.voice.workers:VoiceWorker"),
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


def check_train_options(cfg: "TrainConfig", modality: Modality) -> None:
    """Refuse a TrainConfig field that only other modalities read, set on a run of `modality`."""
    from emodetect.config import foreign_options

    specific = dict.fromkeys(option for m in modalities() for option in m.train_options)
    foreign = foreign_options(cfg, modality.train_options, specific)
    if foreign:
        readers = {name: [m.name for m in modalities() if name in m.train_options] for name in foreign}
        raise InputError("; ".join(f"--{name.replace('_', '-')} is read by {' and '.join(readers[name])} training, "
                                   f"not {modality.name}" for name in foreign), "invalid")


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
