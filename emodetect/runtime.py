"""Inference on ONNX files with onnxruntime alone: no torch on this path."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.errors import ModelError, ModelNotFoundError

ASSETS = "emodetect.assets"


@dataclass(frozen=True)
class BundledModel:
    name: str
    modality: str
    path: Path
    labels: tuple[str, ...]
    metadata: dict[str, str]


class OnnxModel:
    """An ONNX classifier: `predict(inputs)` returns an N x C probability array."""

    def __init__(self, path: str | Path, threads: int = 0):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"{self.path}: no such model file")
        self.session = _open_session(self.path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, str] = dict(meta)
        self.labels: tuple[str, ...] = _labels(self.path, meta)
        self.multilabel: bool = _flag(self.path, meta, "multilabel")
        self.input_name = self.session.get_inputs()[0].name
        # Dynamic int8 (export.quantize_dynamic_int8) scales activations over the whole call, so a
        # batch would change each example's answer: such a model is read one example at a time.
        self.one_per_call: bool = meta.get("activation_scale") == "per_call"
        self._check_outputs()

    def _check_outputs(self) -> None:
        """One dummy example through the model: a graph that does not run, answers a width other
        than its labels', or answers inf/NaN fails here, at load, naming the file (issue 34, point 9)."""
        x = _dummy_input(self.session.get_inputs()[0], self.path)
        try:
            outputs = self.predict_all(x)
        except _ort_errors() as err:
            raise ModelError(f"{self.path}: the model does not run on an input of shape {list(x.shape)} "
                             f"({type(err).__name__}: {str(err)[:200]})") from err
        first = outputs[0]
        if first.ndim != 2 or len(first) != 1:
            raise ModelError(f"{self.path}: the first output has shape {list(first.shape)} for one example, "
                             "not 1 x classes")
        if self.labels and first.shape[1] != len(self.labels):
            raise ModelError(f"{self.path}: the model answers {first.shape[1]} classes, but its metadata "
                             f"names {len(self.labels)} labels")

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The main head's probabilities (the first output)."""
        return self.predict_all(inputs)[0]

    def predict_all(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Every output: the main probabilities and, for a multi-head model, the other heads'
        side by side (their layout is in extras()["heads"]; emodetect.heads)."""
        x = np.asarray(inputs)
        if x.dtype.kind == "f" or x.dtype == np.uint8:
            x = x.astype(np.float32, copy=False)
        if not self.one_per_call or len(x) <= 1:
            outputs = self.session.run(None, {self.input_name: x})
        else:
            rows = [self.session.run(None, {self.input_name: _unpadded(row)[None]}) for row in x]
            outputs = [np.concatenate(parts) for parts in zip(*rows)]
        return self._finite(outputs)

    def _finite(self, outputs: list[np.ndarray]) -> list[np.ndarray]:
        """The outputs, refused when any value is inf or NaN: JSON would print `Infinity`, and a
        NaN probability ranks as the top label."""
        for out in outputs:
            if np.issubdtype(out.dtype, np.floating) and not np.isfinite(out).all():
                raise ModelError(f"{self.path}: the model answered {int((~np.isfinite(out)).sum())} "
                                 f"non-finite value(s) (inf or NaN): the file is damaged or not a classifier")
        return outputs

    def extras(self) -> dict[str, Any]:
        """The metadata's `extras` object; a ModelError naming the file when it is not one."""
        try:
            extras = json.loads(self.metadata.get("extras", "{}"))
        except ValueError as err:
            raise ModelError(f"{self.path}: the extras in its metadata are not JSON") from err
        if not isinstance(extras, dict):
            raise ModelError(f"{self.path}: the extras in its metadata are not a JSON object")
        return extras


def _ort_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's own exception types (each derives from Exception alone)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel", "NoSuchFile",
             "NotImplemented", "RuntimeException", "EPFail")
    return tuple(getattr(state, name) for name in names if hasattr(state, name))


