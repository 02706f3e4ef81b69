#!/usr/bin/env bash
# How the bundled real-time face model was made: vgg_fer_small (half the widths of vgg_fer, a
# quarter of its arithmetic), one view (no flip TTA: that would double the cost), fp32 and int8.
# Run from the repository root with the train extra installed.
set -euo pipefail
DATA=${DATA:-../shared/data/fer2013}
RUN=${RUN:-runs/realtime}
DOCS=docs/training/realtime

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  emodetect train --data "$DATA/fer2013.csv.gz" --out "$RUN" --model vgg_fer_small --epochs 45 --threads 2 --seed 0 --resume
fi

emodetect export "$RUN/best.pt" --out emodetect/assets/emotion_realtime.onnx --name realtime \
  --no-flip-tta --int8 --calibration-data "$DATA/fer2013.csv.gz" --calibration-split Training

mkdir -p "$DOCS"
cp "$RUN/config.json" "$RUN/log.jsonl" "$DOCS/"
for precision in "" _int8; do
  emodetect evaluate "emodetect/assets/emotion_realtime$precision.onnx" "$DATA/fer2013.csv.gz" \
    --split PrivateTest --out "$DOCS/privatetest$precision" > /dev/null
done
python - <<'PY'
import json
from emodetect.export import set_metadata
docs = "docs/training/realtime"
for suffix in ("", "_int8"):
    r = json.load(open(f"{docs}/privatetest{suffix}/report.json"))
    figures = f"FER-2013 PrivateTest accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}"
    set_metadata(f"emodetect/assets/emotion_realtime{suffix}.onnx", {"test_figures": figures})
    print(suffix or "fp32", figures)
PY
