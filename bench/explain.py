"""How faithful are the saliency maps? A deletion test on FER-2013 PrivateTest faces.

For each face and method, the pixels are hidden (set to the crop's mean grey) most salient first,
10%, 20% ... 50% of the crop, and the probability the model gives its own prediction is read
after each step. A faithful map makes it fall fast: a low area under the curve (relative to the
unmasked probability). `random` hides random pixels of the same area: the baseline, measured in
the same run. Also the time to explain one face.

    python bench/explain.py [--model default] [--faces 150] [--data ../shared/data/fer2013/fer2013.csv.gz]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import FER2013_CSV, machine_info, markdown_table, median, write_json

FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def deletion_curve(predict, crop: np.ndarray, target: int, heat: np.ndarray) -> np.ndarray:
    """Probability of `target` after hiding each fraction of the pixels, most salient first."""
    order = np.argsort(-heat.ravel(), kind="stable")
    x = crop.astype(np.float32)
    fill = float(x.mean())
    batch = []
    for fraction in FRACTIONS:
        hidden = np.zeros(x.size, bool)
        hidden[order[:int(round(fraction * x.size))]] = True
        batch.append(np.where(hidden.reshape(x.shape), fill, x))
    return predict(np.stack(batch))[:, target]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--faces", type=int, default=150)
    parser.add_argument("--data", default=str(FER2013_CSV))
    args = parser.parse_args()

    from emodetect.runtime import load_model
    from emodetect.vision.data import load_faces
    from emodetect.vision.explain import occlusion_masks, rise_masks, saliency

    model = load_model(args.model)

    def predict(crops: np.ndarray) -> np.ndarray:
        return model.predict(crops[:, None].astype(np.float32))

    faces = load_faces(args.data, "PrivateTest")
    pick = np.random.default_rng(0).choice(len(faces.images), size=min(args.faces, len(faces.images)), replace=False)
    rng = np.random.default_rng(1)
    masks = {"occlusion": occlusion_masks(), "rise": rise_masks()}
    curves: dict[str, list[np.ndarray]] = {"occlusion": [], "rise": [], "random": []}
    seconds: dict[str, list[float]] = {"occlusion": [], "rise": []}
    for i in pick:
        crop = faces.images[i]
        probs = predict(crop[None])[0]
        target = int(probs.argmax())
        for method in ("occlusion", "rise"):
            t0 = time.perf_counter()
            heat = saliency(predict, crop, target, method, masks[method])
            seconds[method].append(time.perf_counter() - t0)
            curves[method].append(deletion_curve(predict, crop, target, heat))
        curves["random"].append(deletion_curve(predict, crop, target, rng.random(crop.shape)))
    rows, record = [], {}
    for method, values in curves.items():
        relative = np.array(values) / np.maximum(np.array(values)[:, :1], 1e-6)
        mean = relative.mean(0)
        auc = float(np.trapezoid(mean, FRACTIONS) / (FRACTIONS[-1] - FRACTIONS[0]))
        ms = median(seconds[method]) * 1000 if method in seconds else None
        rows.append([method, *[round(float(v), 3) for v in mean[1:4]], round(auc, 3), "" if ms is None else round(ms)])
        record[method] = {"relative_probability": dict(zip(map(str, FRACTIONS), map(float, mean))),
                          "area_under_curve": auc, "median_ms_per_face": ms}
    print(f"model {args.model}, {len(pick)} PrivateTest faces; probability of the predicted emotion "
          "after hiding pixels, relative to none hidden (lower = more faithful map)")
    print(markdown_table(["method", "10% hidden", "20%", "30%", "area 0-50% (lower better)", "ms per face"], rows))
    best = min(("occlusion", "rise"), key=lambda m: record[m]["area_under_curve"])
    print(f"most faithful: {best} (random masking: area {record['random']['area_under_curve']:.3f})")
    path = write_json(f"explain_{args.model}.json", {"machine": machine_info(), "model": args.model,
                                                     "faces": len(pick), "fractions": FRACTIONS,
                                                     "methods": record, "most_faithful": best})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
