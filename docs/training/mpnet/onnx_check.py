"""all-mpnet-base-v2 through the path a fine-tuned MPNet takes (issue 36): read the folder as
`train --pretrained` does, write a checkpoint, `emodetect export` it, open the ONNX file with
TextEmotion, and compare its tokens and embeddings with the torch module and with the folder's own
tokenizer.json. No training: the "head" is the identity over the 768-d mean, multi-label, so the
file's sigmoid outputs give the pooled vector back (logit of each), which is then L2-normalised
as sentence-transformers does.

    python docs/training/mpnet/onnx_check.py checkpoint MODEL_DIR /tmp/mpnet_check/mpnet.pt
    emodetect export /tmp/mpnet_check/mpnet.pt --out /tmp/mpnet_check/mpnet.onnx --int8
    python docs/training/mpnet/onnx_check.py compare MODEL_DIR /tmp/mpnet_check/mpnet.pt \\
        /tmp/mpnet_check/mpnet.onnx /tmp/mpnet_check/mpnet_int8.onnx
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from reference import SENTENCES  # noqa: E402

# One text longer than 128 pieces: past the relative buckets' max_distance and past the 128 tokens
# a trained checkpoint's max_tokens allows (TextEmotion reads a free-length encoder to 512).
TEXTS = [*SENTENCES[:8], " ".join(SENTENCES) * 2]


def checkpoint(folder: str, out: str) -> None:
    import torch

    from emodetect.checkpoint import Checkpoint
    from emodetect.registry import create_model
    from emodetect.text.data import _pretrained_encoder

    encoder = _pretrained_encoder(folder)
    hidden = encoder.model_kwargs["hidden"]
    model = create_model("text_encoder", num_classes=hidden, vocab_size=len(encoder.vocab), **encoder.model_kwargs)
    encoder.load(model)
    with torch.no_grad():
        model.head[1].weight.copy_(torch.eye(hidden))
        model.head[1].bias.zero_()
    extras = {"vocab": encoder.vocab.to_dict(), "max_tokens": 128, "max_positions": encoder.row_tokens}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Checkpoint(config={"modality": "text", "data": "", "model": "text_encoder"}, modality="text",
               model_name="text_encoder", labels=[f"d{i}" for i in range(hidden)], weights=model.state_dict(),
               num_classes=hidden, model_kwargs={**encoder.model_kwargs, "vocab_size": len(encoder.vocab)},
               extras=extras, multilabel=True).save(out)
    print(f"{out}: {type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters")


def compare(folder: str, pt: str, *onnx_files: str) -> None:
    import torch
    import torch.nn.functional as F
    from tokenizers import Tokenizer

    from emodetect.checkpoint import Checkpoint
    from emodetect.text.pipeline import TextEmotion

    reference = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    model = Checkpoint.read(pt).build_model()
    out: dict = {}
    for path in onnx_files:
        reader = TextEmotion(path, threads=2)
        rows = reader.vocab.token_ids(TEXTS)
        theirs = [reference.encode(t).ids[1:-1] for t in TEXTS]  # without <s> </s>
        same = [[{1: 0, 0: 1}.get(i, i) for i in r] == t for r, t in zip(rows, theirs)]  # <s>/<pad> traded
        probs = reader.probabilities(TEXTS)
        ids = reader.vocab.encode(TEXTS, reader.max_tokens, trim=True).ids
        with torch.no_grad():
            pooled = model.pooled(torch.from_numpy(ids))
        expected = torch.sigmoid(pooled).numpy()
        recovered = np.log(probs.clip(1e-7, 1 - 1e-7)) - np.log1p(-probs.clip(1e-7, 1 - 1e-7))
        ours = F.normalize(torch.from_numpy(recovered), dim=-1).numpy()
        torch_unit = F.normalize(pooled, dim=-1).numpy()
        out[Path(path).name] = {
            "texts": len(TEXTS), "pieces": [len(r) for r in rows], "max_tokens_read": reader.max_tokens,
            "same_token_ids_as_tokenizer_json": all(same),
            "max_abs_diff_sigmoid": float(np.abs(probs - expected).max()),
            "max_abs_diff_unit_embedding": float(np.abs(ours - torch_unit).max()),
            "cosine_per_text": [round(float(c), 6) for c in (ours * torch_unit).sum(1)],
            "size_mb": round(Path(path).stat().st_size / 1e6, 1)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    {"checkpoint": checkpoint, "compare": compare}[sys.argv[1]](*sys.argv[2:])
