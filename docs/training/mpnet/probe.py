"""Is all-mpnet-base-v2 worth a full teacher pass? Frozen sentence embeddings of a sample of the
joint text corpus, linear heads per label set trained on them, scored on the validation splits
beside the bundled `default` text model on the same texts (issue 36).

    nice -n 15 python docs/training/mpnet/probe.py embed   # resumable; Ctrl-C keeps finished chunks
    nice -n 15 python docs/training/mpnet/probe.py heads   # on the chunks done so far

The sample: per corpus, `--train` (3,000) train rows in a seeded order, and every validation row.
Embeddings go to chunks of 64 texts (`<cache>/chunks-TRAIN-VAL/NNNNN.npy`, unit-length float16 rows) in a
shuffled order, so a pass cut short still covers every corpus and split in proportion. The heads:
softmax (or, for GoEmotions' 28, sigmoid) regression on the embeddings, fixed settings, no choice
made on validation; GoEmotions' thresholds are cross-fitted on the train sample's own predictions.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
CACHE = Path.home() / ".cache/emodetect-runs/mpnet"
MODEL = CACHE / "model/all-mpnet-base-v2"
CHUNK, BATCH, MAX_TOKENS = 64, 32, 128  # 128: the truncation tokenizer.json ships with
HEADS = {"main": "meld", "goemotions": "goemotions", "dair": "dair", "isear": "isear"}  # head: corpus scored


def joint_csv() -> Path:
    """The joint CSV (docs/training/text_shared/make_data.py), made once into the cache."""
    out = CACHE / "joint.csv"
    if not out.is_file():
        import importlib.util

        spec = importlib.util.spec_from_file_location("make_data", ROOT / "docs/training/text_shared/make_data.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(ROOT.parent / "shared/data/text", out)
    return out


def _per_corpus(rows: list[dict[str, str]], n: int, rng: np.random.Generator) -> np.ndarray:
    corpora = np.array([r["corpus"] for r in rows])
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(corpora == c))[:n] for c in sorted(set(corpora))]))


def sample(train_per_corpus: int, val_per_corpus: int, seed: int = 0):
    """(train dataset, validation dataset, train rows kept, validation rows kept): up to
    `train_per_corpus` and `val_per_corpus` seeded rows of each corpus."""
    from emodetect.text.corpus import load_texts

    train, val = load_texts(joint_csv(), "train"), load_texts(joint_csv(), "validation")
    rng = np.random.default_rng(seed)
    return train, val, _per_corpus(train.rows, train_per_corpus, rng), _per_corpus(val.rows, val_per_corpus, rng)


def texts_in_order(train_per_corpus: int, val_per_corpus: int) -> list[str]:
    """Every sampled text once, in the seeded shuffled order the chunks follow."""
    train, val, keep, val_keep = sample(train_per_corpus, val_per_corpus)
    texts = sorted({train.texts[i] for i in keep} | {val.texts[i] for i in val_keep})
    order = np.random.default_rng(1).permutation(len(texts))
    return [texts[i] for i in order]


def embed(args) -> None:
    import torch

    from emodetect.text.mpnet import load_mpnet

    torch.set_num_threads(args.threads)
    chunks = CACHE / f"chunks-{args.train}-{args.val}"
    listed = chunks / "texts.json"  # the order is fixed at the first start: resuming never shifts a chunk
    if listed.is_file():
        texts = json.loads(listed.read_text())
    else:
        known = cached_embeddings()  # a larger sample reuses a smaller one's texts
        texts = [t for t in texts_in_order(args.train, args.val) if t not in known]
        chunks.mkdir(parents=True, exist_ok=True)
        listed.write_text(json.dumps(texts))
    model, vocab = load_mpnet(MODEL)
    done = counted = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for k in range(0, len(texts), CHUNK):
        path = chunks / f"{k // CHUNK:05d}.npy"  # resume: a finished chunk is never redone
        if path.is_file():
            done += 1
            continue
        part = texts[k:k + CHUNK]
        rows = vocab.token_ids(part)
        order = np.argsort([len(r) for r in rows])  # batches of like lengths: less padding
        out = np.zeros((len(part), model.words.embedding_dim), np.float16)
        for b in range(0, len(part), BATCH):
            idx = order[b:b + BATCH]
            ids = torch.from_numpy(vocab.pack([rows[i] for i in idx], MAX_TOKENS, trim=True).ids)
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=args.bf16):
                out[idx] = model.sentence_embedding(ids).float().numpy()
        np.save(path, out)
        counted += len(part)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"chunk {k // CHUNK + 1}/{-(-len(texts) // CHUNK)}: {counted / wall:.2f} texts/s wall, "
              f"{counted / cpu:.2f} texts per CPU-second ({done} chunks were already done)", flush=True)


def cached_embeddings() -> dict[str, np.ndarray]:
    """Text -> embedding, for the texts of every chunk finished so far (of any sample size)."""
    out = {}
    for chunks in sorted(CACHE.glob("chunks-*")):
        texts = json.loads((chunks / "texts.json").read_text())
        for path in sorted(chunks.glob("*.npy")):
            k = int(path.stem) * CHUNK
            for text, row in zip(texts[k:k + CHUNK], np.load(path).astype(np.float32)):
                out[text] = row
    return out


def fit_head(x: np.ndarray, y: np.ndarray, multilabel: bool, epochs: int = 300, decay: float = 1e-4):
    """A linear head by full-batch Adam: softmax over the classes, or a sigmoid per label."""
    import torch

    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    head = torch.nn.Linear(x.shape[1], y.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=0.01, weight_decay=decay)
    loss_fn = (torch.nn.BCEWithLogitsLoss() if multilabel
               else lambda logits, target: torch.nn.functional.cross_entropy(logits, target.argmax(1)))
    for _ in range(epochs):
        opt.zero_grad()
        loss_fn(head(xt * 8), yt).backward()  # x8: unit-length rows need larger weights; Adam's steps are scale-free
        opt.step()

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = head(torch.from_numpy(z) * 8)
            return (logits.sigmoid() if multilabel else logits.softmax(1)).numpy()
    return predict


def score(truth: np.ndarray, probs: np.ndarray, multilabel: bool, thresholds=None) -> dict[str, float]:
    from emodetect.metrics import f1_table, macro_f1, multilabel_predictions

    if multilabel:
        pred = multilabel_predictions(probs, 0.5 if thresholds is None else thresholds)
        f1 = f1_table(truth > 0.5, pred)[2]
        return {"macro_f1": round(macro_f1(truth > 0.5, pred, f1)[0], 4)}
    t, p = truth.argmax(1), probs.argmax(1)
    pred = np.eye(truth.shape[1], dtype=bool)[p]
    _, _, f1, support = f1_table(truth > 0.5, pred)
    return {"accuracy": round(float((t == p).mean()), 4),
            "macro_f1": round(macro_f1(truth > 0.5, pred, f1)[0], 4),
            "weighted_f1": round(float((f1 * support).sum() / support.sum()), 4)}


def heads(args) -> None:
    from emodetect.metrics import cross_fitted_thresholds
    from emodetect.text.pipeline import TextEmotion

    train, val, keep, val_keep = sample(args.train, args.val)
    emb = cached_embeddings()
    default = TextEmotion("default", threads=args.threads)
    segments = {"main": (default.labels, default.thresholds if default.multilabel else None)}
    segments.update({s.name: (s.labels, t) for s, t in zip(default.head_segments, default.head_thresholds)})
    val_corpus = np.array([r["corpus"] for r in val.rows])
    report: dict[str, dict] = {"embedded_texts": len(emb)}
    for head, corpus in HEADS.items():
        labels, default_thresholds = segments[head]
        known, y = train.labelled_in(head, labels)
        rows = [i for i in keep if known[i] and train.texts[i] in emb]
        rows = [rows[j] for j in np.random.default_rng(0).permutation(len(rows))]  # x[:n]: every corpus
        known_index = np.cumsum(known) - 1
        x, y = np.stack([emb[train.texts[i]] for i in rows]), y[known_index[rows]]
        multilabel = head == "goemotions"
        vknown, vy = val.labelled_in(head, labels)
        vrows = [i for i in val_keep if vknown[i] and val_corpus[i] == corpus and val.texts[i] in emb]
        vy = vy[(np.cumsum(vknown) - 1)[vrows]]
        vx = np.stack([emb[val.texts[i]] for i in vrows])
        entry = {"labels": len(labels), "train_texts": len(rows), "validation_texts": len(vrows)}
        for n in sorted({100, len(rows)}):  # two points of a learning curve
            if n > len(rows):
                continue
            predict = fit_head(x[:n], y[:n], multilabel)
            thresholds = None
            if multilabel:  # tuned on the train sample's held-out halves, never on validation
                half = np.arange(n) % 2 == 0
                oof = np.zeros_like(y[:n])
                for a, b in ((half, ~half), (~half, half)):
                    oof[b] = fit_head(x[:n][a], y[:n][a], True)(x[:n][b])
                thresholds, shrink, _ = cross_fitted_thresholds(oof, y[:n])
            entry[f"mpnet_heads_{n}"] = score(vy, predict(vx), multilabel, thresholds)
        probs = default.outputs([val.texts[i] for i in vrows], batch_size=256)
        probs = probs[0] if head == "main" else probs[1][:, [s for s in default.head_segments if s.name == head][0].start
                                                          - len(default.labels):][:, :len(labels)]
        entry["default"] = score(vy, probs, multilabel, default_thresholds)
        report[f"{head} on {corpus} validation"] = entry
        print(head, json.dumps(entry), flush=True)
    out = ROOT / f"docs/training/mpnet/probe-{args.train}-{args.val}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["embed", "heads"])
    parser.add_argument("--train", type=int, default=3000, help="train rows per corpus")
    parser.add_argument("--val", type=int, default=100_000, help="validation rows per corpus (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="float32 (default: bf16 autocast)")
    args = parser.parse_args()
    {"embed": embed, "heads": heads}[args.stage](args)
