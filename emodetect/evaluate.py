"""Metrics and reports: accuracy, per-class precision/recall/F1, macro-F1, confusion matrix.

One `EvalReport` serves every modality; it writes a JSON for programs, Markdown and HTML for
people, and the confusion matrix as a PNG.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.errors import DataError
from emodetect.heads import Segment, find, segments
# The metrics live in emodetect.metrics; these names stay importable from here.
from emodetect.metrics import (SHRINKS, THRESHOLD_GRID, cross_fitted_thresholds, f1_table,  # noqa: F401
                               macro_f1, multilabel_predictions, tune_thresholds)


# report.html's look: readable type, ruled tables with figures aligned, the charts fitting the page.
REPORT_CSS = (
    "body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d232b;max-width:60rem;"
    "margin:2rem auto;padding:0 1rem}h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;"
    "margin-top:2rem}table{border-collapse:collapse;margin:.75rem 0;font-variant-numeric:tabular-nums}"
    "td,th{padding:.3rem .7rem;text-align:right;border-bottom:1px solid #dde2e8}th{background:#f3f5f8;"
    "font-weight:600}td:first-child,th:first-child{text-align:left}img{max-width:100%;height:auto}"
)


@dataclass
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvalReport:
    model: str
    data: str
    n: int
    accuracy: float
    macro_f1: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]  # rows: true label, columns: predicted label
    labels: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        lines = [
            f"# Evaluation of `{self.model}`", "",
            f"Data: `{self.data}` ({self.n} examples)", "",
            f"- accuracy: **{self.accuracy:.4f}**",
            f"- macro-F1: **{self.macro_f1:.4f}**{self._macro_note()}",
        ] + [f"- {k}: {v}" for k, v in self.extra.items() if k not in ("groups", "macro_f1_classes")] + [
            "", "| class | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {c.label} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.support} |"
                  for c in self.per_class]
        lines += ["", "Confusion matrix (rows: true, columns: predicted)", "",
                  "| true \\ pred | " + " | ".join(self.labels) + " |",
                  "| --- |" + " --- |" * len(self.labels)]
        lines += [f"| {label} | " + " | ".join(str(v) for v in row) + " |"
                  for label, row in zip(self.labels, self.confusion)]
        if "groups" in self.extra:
            lines += ["", *group_markdown(self.extra["groups"])]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """A page that stands alone: styled inline, titled with the model's name (issue 32: the
        tab read "emodetect evaluation" and the heading the model's install path)."""
        rows = "".join(
            f"<tr><td>{html.escape(c.label)}</td><td>{c.precision:.3f}</td><td>{c.recall:.3f}</td>"
            f"<td>{c.f1:.3f}</td><td>{c.support}</td></tr>" for c in self.per_class)
        head = "".join(f"<th>{html.escape(label)}</th>" for label in self.labels)
        matrix = "".join(
            f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
            for label, row in zip(self.labels, self.confusion))
        return (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.model)}: evaluation (emodetect)</title><style>{REPORT_CSS}</style></head><body>"
            f"<h1>Evaluation of {html.escape(self.model)}</h1>"
            f"<p>Data: {html.escape(self.data)} ({self.n} examples)</p>"
            f"<p>accuracy <b>{self.accuracy:.4f}</b>, macro-F1 <b>{self.macro_f1:.4f}</b>{html.escape(self._macro_note())}</p>"
            "<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
            f"{rows}</table><h2>Confusion matrix</h2><p>rows: true, columns: predicted</p>"
            f"<table><tr><th></th>{head}</tr>{matrix}</table>"
            "<img src='confusion.png' alt='confusion matrix'>"
            + (group_html(self.extra["groups"]) if "groups" in self.extra else "")
            + "</body></html>"
        )

    def _macro_note(self) -> str:
        """Which classes macro-F1 averages, so that a reader can check it against the table."""
        counted = self.extra.get("macro_f1_classes")
        return "" if counted is None else f" (over the {counted} classes true or predicted, as scikit-learn counts)"

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write report.json, report.md, report.html and confusion.png into out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "report.json", "markdown": out / "report.md",
                 "html": out / "report.html", "confusion": out / "confusion.png"}
        paths["json"].write_text(self.to_json())
        paths["markdown"].write_text(self.to_markdown())
        paths["html"].write_text(self.to_html())
        plot_confusion(np.array(self.confusion), self.labels, paths["confusion"])
        if "groups" in self.extra:
            paths["groups"] = plot_groups(self.extra["groups"], out / "groups.png")
        return paths


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str] | tuple[str, ...],
                          model: str = "", data: str = "") -> EvalReport:
    """Single-label metrics from true and predicted class indices."""
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true), np.asarray(y_pred)), 1)
    one_hot = np.eye(k, dtype=bool)
    precision, recall, f1, actual = f1_table(one_hot[np.asarray(y_true)], one_hot[np.asarray(y_pred)])
    tp = np.diag(confusion).astype(float)
    per_class = [ClassMetrics(labels[i], float(precision[i]), float(recall[i]), float(f1[i]),
                              int(actual[i])) for i in range(k)]
    present = actual > 0
    # Unweighted accuracy (mean recall) is what speech-emotion papers quote: classes are unbalanced.
    unweighted = round(float(recall[present].mean()), 4) if present.any() else 0.0
    macro, counted = macro_f1(one_hot[np.asarray(y_true)], one_hot[np.asarray(y_pred)], f1)
    return EvalReport(model, data, int(confusion.sum()), float(tp.sum() / max(confusion.sum(), 1)),
                      macro, per_class, confusion.tolist(), list(labels),
                      {"unweighted_accuracy": unweighted, "macro_f1_classes": counted})


