"""Rebuild a trainable checkpoint from a bundled ONNX face model, to fine-tune it (--init).

The bundled default model ships as ONNX only, with each BatchNorm folded into its conv. We load
the folded conv weights, then give every BatchNorm the statistics of its input measured on
training faces, with scale and shift chosen so that it computes the folded function exactly in
eval mode (and about so in train mode, where the batch statistics stand in for the measured ones).

    python docs/training/ferplus/onnx_to_checkpoint.py emodetect/assets/emotion_default.onnx runs/init_default.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from emodetect.registry import create_model
from emodetect.vision.data import read_fer_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx_path")
    parser.add_argument("out")
    parser.add_argument("--data", default="../shared/data/fer2013/fer2013.csv.gz")
    parser.add_argument("--n", type=int, default=2048, help="training faces the BN statistics are measured on")
    args = parser.parse_args()

    graph = onnx.load(args.onnx_path)
    meta = {p.key: p.value for p in graph.metadata_props}
    inits = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    convs, seen = [], set()
    for node in graph.graph.node:  # flip TTA runs the net twice on the same weights: keep the first
        if node.op_type == "Conv" and node.input[1] not in seen:
            seen.add(node.input[1])
            convs.append((inits[node.input[1]], inits[node.input[2]]))
    model = create_model(meta["architecture"], num_classes=len(json.loads(meta["labels"])))
    pairs = [(m[0], m[1]) for m in model.modules()
             if isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[1], nn.BatchNorm2d)]
    if len(pairs) != len(convs):
        sys.exit(f"{args.onnx_path}: {len(convs)} convs in the graph, {len(pairs)} in {meta['architecture']}")
    with torch.no_grad():
        for (conv, bn), (weight, bias) in zip(pairs, convs):
            conv.weight.copy_(torch.from_numpy(weight))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(bias))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        head = model.head[3]
        head.weight.copy_(torch.from_numpy(inits["model.head.3.weight"]))
        head.bias.copy_(torch.from_numpy(inits["model.head.3.bias"]))
    model.eval()

    faces, _ = read_fer_csv(args.data, "Training")
    pick = np.random.default_rng(0).choice(len(faces), size=min(args.n, len(faces)), replace=False)
    x = torch.from_numpy(faces.images[np.sort(pick)]).float().unsqueeze(1)
    stats = {}
    hooks = [conv.register_forward_hook(lambda m, i, o, k=k: stats.__setitem__(k, o.detach()))
             for k, (conv, _) in enumerate(pairs)]
    with torch.no_grad():
        reference = model(x)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for k, (conv, bn) in enumerate(pairs):
            out = stats[k].double()
            mean = out.mean(dim=(0, 2, 3))
            var = out.var(dim=(0, 2, 3), unbiased=False)
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.add_(mean.float())
        rebuilt = model(x)
    print(f"rebuilt vs folded logits: max |diff| {float((rebuilt - reference).abs().max()):.2e}")

    # The ONNX file averages the face and its mirror; compare the same with torch.
    session = ort.InferenceSession(args.onnx_path, providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {"pixels": x[:256].numpy()})[0]
    with torch.no_grad():
        probs = (model(x[:256]).softmax(1) + model(x[:256].flip(3)).softmax(1)) / 2
    print(f"torch vs {args.onnx_path}: max |probability diff| {float(np.abs(probs.numpy() - onnx_probs).max()):.2e}")

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_name": meta["architecture"], "num_classes": len(json.loads(meta["labels"])),
                "labels": json.loads(meta["labels"]), "model_kwargs": {}, "extras": {}, "multilabel": False,
                "config": {"modality": "vision", "model": meta["architecture"], "source": args.onnx_path},
                "epoch": -1, "weights": model.state_dict()}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