def _open_session(path: Path, threads: int) -> Any:
    """An onnxruntime session on `path`; a file onnxruntime cannot read is a ModelError naming it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except (*_ort_errors(), UnicodeDecodeError) as err:
        # UnicodeDecodeError: onnxruntime decodes its own message as UTF-8, and a damaged file's
        # bytes quoted in it need not be.
        raise ModelError(f"{path}: not a usable ONNX model ({type(err).__name__}: {str(err)[:200]})") from err


def _labels(path: Path, meta: dict[str, str]) -> tuple[str, ...]:
    try:
        labels = json.loads(meta.get("labels", "[]"))
    except ValueError as err:
        raise ModelError(f"{path}: the labels in its metadata are not JSON") from err
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ModelError(f"{path}: the labels in its metadata are not a list of names")
    return tuple(labels)


def _flag(path: Path, meta: dict[str, str], key: str) -> bool:
    value = meta.get(key, "false")
    if value not in ("true", "false"):
        raise ModelError(f"{path}: {key} in its metadata is {value[:40]!r}, not true or false")
    return value == "true"


# Sizes for a dummy example's dynamic axes past the batch (a text model's token count).
DUMMY_AXIS = 16
# Values in one example a model may declare. Ours take at most 30 s of 16 kHz audio (480,000) or a
# 224 x 224 x 3 face; a file declaring 3 x 100,000 x 100,000 made the load check allocate 112 GiB
# (MemoryError, a traceback) before this bound (tests/test_fuzz_hostile.py).
MAX_EXAMPLE_VALUES = 2**24


def _dummy_input(spec: Any, path: Any = "model") -> np.ndarray:
    """One example of the model's declared input: random values in [0, 1) for floats (zeros could
    make a log-mel or a normalisation answer -inf), ones for token ids (all-padding could divide
    by zero in a mean over tokens). A declared example over MAX_EXAMPLE_VALUES is a ModelError."""
    shape = [1] + [d if isinstance(d, int) and d > 0 else DUMMY_AXIS for d in spec.shape[1:]]
    if math.prod(shape) > MAX_EXAMPLE_VALUES:
        raise ModelError(f"{path}: its input declares {' x '.join(map(str, shape[1:]))} values per example, "
                         f"more than {MAX_EXAMPLE_VALUES:,}: not a model emodetect can run")
    if "int" in spec.type:
        return np.ones(shape, dtype=np.int64 if "int64" in spec.type else np.int32)
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def _unpadded(row: np.ndarray) -> np.ndarray:
    """A row of token ids without its trailing padding (id 0 in every text model), as a text read
    alone is fed; other inputs unchanged."""
    if row.dtype.kind not in "iu" or row.ndim != 1:
        return row
    used = np.flatnonzero(row)
    return row[:used[-1] + 1] if len(used) else row[:1]


def assets_dir() -> Path:
    return Path(str(resources.files(ASSETS)))


# The bundled models' names, labels and metadata, copied from the ONNX files by write_catalog():
# listing them, or finding one by name, then opens no inference session.
CATALOG = "models.json"
CATALOG_LEAVES_OUT = ("extras",)
# Assets that are ONNX files but not emotion models: the face detector's weights, in this folder.
DETECTORS_DIR = "detectors"
ENSEMBLE_SUFFIX = ".ensemble.json"  # an ensemble of bundled models: a file naming them, no ONNX of its own


def _model_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.onnx") if p.relative_to(root).parts[0] != DETECTORS_DIR)


def read_catalog_entries(root: Path) -> list[dict[str, Any]]:
    """Catalogue entries made from the ONNX files themselves (opens each one)."""
    entries = []
    for path in _model_files(root):
        model = OnnxModel(path, threads=1)
        meta = model.metadata
        # `extras` (a text model's vocabulary: hundreds of KB) stays in the ONNX file, read by
        # OnnxModel.extras() once the model is opened.
        entries.append({"name": meta.get("name", path.stem), "modality": meta.get("modality", "vision"),
                        "file": path.relative_to(root).as_posix(), "labels": list(model.labels),
                        "metadata": {k: v for k, v in meta.items() if k not in CATALOG_LEAVES_OUT}})
    for path in sorted(root.glob(f"*{ENSEMBLE_SUFFIX}")):  # text ensembles (emodetect.text.ensemble)
        spec = json.loads(path.read_text(encoding="utf-8"))
        members = ", ".join(m["model"] for m in spec["members"])
        entries.append({"name": spec["name"], "modality": spec.get("modality", "text"), "file": path.name,
                        "labels": spec["labels"], "metadata": {**spec.get("metadata", {}), "members": members}})
    return entries


def write_catalog(root: Path | None = None) -> Path:
    """Rewrite assets/models.json from the bundled ONNX files; run after adding or changing one:
    python -c "from emodetect.runtime import write_catalog; write_catalog()"."""
    root = root or assets_dir()
    path = root / CATALOG
    path.write_text(json.dumps(read_catalog_entries(root), indent=1, sort_keys=True) + "\n")
    return path


def _asset_roots() -> list[Path]:
    """The asset packages of every modality (built-in ones share emodetect.assets)."""
    from emodetect.modalities import modalities

    packages = dict.fromkeys(m.assets for m in modalities())
    return [Path(str(resources.files(package))) for package in packages]


def bundled_models() -> list[BundledModel]:
    """Every ONNX model shipped in the package (and in packages that add a modality), from the
    catalogues: no model is opened."""
    found = []
    for root in _asset_roots():
        if (root / CATALOG).is_file():
            entries = json.loads((root / CATALOG).read_text())
            found += [BundledModel(e["name"], e["modality"], root / e["file"], tuple(e["labels"]),
                                   e["metadata"]) for e in entries]
    return found


# What a model file is, from its name: an ONNX model, a training checkpoint or an ensemble file.
CHECKPOINT_SUFFIXES = (".pt", ".pth")


@dataclass(frozen=True)
class ModelReference:
    """What a model reference names: a file or a bundled model, its kind and its modality."""

    reference: str  # as given ("default", "text:default", "runs/a/best.pt", ...)
    kind: str  # "onnx", "checkpoint" or "ensemble"
    path: Path
    modality: str | None  # None: a file, which says its own modality once opened
    bundled: BundledModel | None = field(default=None, repr=False)  # the catalogue entry of a bundled model

    @property
    def name(self) -> str:
        return self.bundled.name if self.bundled else self.path.stem


def _is_file_name(path: Path) -> bool:
    """Whether `path` names something on disk; a name no file system takes (too long, a NUL) does not."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def resolve_model(reference: str | Path | None, modality: str | None = None) -> ModelReference:
    """The one reading of a model reference, used by every stage (the pipelines, evaluate, export
    calibration, the cards, the service):

    - None: the default model of `modality` (which must then be given);
    - a file that exists, or a name ending in .onnx, .pt/.pth or .ensemble.json: that file (its
      modality is `modality`, else what the file says when it is opened);
    - MODALITY:NAME (`text:default`): the bundled model NAME of that modality;
    - NAME: the bundled model of that name (or file stem). A name several modalities bundle
      ("default") needs `modality` or a prefix: it is refused, naming the choices, never guessed.

    Nothing is opened here; a bundled name unknown to the catalogue is a KeyError listing the
    bundled names."""
    from emodetect.errors import InputError
    from emodetect.modalities import get_modality, modality_names

    if modality is not None:
        modality = get_modality(modality).name
    if reference is None:
        if modality is None:
            raise InputError("no model named and no modality given: name a model or a modality", "invalid")
        reference = get_modality(modality).default_model
    text = str(reference)
    path = Path(reference)
    if text.endswith(ENSEMBLE_SUFFIX) or path.suffix in (".onnx", *CHECKPOINT_SUFFIXES) or _is_file_name(path):
        kind = ("ensemble" if text.endswith(ENSEMBLE_SUFFIX) else
                "checkpoint" if path.suffix in CHECKPOINT_SUFFIXES else "onnx")
        return ModelReference(text, kind, path, modality)
    prefix, sep, rest = text.partition(":")
    if sep and prefix in modality_names():
        if modality is not None and modality != prefix:
            raise InputError(f"model {text!r} is a {prefix} model, not {modality}", "invalid")
        modality, text = prefix, rest
    found = _bundled_named(text, modality)
    owners = [name for name in modality_names() if any(m.modality == name for m in found)]
    if not found:
        if modality is not None:
            names = sorted(m.name for m in bundled_models() if m.modality == modality)
            raise ModelNotFoundError(f"no bundled {modality} model named {text!r}; bundled: {names}")
        raise ModelNotFoundError(f"{reference}: no such file, and no bundled model has that name "
                       f"(bundled: {sorted({m.name for m in bundled_models()})})")
    if len(owners) > 1:
        choices = ", ".join(f"{owner}:{text}" for owner in owners)
        raise InputError(f"{text!r} names a bundled model of each of {', '.join(owners)}: say which "
                         f"({choices}, or give the modality)", "ambiguous_model")
    model = found[0]
    kind = "ensemble" if model.path.name.endswith(ENSEMBLE_SUFFIX) else "onnx"
    return ModelReference(str(reference), kind, model.path, model.modality, model)


