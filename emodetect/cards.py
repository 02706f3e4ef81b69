"""Model cards, generated, one format for every bundled model.

A card is put together from what the model file says about itself (its ONNX metadata, in the
catalogue), the evaluation evidence beside it (assets/cards/<file>.json, written by
bench/cards.py from `emodetect.evaluate` reports), what holds for every model of a modality (its
intended use and known gaps: fields of its row in the modality table, emodetect.modalities), and what
holds for every model (uses to avoid, privacy) or for every model of a data set (its terms), kept
once here.
"""

from __future__ import annotations

import json
from typing import Any

from emodetect.errors import ModelNotFoundError
from emodetect.modalities import Modality, modalities
from emodetect.runtime import BundledModel

AVOID = ("Decisions about individuals: hiring, admission, credit, insurance, policing, border control, "
         "grading or health diagnosis. Inferring what someone feels inside (the models read expression, "
         "not experience). Covert use on people who have not agreed. Lie or deception detection.")
PRIVACY = ("Runs on the device with onnxruntime: nothing is downloaded at run time and nothing is sent anywhere. "
           "The library and the service keep no input: images, frames, texts and recordings are processed in "
           "memory (a video upload in a temporary folder removed when the answer is ready) and never logged.")
# The combined text CSVs (docs/training/text_shared/make_data.py) hold all four text corpora.
FOUR_TEXT_CORPORA = ("GoEmotions (Apache-2.0), dair-ai emotion (educational and research use), MELD (GPL-3.0), "
                     "ISEAR (research material of the Swiss Center for Affective Sciences).")
DATA_TERMS = {
    "fer2013new": "FER+ labels: MIT licence (Microsoft).",
    "fer2013": "FER-2013 (Goodfellow et al. 2013, Kaggle): for research.",
    "goemotions": "GoEmotions: Apache-2.0 (Google Research).",
    "joint.csv": FOUR_TEXT_CORPORA,
    "shared.csv": FOUR_TEXT_CORPORA,
    "emotion.csv": "dair-ai emotion: its authors state 'for educational and research purposes only'.",
    "ravdess": "RAVDESS: CC BY-NC-SA 4.0 (non-commercial, share-alike).",
    "emodb": "EmoDB: distributed free of charge by its authors for research; no licence text.",
}


def _row(modality: str) -> Modality | None:
    """The table row of a bundled model's modality (None for a package no longer installed)."""
    return next((m for m in modalities() if m.name == modality), None)


def _evidence(model: BundledModel) -> dict[str, Any] | None:
    path = model.path.parent / "cards" / f"{model.path.stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def find_model(name: str, modality: str | None = None) -> BundledModel:
    """A bundled model by name (`runtime.resolve_model`: a name several modalities share needs
    the modality, or a prefix such as `text:default`)."""
    from emodetect.runtime import resolve_model

    found = resolve_model(name, modality).bundled
    if found is None:
        raise ModelNotFoundError(f"{name}: a file, not a bundled model; cards are written for bundled models")
    return found


def model_card(name: str, modality: str | None = None) -> str:
    """The card of a bundled model, as Markdown."""
    model = find_model(name, modality)
    meta, evidence, row = model.metadata, _evidence(model), _row(model.modality)
    training = meta.get("training_data", "")
    terms = [t for key, t in DATA_TERMS.items() if key in training or key in meta.get("corpus", "")]
    lines = [f"# Model card: `{model.name}` ({model.modality})", "",
             f"- File: `{model.path.name}` ({meta.get('precision', 'float32')}), architecture "
             f"`{meta.get('architecture', '?')}`, emodetect {meta.get('emodetect_version', '?')}",
             f"- Labels: {', '.join(model.labels)}",
             f"- Input: `{meta.get('input', '?')}`",
             f"- Training data: {training}" + (f"; terms: {' '.join(terms)}" if terms else ""),
             f"- Validation score (model selection): {meta.get('val_score') if meta.get('val_score') not in (None, 'nan') else 'not recorded'}", "",
             "## Intended use", "", row.intended if row else "", "",
             "## Uses to avoid", "", AVOID, "",
             "## Test figures", ""]
    if meta.get("test_figures"):
        lines += [f"From the model file: {figures_text(meta['test_figures'])}", ""]
    if evidence:
        lines += [f"Measured with `{evidence['command']}` ({evidence['n']} examples, {evidence['measured_on']}): "
                  f"accuracy **{evidence['accuracy']:.4f}**, macro-F1 **{evidence['macro_f1']:.4f}**"
                  + "".join(f", {k} {v}" for k, v in evidence["extra"].items() if not isinstance(v, (dict, list))), "",
                  "| class | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {c['label']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
                  for c in evidence["per_class"]]
        if evidence.get("heads"):
            lines += ["", "Each head on its own corpus's test split, in that corpus's labels (`--head NAME`):", "",
                      "| head | data | n | accuracy | macro-F1 | command |", "| --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {name} | {h['data']} | {h['n']} | {h['accuracy']:.4f} | {h['macro_f1']:.4f} | `{h['command']}` |"
                      for name, h in evidence["heads"].items()]
        for column, table in evidence["groups"].items():
            lines += ["", f"By {column} (95% bootstrap intervals; `--group-by {column}`):", "",
                      "| group | n | accuracy | 95% interval |", "| --- | --- | --- | --- |"]
            lines += [f"| {g} | {v['n']} | {v['accuracy']:.3f} | {v['accuracy_ci95'][0]:.3f}-{v['accuracy_ci95'][1]:.3f} |"
                      for g, v in table["groups"].items()]
            lines += ["", f"Gap between the best ({table['best']}) and the worst ({table['worst']}): "
                          f"{table['accuracy_gap']:.3f}."]
    else:
        lines += ["No evaluation evidence is stored beside this model (run `python bench/cards.py`)."]
    lines += ["", "## Known gaps", ""] + [f"- {gap}" for gap in (row.gaps if row else ())]
    lines += ["", "## Privacy", "", PRIVACY, ""]
    return "\n".join(lines)


def figures_text(raw: str) -> str:
    """A model file's test figures for people: text models store them as JSON (one test set, or one
    per corpus), which printed raw was a dict; prose (face and voice models) is returned as it is."""
    import json

    try:
        figures = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(figures, dict):
        return raw
    if "accuracy" in figures:
        return _one_test_set(figures)
    return "; ".join(f"{name} {_one_test_set(f)}" for name, f in figures.items() if isinstance(f, dict))


def _one_test_set(f: dict) -> str:
    """'test: accuracy 0.9235, macro-F1 0.8864 (2,000 texts of emotion.csv)'."""
    scores = [f"{name} {f[key]:.4f}" for key, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
                                                      ("ekman_macro_f1", "macro-F1 on the Ekman groups"))
              if isinstance(f.get(key), (int, float))]
    where = f" ({f['n']:,} texts of {f['data']})" if "n" in f and "data" in f else ""
    return f"{f.get('split', 'test')}: {', '.join(scores)}{where}"