def plot_confusion(confusion: np.ndarray, labels: list[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    # A Figure of its own, not pyplot: no backend switch, no global figure state (a notebook
    # user keeps their backend).
    from matplotlib.figure import Figure

    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    size = max(4.0, 0.7 * len(labels) + 2)
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.subplots()
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{confusion[i, j]}\n{rates[i, j]:.0%}", ha="center", va="center",
                    fontsize=7, color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


def multilabel_report(y_true: np.ndarray, probs: np.ndarray, labels: list[str] | tuple[str, ...],
                      thresholds: np.ndarray | list[float] | float = 0.5,
                      groups: dict[str, list[str]] | None = None, model: str = "",
                      data: str = "") -> EvalReport:
    """Multi-label metrics: per-label P/R/F1, macro-F1 over labels, exact-match accuracy, micro-F1.

    `groups` (e.g. GoEmotions -> Ekman) adds group-level macro-F1: a group is true (predicted) when
    any of its labels is. The confusion matrix covers rows with exactly one true label against
    the top predicted label, since a multi-label row has no single true class.
    """
    truth = np.asarray(y_true) > 0.5
    pred = multilabel_predictions(probs, thresholds)
    precision, recall, f1, actual = f1_table(truth, pred)
    per_class = [ClassMetrics(labels[i], float(precision[i]), float(recall[i]), float(f1[i]),
                              int(actual[i])) for i in range(len(labels))]
    tp = (pred & truth).sum()
    extra: dict[str, Any] = {
        "multilabel": True,
        "accuracy_meaning": "exact match of the whole label set",
        "micro_f1": round(float(2 * tp / max(pred.sum() + truth.sum(), 1)), 4),
    }
    if groups:
        index = {name: i for i, name in enumerate(labels)}
        members = [[index[m] for m in names] for names in groups.values()]
        g_truth = np.stack([truth[:, m].any(1) for m in members], 1)
        g_pred = np.stack([pred[:, m].any(1) for m in members], 1)
        _, _, g_f1, _ = f1_table(g_truth, g_pred)
        extra["group_macro_f1"] = round(float(g_f1.mean()), 4)
        extra["group_f1"] = {name: round(float(v), 4) for name, v in zip(groups, g_f1)}
    single = truth.sum(1) == 1
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth[single].argmax(1), probs[single].argmax(1)), 1)
    macro, extra["macro_f1_classes"] = macro_f1(truth, pred, f1)
    return EvalReport(model, data, int(len(truth)), float((pred == truth).all(1).mean()), macro, per_class,
                      confusion.tolist(), list(labels), extra)


def open_model(model: str | Path, modality: str | None = None, data: str | Path | None = None) -> tuple[str, Any]:
    """The model's modality, and the model read once for the whole evaluation: a Checkpoint, an
    OnnxModel or a text ensemble. What `model` names is `runtime.resolve_model`'s answer; a bundled
    name several modalities share follows `data` (`shared_name_modality`); a file's modality is
    what it says about itself, unless `modality` is given."""
    from emodetect.checkpoint import Checkpoint
    from emodetect.modalities import get_modality
    from emodetect.runtime import OnnxModel, resolve_model

    ref = resolve_model(model, modality or shared_name_modality(str(model), data))
    if ref.kind == "ensemble":  # several text models averaged (emodetect.text.ensemble): scored from the texts
        from emodetect.text.pipeline import TextEmotion

        return ref.modality or "text", TextEmotion(model)
    if ref.kind == "checkpoint":
        checkpoint = Checkpoint.read(ref.path)
        return get_modality(modality or checkpoint.modality).name, checkpoint
    onnx_model = OnnxModel(ref.path)
    return get_modality(modality or ref.modality or onnx_model.metadata.get("modality", "vision")).name, onnx_model


