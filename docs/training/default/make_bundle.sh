#!/usr/bin/env bash
# How the bundled default face model was made: train, export (fp32 + int8), score on PrivateTest.
# Run from the repository root with the train extra installed. DATA points at the FER-2013 files;
# SHIFT_TTA is the shift chosen on PublicTest by choose_tta.py.
set -euo pipefail
DATA=${DATA:-../shared/data/fer2013}
RUN=${RUN:-runs/default}
DOCS=docs/training/default

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  # bf16 autocast + channels_last, one-cycle SGD, EMA, label smoothing, augmentation: TrainConfig defaults.
  emodetect train --data "$DATA/fer2013.csv.gz" --out "$RUN" --model vgg_fer --epochs 50 --threads 2 --seed 0 --resume
fi

emodetect export "$RUN/best.pt" --out emodetect/assets/emotion_default.onnx --name default \
  --flip-tta --shift-tta "${SHIFT_TTA:-0}" --int8 --calibration-data "$DATA/fer2013.csv.gz" --calibration-split Training

mkdir -p "$DOCS"
cp "$RUN/config.json" "$RUN/log.jsonl" "$DOCS/"
for precision in "" _int8; do
  emodetect evaluate "emodetect/assets/emotion_default$precision.onnx" "$DATA/fer2013.csv.gz" \
    --split PrivateTest --out "$DOCS/privatetest$precision" > /dev/null
done
emodetect evaluate emodetect/assets/emotion_default.onnx "$DATA/fer2013.csv.gz" --split PublicTest \
  --out "$DOCS/publictest" > /dev/null
emodetect evaluate emodetect/assets/emotion_default.onnx "$DATA/fer2013.csv.gz" --split PrivateTest \
  --ferplus "$DATA/fer2013new.csv" --out "$DOCS/privatetest_ferplus" > /dev/null
python - <<'PY'
import json
from emodetect.export import set_metadata
docs = "docs/training/default"
for suffix in ("", "_int8"):
    r = json.load(open(f"{docs}/privatetest{suffix}/report.json"))
    figures = f"FER-2013 PrivateTest accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}"
    set_metadata(f"emodetect/assets/emotion_default{suffix}.onnx", {"test_figures": figures})
    print(suffix or "fp32", figures)
PY
