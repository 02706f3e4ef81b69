"""Text models: test accuracy / macro-F1 of the bundled text models (the joint default through each
of its heads) against issue 18's required figures, and their throughput.

    nice -n 15 .venv/bin/python bench/text.py            # prints a table, writes bench/results/text.json
    nice -n 15 .venv/bin/python bench/text.py --stamp    # also writes the test figures into the
                                                         # bundled models' `test_figures` metadata
    python bench/text.py --split validation --runs 0 --models default student.onnx
                                  # candidates (names or ONNX files) through the joint heads, on the
                                  # validation splits (choose there), no timing

Throughput is end to end (`TextEmotion.predict`: tokenising, onnxruntime, result objects) on
GoEmotions test texts, at batch 1 (texts one call at a time), batch 256 (a call per 256 texts)
and in one call for all --n256 texts (batches of 256, as `emodetect text --file`); medians of
--runs. The bar of issue 18 is 5,000 texts/s in one process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine_info, markdown_table, median, write_json  # noqa: E402

DATA = Path(__import__("os").environ.get("EMODETECT_DATA", REPO.parent / "shared" / "data")) / "text"
# (bundled model, head or None, test data, metric, issue 18's required figure). The joint default
# answers in each corpus's own labels through its heads.
MODELS = [
    ("goemotions", None, DATA / "goemotions" / "goemotions.csv", "macro_f1", 0.50),
    ("default", "goemotions", DATA / "goemotions" / "goemotions.csv", "macro_f1", 0.50),
    ("default", "dair", DATA / "dair_emotion" / "emotion.csv", "accuracy", 0.94),
    ("default", "isear", DATA / "isear" / "isear.csv", "accuracy", 0.65),
    ("default-int8", "goemotions", DATA / "goemotions" / "goemotions.csv", "macro_f1", 0.50),
    ("default-int8", "dair", DATA / "dair_emotion" / "emotion.csv", "accuracy", 0.94),
    ("default-int8", "isear", DATA / "isear" / "isear.csv", "accuracy", 0.65),
    ("minilm-int8", "goemotions", DATA / "goemotions" / "goemotions.csv", "macro_f1", 0.50),
    ("minilm-int8", "dair", DATA / "dair_emotion" / "emotion.csv", "accuracy", 0.94),
    ("minilm-int8", "isear", DATA / "isear" / "isear.csv", "accuracy", 0.65),
    ("accurate", "goemotions", DATA / "goemotions" / "goemotions.csv", "macro_f1", 0.50),
    ("accurate", "dair", DATA / "dair_emotion" / "emotion.csv", "accuracy", 0.94),
    ("accurate", "isear", DATA / "isear" / "isear.csv", "accuracy", 0.65),
]


def throughput(name: str, texts: list[str], batch: int, runs: int, threads: int, one_call: bool = False) -> float:
    """Median texts/s of `runs` passes over `texts` in batches of `batch`: one `predict` call per
    batch, or with `one_call` one call for all of them (as `emodetect text --file` does; a model
    with a free token axis then groups texts of similar length)."""
    from emodetect.text.pipeline import TextEmotion

    reader = TextEmotion(name, threads=threads)
    reader.predict(texts[:batch])  # warm-up
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        if one_call:
            reader.predict(texts, batch_size=batch)
        else:
            for start in range(0, len(texts), batch):
                reader.predict(texts[start:start + batch], batch_size=batch)
        rates.append(len(texts) / (time.perf_counter() - t0))
    return median(rates)


def stamp(name: str, figures: dict) -> Path:
    """Store the measured test figures in the bundled model, where `emodetect models` shows them
    (a multi-head model: one entry per head)."""
    from emodetect.export import set_metadata
    from emodetect.runtime import ENSEMBLE_SUFFIX, bundled_model_path

    path = bundled_model_path(name, "text")
    if path.name.endswith(ENSEMBLE_SUFFIX):  # an ensemble keeps its metadata in its own JSON file
        spec = json.loads(path.read_text())
        spec.setdefault("metadata", {})["test_figures"] = json.dumps(figures)
        path.write_text(json.dumps(spec, indent=1) + "\n")
    else:
        set_metadata(path, {"test_figures": json.dumps(figures)})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (the CPU is shared)")
    parser.add_argument("--n1", type=int, default=300, help="texts timed at batch 1")
    parser.add_argument("--n256", type=int, default=2560, help="texts timed at batch 256")
    parser.add_argument("--stamp", action="store_true",
                        help="write the test figures into each bundled model's ONNX metadata")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/text.json)")
    parser.add_argument("--split", default="test", help="test, or validation to choose between candidates")
    parser.add_argument("--models", nargs="+", default=None,
                        help="score these (bundled names or ONNX files) through the joint heads instead")
    args = parser.parse_args()
    if args.stamp and (args.split != "test" or args.models):
        parser.error("--stamp writes the bundled models' test figures: not with --split or --models")
    models = MODELS if not args.models else [(m, head, data, metric, bar) for m in args.models
                                             for name, head, data, metric, bar in MODELS if name == "default"]

    from emodetect.evaluate import evaluate
    from emodetect.text.data import load_texts

    texts = load_texts(MODELS[0][2], "test").texts
    rows, results, speeds, stamps = [], {}, {}, {}
    for name, head, data, metric, bar in models:
        report = evaluate(name, data, args.split, modality="text", head=head)
        if args.runs and name not in speeds:
            speeds[name] = (throughput(name, texts[:args.n1], 1, args.runs, args.threads),
                            throughput(name, texts[:args.n256], 256, args.runs, args.threads),
                            throughput(name, texts[:args.n256], 256, args.runs, args.threads, one_call=True))
        speed1, speed256, speed_file = speeds.get(name, ("-",) * 3)  # "-": not timed (--runs 0)
        value = getattr(report, metric)
        key = f"{name} ({head})" if head else name
        results[key] = {
            "model": name, "head": head,
            "data": report.data, "n": report.n, "accuracy": round(report.accuracy, 4),
            "macro_f1": round(report.macro_f1, 4), "ekman_macro_f1": report.extra.get("group_macro_f1"),
            "micro_f1": report.extra.get("micro_f1"),
            "bar": {"metric": metric, "required": bar, "value": round(value, 4), "met": value >= bar},
            "texts_per_s": {"batch_1": round(speed1, 1), "batch_256": round(speed256, 1),
                            "one_call": round(speed_file, 1)} if name in speeds else None,
            "per_class_f1": {c.label: round(c.f1, 4) for c in report.per_class},
        }
        figures = {"split": args.split, "data": Path(data).name, "n": report.n, "accuracy": round(report.accuracy, 4),
                   "macro_f1": round(report.macro_f1, 4)}
        if "group_macro_f1" in report.extra:
            figures["ekman_macro_f1"] = report.extra["group_macro_f1"]
        if head:
            stamps.setdefault(name, {})[head] = figures
        else:
            stamps[name] = figures
        rows.append([key, report.n, report.accuracy, report.macro_f1,
                     report.extra.get("group_macro_f1", "-"), f"{metric} >= {bar} ({'met' if value >= bar else 'MISSED'})",
                     speed1, speed256, speed_file])
    if args.stamp:
        from emodetect.runtime import write_catalog

        for name, figures in stamps.items():
            print(f"stamped {stamp(name, figures)}")
        print(f"rewrote {write_catalog()}")  # the catalogue copies each model's metadata
    table = markdown_table(["model (head)", f"{args.split} n", "accuracy", "macro-F1", "Ekman macro-F1", "bar",
                            "texts/s b1", "texts/s b256", "texts/s one call"], rows)
    print(table)
    print("GoEmotions accuracy is exact match of the whole label set; Ekman macro-F1 groups the 28 "
          "labels (a group is predicted when any of its labels is).")
    payload = {"machine": machine_info(), "threads": args.threads, "runs": args.runs, "split": args.split,
               "models": results, "table": table}
    print(f"wrote {write_json('text.json', payload, args.out.parent if args.out else None)}")


if __name__ == "__main__":
    main()
