"""The reference for emodetect.text.mpnet: all-mpnet-base-v2's sentence embeddings from Hugging Face
`transformers` (MPNetModel, its own tokenizer, mean pooling over the attention mask, L2 norm, as
sentence-transformers does), and the same from ours, compared.

Two environments, so `transformers` never enters the project's: a throwaway venv makes the
reference, the project compares.

    python -m venv /tmp/mpnet_ref && /tmp/mpnet_ref/bin/pip install torch==2.13.0 transformers
    /tmp/mpnet_ref/bin/python docs/training/mpnet/reference.py make MODEL_DIR /tmp/mpnet_ref/out
    python docs/training/mpnet/reference.py compare MODEL_DIR /tmp/mpnet_ref/out
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SENTENCES = [
    "I am so happy today!",
    "i didnt feel humiliated",
    "i can go from feeling so hopeless to so damned hopeful just from being around someone who cares",
    "[NAME] is SO annoying!!! Why would anyone do that?",
    "This is the worst customer service I have ever experienced.",
    "Oh my god, you scared me!",
    "When my grandmother died, I felt a deep sorrow that lasted for months.",
    "I was ashamed when I forgot my best friend's birthday.",
    "Wow, I never expected that ending.",
    "Okay.",
    "The food was fine, nothing special, but the service was quick.",
    "Naïve café owners serve crème brûlée — déjà vu?",
    "won't, can't, shouldn't; 3.5% of 1,000 = 35",
    "東京 is a lovely city 😂😂",
    "Thanks so much, this made my day <3",
    "Ugh. Monday again.",
    "I feel guilty about lying to my parents.",
    "Get out of my house right now!",
    "That smell is absolutely disgusting, I think I'm going to be sick.",
    "We finally won the championship after ten years of trying, and the whole town celebrated in the "
    "streets until dawn, strangers hugging strangers, everyone singing, nobody wanting the night to end.",
]
MAX_TOKENS = 128  # tokenizer.json's truncation


def make(model_dir: str, out: str) -> None:
    import torch
    from transformers import AutoTokenizer, MPNetModel

    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = MPNetModel.from_pretrained(model_dir).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    Path(out).mkdir(parents=True, exist_ok=True)
    np.save(Path(out) / "embeddings.npy", torch.nn.functional.normalize(pooled, dim=-1).numpy())
    np.save(Path(out) / "input_ids.npy", batch["input_ids"].numpy())
    import transformers
    (Path(out) / "versions.json").write_text(json.dumps({"torch": torch.__version__,
                                                        "transformers": transformers.__version__}))


def compare(model_dir: str, out: str) -> dict:
    import torch

    from emodetect.text.mpnet import load_mpnet

    torch.set_num_threads(2)
    model, vocab = load_mpnet(model_dir)
    ref, ref_ids = np.load(Path(out) / "embeddings.npy"), np.load(Path(out) / "input_ids.npy")
    ids = vocab.encode(SENTENCES, MAX_TOKENS, trim=True).ids
    swapped = np.where(ids == 0, 1, np.where(ids == 1, 0, ids))  # ours -> Hugging Face's <s>/<pad> ids
    width = max(swapped.shape[1], ref_ids.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=1)  # noqa: E731
    result = {"same_token_ids": bool((pad(swapped) == pad(ref_ids)).all()),
              "reference": json.loads((Path(out) / "versions.json").read_text())}
    for name, bf16 in (("float32", False), ("bf16_autocast", True)):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            ours = model.sentence_embedding(torch.from_numpy(ids)).float().numpy()
        cosine = (ours * ref).sum(1)
        result[name] = {"max_abs_diff": float(np.abs(ours - ref).max()), "min_cosine": float(cosine.min()),
                        "mean_cosine": float(cosine.mean())}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    stage, model_dir, out = sys.argv[1:4]
    {"make": make, "compare": compare}[stage](model_dir, out)