def shared_name_modality(model: str, data: str | Path | None) -> str | None:
    """For a bundled name several modalities share ("default"), the one `data` names by its columns
    or files; an error saying which --modality to add when the data does not say. None for a name
    one modality has. Guessing the first would score text against the face model."""
    from emodetect.errors import DataError, InputError
    from emodetect.modalities import data_modality
    from emodetect.runtime import model_owners

    owners = model_owners(model)
    if len(owners) < 2:
        return None
    if data is not None and not all(Path(part).exists() for part in str(data).split("+")):
        raise DataError(f"{data}: no such file or folder")
    found = data_modality(data, owners) if data is not None else None
    if found is None:
        choices = " or ".join(f"--modality {name}" for name in owners)
        raise InputError(f"{model!r} names a bundled model of each of {', '.join(owners)}, and "
                         f"{data} does not say which (columns, files): add {choices}", "ambiguous_model")
    return found


def _model_extras(opened: Any) -> dict[str, Any]:
    """The `extras` a model carries (thresholds, label groups): checkpoint or ONNX metadata."""
    from emodetect.checkpoint import Checkpoint

    return dict(opened.extras) if isinstance(opened, Checkpoint) else opened.extras()


def model_head(opened: Any, head: str | None) -> tuple[Segment, dict[str, Any]]:
    """The head of an opened model that `head` names (None: the main one), and its extras
    (thresholds) from the model's metadata."""
    extras = _model_extras(opened)
    labels, multilabel = opened.labels, opened.multilabel
    specs = extras.get("heads", [])
    segs = segments(labels, bool(multilabel), specs)
    seg = find(segs, head or "")
    return seg, (extras if not seg.name else specs[segs.index(seg) - 1])


def predict_probabilities(model: str | Path, inputs: np.ndarray, opened: Any,
                          seg: Segment) -> tuple[np.ndarray, list[str], str]:
    """Probabilities of one head (`model_head`) from an opened checkpoint (torch) or ONNX model
    (onnxruntime), the head's labels and the name reports give the model."""
    from emodetect.checkpoint import Checkpoint

    if isinstance(opened, Checkpoint):
        import torch

        from emodetect.train import predict_logits

        logits = predict_logits(opened.build_model(), inputs, bf16=False)
        probs = logits[:, seg.start:seg.stop]
        probs = torch.sigmoid(probs) if seg.multilabel else probs.softmax(1)
        return probs.numpy(), list(seg.labels), str(model)
    if hasattr(opened, "members"):  # a text ensemble reads the texts themselves
        probs = opened.probabilities(list(inputs))[:, seg.start:seg.stop]
        return probs, list(seg.labels), f"{opened.name}" + (f" head {seg.name}" if seg.name else "")
    if not seg.name:
        probs = np.concatenate([opened.predict(inputs[i:i + 256]) for i in range(0, len(inputs), 256)])
        return probs, list(opened.labels), _model_name(opened)
    main = len(opened.labels)  # the second output holds the other heads, after the main labels
    probs = np.concatenate([opened.predict_all(inputs[i:i + 256])[1] for i in range(0, len(inputs), 256)])
    return probs[:, seg.start - main:seg.stop - main], list(seg.labels), f"{_model_name(opened)} head {seg.name}"


def _model_name(opened: Any) -> str:
    """What a report calls an ONNX model: the name in its metadata (a bundled model's, "default"),
    else its file name; never the install path."""
    return str(opened.metadata.get("name") or opened.path.name)


