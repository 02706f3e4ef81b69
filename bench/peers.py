"""One command for the README table: accuracy, speed and training against fer, in one run.

    python bench/peers.py                  # everything; about 10 minutes on 2 idle cores
    python bench/peers.py --from-results   # only rebuild peers.md from bench/results/*.json

Runs bench/accuracy.py, bench/speed.py and bench/train.py (each also writes its own JSON), then
writes bench/results/peers.md: the table, the goals with "met" or "missed", the machine and the
command, and puts the same table between the markers in docs/benchmarks.md. Nothing is tuned to
pass: a missed goal is printed as missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, markdown_table  # noqa: E402

COMMAND = "python bench/peers.py"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- peers:begin (written by bench/peers.py) -->", "<!-- peers:end -->"


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def render(acc: dict[str, Any] | None, speed: dict[str, Any] | None, train: dict[str, Any] | None) -> str:
    """The README section as Markdown, from the three benchmarks' JSON payloads."""
    first = next(p for p in (acc, speed, train) if p)
    m = first["machine"]
    fer_v = m.get("fer_venv_versions") or (speed or acc or {}).get("machine", {}).get("fer_venv_versions", {})
    contended = any(p and p["machine"].get("contended") for p in (acc, speed, train))
    lines = ["## Benchmarks: emodetect vs fer", "",
             f"Measured {m['date_utc']} on {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
             f"onnxruntime {m['versions'].get('onnxruntime', '?')}, torch {m['versions'].get('torch', '?')}; "
             f"fer {fer_v.get('fer', '?')} with tensorflow-cpu {fer_v.get('tensorflow-cpu', '?')} "
             f"in its own venv (emodetect commit {m.get('git_commit', '?')}).",
             "Reproduce with `" + COMMAND + "` (JSON with every run's times in `bench/results/`)."]
    if contended:
        lines += ["", "**Contended:** these timings were taken while a training run shared the CPU; "
                  "ratios measured in the same run are still comparable, absolute times are not."]
    names: list[str] = []
    for p, key in ((acc, "results"), (speed, None)):
        if p:
            for n in (p[key] if key else p["summary"]["classifier"]):
                if n not in names:
                    names.append(n)
    rows = []
    if acc:
        res = acc["results"]
        for label, s, metric in (("PrivateTest accuracy, FER-2013 labels", "FER-2013", "accuracy"),
                                 ("PrivateTest macro-F1, FER-2013 labels", "FER-2013", "macro_f1"),
                                 ("PrivateTest accuracy, FER+ majority labels", "FER+", "accuracy"),
                                 ("PrivateTest macro-F1, FER+ majority labels", "FER+", "macro_f1")):
            if all(s in r for r in res.values()):
                rows.append([label] + [_fmt(res.get(n, {}).get(s, {}).get(metric), ".4f") for n in names])
    if speed:
        cls = speed["summary"]["classifier"]
        for b in ("1", "256"):
            rows.append([f"classifier images/s, batch {b}"] +
                        [_fmt(cls.get(n, {}).get(b, {}).get("images_per_s"), ",.0f") for n in names])
        pipe = speed["summary"]["pipeline"]
        for n_faces in (("1", "5") if pipe else ()):
            row = [f"pipeline frames/s, 640x480 photo, {n_faces} face(s)"]
            for n in names:
                if n in pipe:
                    r = pipe[n][n_faces]
                elif n.startswith("fer (TFLite") and "fer" in pipe:
                    r = pipe["fer"][n_faces]
                else:
                    row.append("")
                    continue
                row.append(f"{r['frames_per_s']:.1f} ({r['faces_found']} found)")
            rows.append(row)
    lines += ["", markdown_table([""] + names, rows)]
    goals = []
    if acc and acc["goal"].get("status"):
        g = acc["goal"]
        goals.append(["accuracy above fer's on PrivateTest", f"{g['ours']:.4f} vs {g['fer']:.4f}", g["status"]])
    if speed:
        for text, g in speed["summary"]["goals"].items():
            goals.append([text, f"{g['ratio']:.2f}x" + (" (worse of 1 and 5 faces)" if "pipeline" in text else ""),
                          g["status"]])
    if goals:
        lines += ["", markdown_table(["goal", "measured", "status"], goals)]
    if train:
        steps = train["steps"]
        rows = [[k, f"{v['images_per_s']:.0f}", f"{v['median_s_per_step']:.2f}"] for k, v in steps.items()]
        lines += ["", f"Training on this CPU ({train['model']}, batch {train['batch']}, median of "
                      f"{train['runs']} runs of {train['steps_per_run']} steps):", "",
                  markdown_table(["precision", "images/s", "s/step"], rows), "",
                  f"bf16 autocast + channels_last is {train['bf16_speedup']:.2f}x fp32."]
        t = train["time_to_70"]
        if t.get("reached"):
            r = t["first_reached"]
            lines += [f"The default recipe first reached 70% on PublicTest at epoch {r['epoch']}, after "
                      f"{r['seconds'] / 60:.0f} min of training (`{t['log']}`; best {t['best_val_acc']:.4f} "
                      f"at epoch {t['best_epoch']} of {t['epochs_logged']} logged)."]
            if t.get("stalled_epochs"):
                lines += [f"That includes stalled epochs {t['stalled_epochs']} (the machine was busy elsewhere); at "
                          f"the median epoch time ({t['median_epoch_seconds']:.0f} s) it is "
                          f"{r['seconds_at_median_epoch'] / 60:.0f} min."]
        elif t.get("log"):
            planned = f" of {t['epochs_planned']} planned" if t.get("epochs_planned") else ""
            lines += [f"The default recipe had not reached 70% on PublicTest in the {t['epochs_logged']}{planned} "
                      f"epochs logged in `{t['log']}` (best {t['best_val_acc']:.4f} at epoch {t['best_epoch']}); "
                      f"`python bench/peers.py --from-results` rereads the log."]
    lines += ["", "Notes: fer's classifiers score the very same 48x48 crops, resized to 64x64 and scaled "
              "as fer's `detect_emotions` does; speeds use each library's default threads; the pipeline "
              "photos are built from `emodetect/assets/samples` (faces 70-160 px so fer's Haar detector, "
              "minimum 50 px, can find them all)."]
    return "\n".join(lines) + "\n"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from-results", action="store_true", help="reuse bench/results/*.json; run nothing")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per speed figure")
    parser.add_argument("--skip", nargs="*", default=[], choices=["accuracy", "speed", "train"],
                        help="benchmarks not to rerun (their last JSON is used if present)")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    payloads: dict[str, dict[str, Any] | None] = {}
    for name in ("accuracy", "speed", "train"):
        if args.from_results or name in args.skip:
            payloads[name] = _load(name)
            continue
        module = __import__(name)
        extra = [] if name == "accuracy" else ["--runs", str(args.runs)]
        print(f"\n===== bench/{name}.py =====", flush=True)
        payloads[name] = module.main(extra)
    if payloads["train"] is not None:
        # The training log grows while the default model trains: always read it afresh.
        import train as train_bench

        payloads["train"]["time_to_70"] = train_bench.time_to_accuracy()
        (RESULTS / "train.json").write_text(json.dumps(payloads["train"], indent=1, default=str) + "\n")
    text = render(payloads["accuracy"], payloads["speed"], payloads["train"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peers.md").write_text(text)
    print("\n" + text + f"\nwrote {RESULTS / 'peers.md'}")
    if not args.no_docs and update_docs(text):
        print(f"updated {DOCS}")
    return text


def update_docs(text: str, path: Path | None = None) -> bool:
    """Put the table between the markers in docs/benchmarks.md, so the doc never drifts from the run."""
    path = path or DOCS
    if not path.exists():
        return False
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        return False
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + BEGIN + "\n" + text.replace("## Benchmarks: emodetect vs fer\n\n", "", 1) + END + tail)
    return True


if __name__ == "__main__":
    main()
