#!/usr/bin/env bash
# How a bundled face model was made: train, export (fp32 + int8), score on PrivateTest.
# Run from the repository root with the train extra installed. DATA points at the FER-2013 files.
# Defaults make the `default` model; docs/training/realtime/make_bundle.sh sets NAME, MODEL,
# EPOCHS and TTA for the `realtime` one. SHIFT_TTA is the shift chosen on PublicTest by choose_tta.py.
set -euo pipefail
DATA=${DATA:-../shared/data/fer2013}
NAME=${NAME:-default}
MODEL=${MODEL:-vgg_fer}
EPOCHS=${EPOCHS:-50}
TTA=${TTA:---flip-tta --shift-tta ${SHIFT_TTA:-0}}
RUN=${RUN:-runs/$NAME}
DOCS=docs/training/$NAME
ONNX=emodetect/assets/emotion_$NAME

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  # bf16 autocast + channels_last, one-cycle SGD, EMA, label smoothing, augmentation: TrainConfig defaults.
  emodetect train --data "$DATA/fer2013.csv.gz" --out "$RUN" --model "$MODEL" --epochs "$EPOCHS" --threads 2 --seed 0 --resume
fi

# shellcheck disable=SC2086  # TTA holds several flags
emodetect export "$RUN/best.pt" --out "$ONNX.onnx" --name "$NAME" $TTA \
  --int8 --calibration-data "$DATA/fer2013.csv.gz" --calibration-split Training

mkdir -p "$DOCS"
# A checkpoint rebuilt from an ONNX file (docs/training/ferplus/onnx_to_checkpoint.py) has no run log:
# the docs keep the original run's.
if [ -f "$RUN/log.jsonl" ]; then cp "$RUN/config.json" "$RUN/log.jsonl" "$DOCS/"; fi
for precision in "" _int8; do
  emodetect evaluate "$ONNX$precision.onnx" "$DATA/fer2013.csv.gz" \
    --split PrivateTest --out "$DOCS/privatetest$precision" > /dev/null
done
emodetect evaluate "$ONNX.onnx" "$DATA/fer2013.csv.gz" --split PublicTest --out "$DOCS/publictest" > /dev/null
emodetect evaluate "$ONNX.onnx" "$DATA/fer2013.csv.gz" --split PrivateTest \
  --ferplus "$DATA/fer2013new.csv" --out "$DOCS/privatetest_ferplus" > /dev/null
NAME=$NAME python - <<'PY'
import json
import os
from emodetect.export import set_metadata
name = os.environ["NAME"]
for suffix in ("", "_int8"):
    r = json.load(open(f"docs/training/{name}/privatetest{suffix}/report.json"))
    figures = f"FER-2013 PrivateTest accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}"
    set_metadata(f"emodetect/assets/emotion_{name}{suffix}.onnx", {"test_figures": figures})
    print(suffix or "fp32", figures)
PY