def pool_by_example(probs: np.ndarray, y_true: np.ndarray, example: np.ndarray,
                    groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean probabilities and the label (and group, when given) of each example, from rows tagged
    with their example."""
    ids, inverse = np.unique(example, return_inverse=True)
    sums = np.zeros((len(ids), probs.shape[1]))
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(ids))[:, None]
    first = np.zeros(len(ids), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]
    if groups is not None:
        return sums / counts, y_true[first], np.asarray(groups)[first]
    return sums / counts, y_true[first]


def evaluate(model: str | Path, data: str | Path, split: str | None = "test",
             modality: str | None = None, out_dir: str | Path | None = None, group_by: str | None = None,
             head: str | None = None, **data_options: Any) -> EvalReport:
    """Score a model on a dataset split; write the reports when out_dir is given. The modality
    follows from the model (a file's metadata, a bundled name) unless given. `group_by` names a
    column of the data (subject, corpus, gender, ...): the report then has each group's figures,
    with bootstrap 95% intervals, and the gap between the best and the worst group. `head` scores
    one head of a multi-head model (the joint text model's `goemotions`, say) on data labelled in
    that head's labels."""
    from emodetect.modalities import EvaluationData, get_modality

    modality, opened = open_model(model, modality, data)
    module = get_modality(modality).data_module()
    if module.EVALUATION_NEEDS_MODEL:
        data_options["model"] = opened  # e.g. text: the model's vocabulary encodes the data
    groups = None
    if group_by:
        options = {k: v for k, v in data_options.items() if k != "model"}
        groups = module.evaluation_groups(data, split, group_by, **options)
    found = module.evaluation_data(data, split, **data_options)
    if not isinstance(found, EvaluationData):
        raise TypeError(f"{module.__name__}.evaluation_data returned a {type(found).__name__}, "
                        "not an emodetect.modalities.EvaluationData")
    inputs, y_true, labels, source = found.inputs, found.y_true, found.labels, found.source
    seg, head_extras = model_head(opened, head)
    probs, model_labels, model_name = predict_probabilities(model, inputs, opened, seg)
    if found.example is not None:  # rows are parts of examples (a clip's windows): each scored once, on its mean
        pooled = pool_by_example(probs, np.asarray(y_true), np.asarray(found.example), groups)
        probs, y_true = pooled[0], pooled[1]
        groups = pooled[2] if groups is not None else None
    if model_labels and list(model_labels) != list(labels):
        if np.ndim(y_true) == 2 and set(labels) == set(model_labels):
            # The same labels in another order (GoEmotions' own order against a head's sorted one).
            y_true = np.asarray(y_true)[:, [list(labels).index(name) for name in model_labels]]
            labels = list(model_labels)
        elif np.ndim(y_true) == 1 and set(labels) <= set(model_labels):
            # The model knows more labels than the data has (the joint voice model on one corpus):
            # score in the model's label space, where predicting a label the data lacks is wrong.
            y_true = np.array([list(model_labels).index(name) for name in labels])[np.asarray(y_true)]
            labels = list(model_labels)
        else:
            raise DataError(f"{model_name} predicts {model_labels}, but {source} is labelled {list(labels)}")
    extras = head_extras
    if np.ndim(y_true) == 2:  # multi-hot rows: multi-label data
        report = multilabel_report(y_true, probs, labels, extras.get("thresholds", 0.5),
                                   extras.get("groups"), model_name, source)
    else:
        report = classification_report(y_true, probs.argmax(1), labels, model_name, source)
    if groups is not None:
        thresholds = extras.get("thresholds", 0.5) if np.ndim(y_true) == 2 else None
        report.extra["groups"] = group_metrics(np.asarray(y_true), probs, list(labels), groups, group_by, thresholds)
    if out_dir is not None:
        report.save(out_dir)
    return report


def _scores(y_true: np.ndarray, probs: np.ndarray, labels: list[str], thresholds: Any) -> tuple[float, float, np.ndarray]:
    """Accuracy (exact match for multi-label), macro-F1 (`macro_f1`), per-class recall (NaN where a
    class has no true example)."""
    if thresholds is None:
        k = len(labels)
        one_hot = np.eye(k, dtype=bool)
        truth, pred = one_hot[y_true], one_hot[probs.argmax(1)]
        accuracy = float((y_true == probs.argmax(1)).mean())
    else:
        truth, pred = np.asarray(y_true) > 0.5, multilabel_predictions(probs, thresholds)
        accuracy = float((pred == truth).all(1).mean())
    _, recall, f1, support = f1_table(truth, pred)
    return accuracy, macro_f1(truth, pred, f1)[0], np.where(support > 0, recall, np.nan)


def group_metrics(y_true: np.ndarray, probs: np.ndarray, labels: list[str], groups: np.ndarray, column: str,
                  thresholds: Any = None, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per group: n, accuracy and macro-F1 with bootstrap 95% intervals (examples resampled within
    the group), per-class recall; and the gap between the best and the worst group's accuracy."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name in sorted(set(groups.tolist())):
        index = np.flatnonzero(groups == name)
        accuracy, macro_f1, recall = _scores(y_true[index], probs[index], labels, thresholds)
        boot = np.array([_scores(y_true[s], probs[s], labels, thresholds)[:2]
                         for s in (rng.choice(index, len(index)) for _ in range(resamples))])
        low, high = np.percentile(boot, [2.5, 97.5], axis=0)
        out[name] = {"n": int(len(index)), "accuracy": round(accuracy, 4),
                     "accuracy_ci95": [round(float(low[0]), 4), round(float(high[0]), 4)],
                     "macro_f1": round(macro_f1, 4), "macro_f1_ci95": [round(float(low[1]), 4), round(float(high[1]), 4)],
                     "recall": {k: (None if np.isnan(r) else round(float(r), 4)) for k, r in zip(labels, recall)}}
    accuracies = {g: v["accuracy"] for g, v in out.items()}
    best, worst = max(accuracies, key=accuracies.get), min(accuracies, key=accuracies.get)
    return {"column": column, "groups": out, "best": best, "worst": worst,
            "accuracy_gap": round(accuracies[best] - accuracies[worst], 4), "resamples": resamples}


def group_markdown(table: dict[str, Any]) -> list[str]:
    lines = [f"## By {table['column']} (95% bootstrap intervals, {table['resamples']} resamples)", "",
             "| group | n | accuracy | 95% interval | macro-F1 | 95% interval |", "| --- | --- | --- | --- | --- | --- |"]
    for name, g in table["groups"].items():
        lines.append(f"| {name} | {g['n']} | {g['accuracy']:.4f} | {g['accuracy_ci95'][0]:.4f}-{g['accuracy_ci95'][1]:.4f} "
                     f"| {g['macro_f1']:.4f} | {g['macro_f1_ci95'][0]:.4f}-{g['macro_f1_ci95'][1]:.4f} |")
    lines += ["", f"Gap between the best group ({table['best']}) and the worst ({table['worst']}): "
                  f"**{table['accuracy_gap']:.4f}** accuracy."]
    return lines


def group_html(table: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(name))}</td><td>{g['n']}</td><td>{g['accuracy']:.4f}</td>"
                   f"<td>{g['accuracy_ci95'][0]:.4f}-{g['accuracy_ci95'][1]:.4f}</td><td>{g['macro_f1']:.4f}</td>"
                   f"<td>{g['macro_f1_ci95'][0]:.4f}-{g['macro_f1_ci95'][1]:.4f}</td></tr>"
                   for name, g in table["groups"].items())
    return (f"<h2>By {html.escape(table['column'])}</h2><table><tr><th>group</th><th>n</th><th>accuracy</th>"
            f"<th>95% interval</th><th>macro-F1</th><th>95% interval</th></tr>{rows}</table>"
            f"<p>Gap between the best group ({html.escape(str(table['best']))}) and the worst "
            f"({html.escape(str(table['worst']))}): <b>{table['accuracy_gap']:.4f}</b> accuracy.</p>"
            "<img src='groups.png' alt='accuracy by group'>")


def plot_groups(table: dict[str, Any], path: str | Path) -> Path:
    """Accuracy per group with its 95% interval, as a PNG."""
    fig = groups_figure(table)
    fig.savefig(path, dpi=120)
    return Path(path)


def groups_figure(table: dict[str, Any]):
    """The figure of `plot_groups`: each group named with its support (n), since a wide interval or a
    gap between two groups means little without how many examples each has."""
    from matplotlib.figure import Figure

    names = list(table["groups"])
    values = [table["groups"][n]["accuracy"] for n in names]
    low = [v - table["groups"][n]["accuracy_ci95"][0] for n, v in zip(names, values)]
    high = [table["groups"][n]["accuracy_ci95"][1] - v for n, v in zip(names, values)]
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.4))
    ax = fig.subplots()
    ax.barh([f"{n} (n={table['groups'][n]['n']})" for n in names], values, xerr=[low, high],
            color="#4c72b0", capsize=3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (95% bootstrap interval)")
    ax.set_title(f"by {table['column']}: gap {table['accuracy_gap']:.3f} ({table['best']} vs {table['worst']})")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig
