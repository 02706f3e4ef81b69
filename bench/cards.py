"""The evidence behind every bundled model's card: each model scored on its corpus's test split
through the ONNX file (`emodetect.evaluate`), per class and, where the data has the columns, per
group (voice: gender and speaker), written to emodetect/assets/cards/<model file>.json, which
`emodetect models --card NAME` reads. Rerun after changing a bundled model:

    python bench/cards.py [--data ../shared/data] [--only voice:default ravdess]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import REPO, machine_info

CARDS = REPO / "emodetect" / "assets" / "cards"
# Which data each bundled model is scored on (relative to --data), and the groups to report.
TEST_DATA = {
    "vision": ("fer2013/fer2013.csv.gz", "PrivateTest", []),
    "text:goemotions": ("text/goemotions/goemotions.csv", "test", []),
    # The four corpora in the shared labels: docs/training/text_shared/make_data.py writes it there.
    "text:default": ("text_shared/shared.csv", "test", ["corpus"]),
    "text:default-int8": ("text_shared/shared.csv", "test", ["corpus"]),
    "text:minilm-int8": ("text_shared/shared.csv", "test", ["corpus"]),
    "text:accurate": ("text_shared/shared.csv", "test", ["corpus"]),
    "voice:default": ("speech/ravdess+speech/emodb", "test", ["corpus", "gender"]),
    "voice:fast": ("speech/ravdess+speech/emodb", "test", ["corpus", "gender"]),
}
# The heads of multi-head models, each scored on its corpus's own file (`evaluate --head`).
JOINT_HEADS = {"goemotions": "text/goemotions/goemotions.csv", "dair": "text/dair_emotion/emotion.csv",
               "isear": "text/isear/isear.csv"}
HEAD_DATA = {"text:default": JOINT_HEADS, "text:default-int8": JOINT_HEADS, "text:minilm-int8": JOINT_HEADS,
             "text:accurate": JOINT_HEADS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", nargs="*", help="models to redo: NAME or MODALITY:NAME (default: all)")
    parser.add_argument("--shared-text", type=Path, default=REPO / "runs" / "text_shared" / "shared.csv",
                        help="the combined text CSV of make_data.py, for the `shared` text model")
    args = parser.parse_args()

    from emodetect.evaluate import evaluate
    from emodetect.runtime import bundled_models

    CARDS.mkdir(exist_ok=True)
    for model in bundled_models():
        if args.only and not {model.name, f"{model.modality}:{model.name}"} & set(args.only):
            continue
        data, split, columns = TEST_DATA.get(f"{model.modality}:{model.name}") or TEST_DATA[model.modality]
        where = (args.shared_text if data.startswith("text_shared/") else
                 "+".join(str(args.data / part) for part in data.split("+")))
        report = evaluate(model.path, where, split, modality=model.modality)
        evidence = {"model": model.name, "file": model.path.name, "data": f"{data} ({split})",
                    "command": (f"python docs/training/text_shared/make_data.py ../shared/data/text shared.csv && "
                                f"emodetect evaluate {model.name} shared.csv --split test --group-by corpus")
                               if data.startswith("text_shared/") else
                               f"emodetect evaluate {model.name} "
                               + "+".join(f"../shared/data/{part}" for part in data.split("+")) + f" --split {split}"
                               + ("" if model.modality == "vision" else f" --modality {model.modality}"),
                    "n": report.n, "accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4),
                    "extra": {k: v for k, v in report.extra.items() if k != "groups"},
                    "per_class": [{"label": c.label, "precision": round(c.precision, 3), "recall": round(c.recall, 3),
                                   "f1": round(c.f1, 3), "support": c.support} for c in report.per_class],
                    "groups": {}, "measured_on": machine_info()["cpu"]}
        for head, head_data in HEAD_DATA.get(f"{model.modality}:{model.name}", {}).items():
            scored = evaluate(model.path, args.data / head_data, split, modality=model.modality, head=head)
            evidence.setdefault("heads", {})[head] = {
                "data": f"{head_data} ({split})", "n": scored.n, "accuracy": round(scored.accuracy, 4),
                "macro_f1": round(scored.macro_f1, 4),
                "command": f"emodetect evaluate {model.name} ../shared/data/{head_data} --split {split} "
                           f"--modality {model.modality} --head {head}"}
        for column in columns:
            grouped = evaluate(model.path, where, split, modality=model.modality, group_by=column)
            evidence["groups"][column] = grouped.extra["groups"]
        path = CARDS / f"{model.path.stem}.json"
        path.write_text(json.dumps(evidence, indent=1) + "\n")
        print(f"{model.modality:6} {model.name:14} accuracy {report.accuracy:.4f} macro-F1 {report.macro_f1:.4f} "
              f"({report.n} on {data} {split}) -> {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