def _bundled_named(name: str, modality: str | None) -> list[BundledModel]:
    """The bundled models called `name` (or with that file stem), of `modality` when given."""
    return [m for m in bundled_models()
            if name in (m.name, m.path.stem) and (modality is None or m.modality == modality)]


def is_ensemble(model: str | Path | None) -> bool:
    """Whether `model` (a bundled name or a path) is an ensemble file rather than an ONNX model."""
    if model is None:
        return False
    return str(model).endswith(ENSEMBLE_SUFFIX) or any(
        m.path.name.endswith(ENSEMBLE_SUFFIX) for m in _bundled_named(str(model), None))


def bundled_model_path(name: str | None = None, modality: str = "vision") -> Path:
    """Path of a bundled model by name ("default", "realtime-int8", ...) for a modality; None is
    the modality's default model."""
    from emodetect.modalities import get_modality

    name = name or get_modality(modality).default_model
    found = _bundled_named(name, modality)
    if not found:
        names = sorted(m.name for m in bundled_models() if m.modality == modality)
        raise ModelNotFoundError(f"no bundled {modality} model named {name!r}; bundled: {names}")
    return found[0].path


def modality_of(model: str | Path | None, modality: str | None = None) -> str | None:
    """The modality `resolve_model` finds for a reference (None for a file, which says its own)."""
    return resolve_model(model, modality).modality


def model_owners(model: str | Path) -> list[str]:
    """The modalities, in the table's order, that bundle a model of this name ("default": several)."""
    from emodetect.modalities import modality_names

    owners = {m.modality for m in _bundled_named(str(model), None)}
    return [name for name in modality_names() if name in owners]


def load_model(model: str | Path | None = None, modality: str = "vision", threads: int = 0) -> OnnxModel:
    """A bundled model by name (None: the modality's default), or any ONNX file by path
    (`resolve_model` reads the reference)."""
    return OnnxModel(resolve_model(model, modality).path, threads)
