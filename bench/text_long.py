"""Long texts: a free-length text model reading each text whole against cutting it at its
training length, on the texts of a split longer than that length (shared labels, main head).

    python bench/text_long.py runs/text_joint/joint.csv --split validation   # the choice was made here
    python bench/text_long.py runs/text_joint/joint.csv --split test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common import machine_info, markdown_table, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the joint CSV of docs/training/text_shared/make_data.py")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()

    from emodetect.text.data import load_texts
    from emodetect.text.pipeline import TextEmotion

    reader = TextEmotion(args.model)
    data = load_texts(args.data, args.split).main_rows()
    ids = reader.vocab.token_ids(data.texts)
    long = [i for i, row in enumerate(ids) if len(row) > reader.trained_tokens]
    truth = data.class_indices()[long]
    cut = reader.model.predict(reader.vocab.pack([ids[i] for i in long], reader.trained_tokens).ids).argmax(1)
    whole = np.array([reader.model.predict(np.array([ids[i][:reader.max_tokens]]))[0].argmax() for i in long])
    corpora = sorted({data.rows[i]["corpus"] for i in long})
    rows, record = [], {}
    for name in [*corpora, "all"]:
        pick = np.array([name in ("all", data.rows[i]["corpus"]) for i in long])
        record[name] = {"n": int(pick.sum()), "cut": round(float((cut[pick] == truth[pick]).mean()), 4),
                        "whole": round(float((whole[pick] == truth[pick]).mean()), 4)}
        rows.append([name, record[name]["n"], record[name]["cut"], record[name]["whole"]])
    print(f"{reader.name}: {args.split} texts longer than its {reader.trained_tokens} training tokens, "
          f"accuracy in the shared labels")
    print(markdown_table(["corpus", "texts", f"cut at {reader.trained_tokens}", f"whole (up to {reader.max_tokens})"], rows))
    path = write_json(f"text_long_{args.split}.json", {"machine": machine_info(), "model": reader.name,
                                                        "split": args.split, "results": record})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
