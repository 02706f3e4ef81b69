"""Check emodetect's TF.js reader against TensorFlow.js itself on the same random input.

    cd SOMEWHERE && npm install @tensorflow/tfjs@4 && python check_reader.py --node-dir SOMEWHERE

Runs reference.js (TF.js, CPU backend) and emodetect.vision.tfjs on one random batch for each
model in ../shared/models/faceres and prints the largest absolute and relative differences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from emodetect.vision.tfjs import read_tfjs_graph

HERE = Path(__file__).resolve().parent
MODELS = [("faceres-deep.json", 224, "global_pooling/Mean", 255.0),
          ("faceres.json", 224, "global_pooling/Mean", 255.0),
          ("mobilefacenet.json", 112, "embeddings", 1.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=str(HERE.parents[3] / "shared" / "models" / "faceres"))
    parser.add_argument("--node-dir", required=True, help="folder with node_modules/@tensorflow/tfjs")
    parser.add_argument("--out", default="", help="write the figures as JSON here")
    args = parser.parse_args()
    rows = []
    rng = np.random.default_rng(0)
    for name, size, output, scale in MODELS:
        x = (rng.random((2, size, size, 3)) * scale).astype("<f4")
        with tempfile.TemporaryDirectory() as tmp:
            x.tofile(f"{tmp}/in.bin")
            subprocess.run(["node", str(HERE / "reference.js"), f"{args.models}/{name}", f"{tmp}/in.bin",
                            "2", str(size), str(size), "3", output, f"{tmp}/out.bin"],
                           check=True, capture_output=True,
                           env=os.environ | {"NODE_PATH": str(Path(args.node_dir) / "node_modules")})
            ref = np.fromfile(f"{tmp}/out.bin", "<f4").reshape(2, -1)
        graph = read_tfjs_graph(f"{args.models}/{name}", outputs=[output]).eval()
        with torch.no_grad():
            ours = graph(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).reshape(2, -1).numpy()
        diff = float(np.abs(ours - ref).max())
        rows.append({"model": name, "output": output, "width": ref.shape[1], "max_abs_diff": diff,
                     "max_rel_diff": diff / float(np.abs(ref).max())})
        print(f"{name:20s} {output:22s} width {ref.shape[1]:5d}  max |diff| {diff:.2e}  "
              f"relative {rows[-1]['max_rel_diff']:.2e}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
