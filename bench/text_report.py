"""The report on many texts (emodetect.text.report): texts per second and peak memory for a CSV of
100,000 reviews with a product column and dates, against scoring alone, and at 10,000 rows to show
that memory does not grow with the rows.

    nice -n 10 python bench/text_report.py                 # 10,000 and 100,000 rows, the default model
    nice -n 10 python bench/text_report.py --rows 20000 --model default-int8
    nice -n 10 python bench/text_report.py --rows 100000 --modes stub   # the report's own cost, scoring aside

Each run is a fresh process (its peak resident memory is its own): `report` streams the CSV through
report_csv (1,024 rows at a time) and writes the page (report.html, PNGs, summary.json); `score`
reads the same rows and only scores them, the cost a report adds to.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from common import machine_info, markdown_table, training_running, write_json

OPENINGS = ["I ordered this last week and", "Honestly,", "After a month of use", "My second one and",
            "Bought it as a gift,", "The delivery was quick but", "Customer service said", "Well,"]
FEELINGS = {
    "angry": ["it broke and I am furious", "support ignored me, this is outrageous", "I hate how it stops working"],
    "happy": ["I love it, works great", "absolutely delighted with the quality", "best purchase this year"],
    "sad": ["it is a pity it does not fit", "I was so disappointed when it arrived", "sadly it had to go back"],
    "neutral": ["it arrived on Tuesday in a box", "it comes with a cable and a manual", "it is the blue model"],
    "fear": ["I am worried the battery may overheat", "it scared me when it sparked"],
    "surprise": ["wow, I did not expect it to be this small", "surprisingly it folds in two"],
}
ENDINGS = ["", " Would not buy again.", " Five stars.", " We will see.", " Thanks!", " Meh."]
FRENCH = "Ce produit est vraiment très mauvais et je ne suis pas content du tout"


def write_reviews(path: Path, rows: int, seed: int = 0) -> Path:
    """`rows` reviews of 6 products over 26 weeks (dates in ISO, ISO with offsets and epoch seconds),
    with 1% empty, 2% repeated and 0.5% French texts."""
    rng = random.Random(seed)
    start = date(2025, 9, 1)
    written: list[str] = []
    with open(path, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["review", "product", "date"])
        for i in range(rows):
            u = rng.random()
            if u < 0.01:
                text = ""
            elif u < 0.03 and written:
                text = rng.choice(written)
            elif u < 0.035:
                text = FRENCH
            else:
                label = rng.choice(list(FEELINGS))
                text = f"{rng.choice(OPENINGS)} {rng.choice(FEELINGS[label])}.{rng.choice(ENDINGS)} (order {i})"
                if len(written) < 1000:
                    written.append(text)
            day = start + timedelta(days=rng.randrange(182))
            stamp = (day.isoformat() if i % 3 == 0 else f"{day.isoformat()}T{rng.randrange(24):02d}:15:00+02:00"
                     if i % 3 == 1 else str(int(time.mktime(day.timetuple())) + 43200))
            out.writerow([text, f"product {chr(65 + rng.randrange(6))}", stamp])
    return path


class StubReader:
    """The model's labels and explanations, with `predict` answering every text the same at once:
    what the report costs on its own (CSV reading, hygiene, dates, counting), scoring aside."""

    def __init__(self, reader):
        self.reader, self.name, self.labels, self.model = reader, reader.name, reader.labels, reader.model
        self.explain = reader.explain
        self.answer = reader.predict(["I love it, works great"])[0]

    def predict(self, texts, batch_size=256, explain=False):
        from dataclasses import replace

        from emodetect.text.pipeline import TextResults

        empty = replace(self.answer, label=None, error="empty text")
        return TextResults(replace(self.answer if t.strip() else empty, text=t) for t in texts)


def child(mode: str, path: Path, model: str, out: Path) -> None:
    """One measured run; prints its figures as JSON."""
    from emodetect.text.pipeline import TextEmotion
    from emodetect.text.report import CHUNK, csv_chunks, report_csv

    reader = StubReader(TextEmotion(model)) if mode == "stub" else TextEmotion(model)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    rows = 0
    if mode == "score":
        for chunk, _ in csv_chunks(path, ["review"], CHUNK):
            reader.predict([r["review"] or "" for r in chunk])
            rows += len(chunk)
        save_s = 0.0
    else:
        summary = report_csv(path, column="review", by="product", over="date", every="week",
                             split_at="2025-12-01", reader=reader)
        rows = summary.hygiene.rows
        t1 = time.perf_counter()
        summary.save(out)
        save_s = time.perf_counter() - t1
    seconds = time.perf_counter() - t0
    print(json.dumps({"mode": mode, "rows": rows, "seconds": round(seconds, 2), "save_s": round(save_s, 2),
                      "texts_per_s": round(rows / seconds, 1), "rss_after_load_mb": round(rss_loaded, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--model", default="default")
    parser.add_argument("--modes", nargs="+", default=["report", "score"], choices=["report", "score", "stub"],
                        help="report: the whole report; score: scoring alone; stub: the report with a scorer that "
                             "answers at once (the report's own cost). score and stub run on the largest --rows only")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.model, Path(args.child[2]))
        return
    machine = machine_info()
    contended = training_running() or bool(machine.get("contended"))  # a training run, or a load over the cores
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = write_reviews(Path(tmp) / f"reviews_{n}.csv", n)
            for mode in [m for m in args.modes if m == "report" or n == max(args.rows)]:
                done = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", mode, str(path),
                                       str(Path(tmp) / f"out_{n}")], capture_output=True, text=True, check=True)
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(results[-1], flush=True)
    print(f"\nreport of a CSV of reviews (by product, per week, split at a date), model {args.model}"
          + (" (contended: other work shares the CPU)" if contended else ""))
    print(markdown_table(["run", "rows", "seconds", "of which page", "texts/s", "RSS after model load, MB",
                          "peak RSS, MB"],
                         [[r["mode"], f"{r['rows']:,}", r["seconds"], r["save_s"] or "-", r["texts_per_s"],
                           r["rss_after_load_mb"], r["peak_rss_mb"]] for r in results]))
    name = "text_report.json" if args.modes == ["report", "score"] else f"text_report_{'_'.join(args.modes)}.json"
    path = write_json(name, {"machine": machine, "model": args.model, "contended": contended,
                                           "command": "nice -n 10 python bench/text_report.py "
                                                      + " ".join(sys.argv[1:]), "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
