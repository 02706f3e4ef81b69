"""Pick the test-time augmentation baked into the bundled model, on PublicTest only.

Usage: python docs/training/default/choose_tta.py runs/default/best.pt ../shared/data/fer2013/fer2013.csv.gz
Prints accuracy and macro-F1 on PublicTest for each set of views; PrivateTest is never read.
"""

import json
import sys
import time

import torch

from emodetect.evaluate import classification_report
from emodetect.export import ProbabilityHead
from emodetect.labels import EMOTIONS
from emodetect.train import load_checkpoint_model
from emodetect.vision.data import evaluation_data

checkpoint, data = sys.argv[1], sys.argv[2]
validation = evaluation_data(data, "PublicTest")
inputs, labels = validation.inputs, validation.y_true
model = load_checkpoint_model(checkpoint).to(memory_format=torch.channels_last)
rows = []
for flip, shift in ((False, 0), (True, 0), (True, 2)):
    head = ProbabilityHead(model, flip_tta=flip, shift_tta=shift).eval()
    start = time.time()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        probs = torch.cat([head(torch.from_numpy(inputs[i:i + 256]).contiguous(memory_format=torch.channels_last)).float()
                           for i in range(0, len(inputs), 256)])
    report = classification_report(labels, probs.argmax(1).numpy(), EMOTIONS)
    rows.append({"flip_tta": flip, "shift_tta": shift, "views": len(head._views(torch.zeros(1, 1, 48, 48))),
                 "public_accuracy": round(report.accuracy, 4), "public_macro_f1": round(report.macro_f1, 4),
                 "seconds": round(time.time() - start, 1)})
    print(json.dumps(rows[-1]), flush=True)
