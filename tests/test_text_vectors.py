"""Pretrained word vectors (emodetect.text.vectors, kim_cnn_glove): read in both formats, extend the
vocabulary, stay frozen in training, and let the exported model read words training never saw."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from emodetect.errors import DataError
from emodetect.text.tokenize import Vocabulary
from emodetect.text.vectors import read_vectors
from conftest import TEXT_FILLER, write_keyword_texts

SEEN = {"anger": ["furious", "outraged"], "fear": ["scared", "terrified"], "joy": ["delighted", "thrilled"]}
UNSEEN = {"anger": ["livid", "irate"], "fear": ["afraid", "frightened"], "joy": ["glad", "cheerful"]}
FILLER = TEXT_FILLER
DIM = 16


def write_glove(path, seed=0):
    """Each emotion's words point the same way (plus a little noise); filler words are random."""
    rng = np.random.default_rng(seed)
    lines = []
    for k, label in enumerate(SEEN):
        direction = np.zeros(DIM)
        direction[k] = 3.0
        for word in SEEN[label] + UNSEEN[label]:
            lines.append([word, *(direction + 0.1 * rng.standard_normal(DIM))])
    for word in FILLER:
        lines.append([word, *(0.3 * rng.standard_normal(DIM))])
    path.write_text("".join(" ".join([w] + [f"{v:.5f}" for v in vec]) + "\n" for w, *vec in lines))
    return path


def write_texts(path, words, n=360, seed=0):
    return write_keyword_texts(path, words, n, seed)


def test_glove_text_and_wink_json_read_to_the_same_vectors(tmp_path):
    glove = read_vectors(write_glove(tmp_path / "v.txt"))
    wink = {"precision": 8, "dimensions": DIM, "words": glove.words,
            "vectors": {w: [*map(float, v), 1.0, i] for i, (w, v) in enumerate(zip(glove.words, glove.vectors))}}
    (tmp_path / "v.json").write_text(json.dumps(wink))
    again = read_vectors(tmp_path / "v.json")
    assert again.words == glove.words and again.dim == DIM
    np.testing.assert_allclose(again.vectors, glove.vectors, atol=1e-6)


def test_a_malformed_vectors_file_is_refused_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("good 0.1 0.2\nshort 0.1\n")
    with pytest.raises(DataError, match=r"bad.txt:2: 1 numbers"):
        read_vectors(bad)
    with pytest.raises(DataError, match="no such vectors file"):
        read_vectors(tmp_path / "missing.txt")


def test_vocabulary_keeps_pretrained_words_seen_once_and_adds_unseen_ones_in_order():
    vocab = Vocabulary.build(["good good day", "rare"], min_count=2,
                             pretrained=["rare", "lovely", "awful", "good"], extra=1)
    assert vocab.tokens == ["<pad>", "<unk>", "good", "rare", "lovely"]
    assert Vocabulary.build(["good good"], max_size=3, pretrained=["x"], extra=5).tokens == ["<pad>", "<unk>", "good"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from emodetect.export import export_checkpoint
    from emodetect.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("vectors")
    data = write_texts(tmp / "train.csv", SEEN)
    vectors = write_glove(tmp / "vectors.txt")
    common = dict(data=str(data), modality="text", train_split="train", val_split="validation", epochs=6,
                  batch_size=32, optimizer="adamw", lr=0.01, weight_decay=0.0, label_smoothing=0.0,
                  ema_decay=0.0, augment=False, bf16=False, threads=1)
    glove = train(TrainConfig(**common, out=str(tmp / "glove"), model="kim_cnn_glove", embeddings=str(vectors)))
    static = train(TrainConfig(**common, out=str(tmp / "static"), model="kim_cnn_static", embeddings=str(vectors)))
    plain = train(TrainConfig(**common, out=str(tmp / "plain"), model="kim_cnn_tiny"))
    return {name: (result, export_checkpoint(result.best_checkpoint, tmp / f"{name}.onnx").path)
            for name, result in (("glove", glove), ("static", static), ("plain", plain))}, vectors


def test_the_frozen_channel_holds_the_vectors_after_training(runs):
    import torch

    (result, _), vectors = runs[0]["glove"], read_vectors(runs[1])
    state = torch.load(result.best_checkpoint, weights_only=False)
    tokens = state["extras"]["vocab"]["tokens"]
    assert {"livid", "irate", "afraid", "glad"} <= set(tokens)  # unseen in training, added from the vectors
    table = state["weights"]["static.weight"].numpy()
    index = vectors.index()
    for word in ("livid", "furious", "the"):
        np.testing.assert_allclose(table[tokens.index(word)], vectors.vectors[index[word]], atol=1e-6)
    assert not table[0].any()  # padding


def test_words_never_trained_on_are_read_through_their_vectors(runs, tmp_path):
    from emodetect.text.pipeline import TextEmotion

    models, _ = runs
    rng = random.Random(3)
    texts, truth = [], []
    for label, words in UNSEEN.items():
        for word in words * 5:
            texts.append(" ".join([rng.choice(FILLER), word, rng.choice(FILLER), rng.choice(FILLER)]))
            truth.append(label)
    scores = {}
    for name, (_, onnx_path) in models.items():
        guesses = [r.label for r in TextEmotion(onnx_path).predict(texts)]
        scores[name] = np.mean([g == t for g, t in zip(guesses, truth)])
    assert scores["glove"] >= 0.9 and scores["static"] >= 0.9, scores
    assert scores["plain"] <= 0.6, scores  # without vectors these words are <unk>


def test_a_vector_channel_without_vectors_is_refused(tmp_path):
    from emodetect.train import TrainConfig, train

    data = write_texts(tmp_path / "train.csv", SEEN)
    for model in ("kim_cnn_glove", "kim_cnn_static"):
        with pytest.raises(DataError, match=f"--model {model} reads pretrained word vectors: give --embeddings"):
            train(TrainConfig(data=str(data), modality="text", model=model, out=str(tmp_path / model),
                              train_split="train", val_split="validation", epochs=1, bf16=False, threads=1))
