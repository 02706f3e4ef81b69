"""Which input range do HSE-FaceRes's weights expect? A frozen linear probe for each candidate.

    python docs/training/faceres/probe_normalisation.py FER2013.csv(.gz) faceres-deep.json

Features of the frozen backbone (global pooling, 112 px, grey repeated to RGB) for the first N
Training faces and the first M PublicTest faces, a softmax regression fitted on the first and
scored on the second, for raw 0..255, the VGG channel means subtracted, and -1..1.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from emodetect.vision.data import read_fer_csv
from emodetect.vision.tfjs import read_tfjs_graph

CANDIDATES = {"raw 0..255": (0.0, 1.0), "minus VGG mean (~109)": (109.0, 1.0), "-1..1": (127.5, 1 / 127.5)}


def features(graph, images: np.ndarray, offset: float, scale: float) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(images), 128):
            x = torch.from_numpy(images[start:start + 128]).float()[:, None]
            x = F.interpolate(x, size=(112, 112), mode="bilinear", align_corners=False)
            out.append(graph(((x - offset) * scale).expand(-1, 3, -1, -1)).flatten(1))
    return torch.cat(out)


def probe(train_x, train_y, val_x, val_y) -> float:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    weight = torch.zeros(train_x.shape[1], 7, requires_grad=True)
    bias = torch.zeros(7, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(train_x @ weight + bias, train_y) + 1e-3 * weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(((val_x @ weight + bias).argmax(1) == val_y).float().mean())


def main(fer_csv: str, graph_json: str, n_train: int = 3000, n_val: int = 1000) -> None:
    torch.manual_seed(0)
    train, _ = read_fer_csv(fer_csv, "Training")
    val, _ = read_fer_csv(fer_csv, "PublicTest")
    graph = read_tfjs_graph(graph_json, outputs=["global_pooling/Mean"]).eval()
    for name, (offset, scale) in CANDIDATES.items():
        t0 = time.time()
        tx = features(graph, train.images[:n_train], offset, scale)
        vx = features(graph, val.images[:n_val], offset, scale)
        acc = probe(tx, torch.from_numpy(train.labels[:n_train]), vx, torch.from_numpy(val.labels[:n_val]))
        print(f"{name:24s} PublicTest accuracy {acc:.3f}  ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
