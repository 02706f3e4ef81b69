"""MPNet (emodetect.text.mpnet, MPNetVocabulary): a tiny random MPNet in Hugging Face's safetensors
layout, read by our module and checked against a small numpy MPNet written from the paper's and
Hugging Face's definitions (relative buckets, positions from 2, post-norm layers, mean pooling);
the tokenizer against Hugging Face's `tokenizers` set up as all-mpnet-base-v2's tokenizer.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from conftest import TEXT_FILLER, write_keyword_texts  # noqa: E402
from emodetect.errors import DataError, ModelError  # noqa: E402
from emodetect.text.corpus import load_texts  # noqa: E402
from emodetect.text.encoder import architecture  # noqa: E402
from emodetect.text.mpnet import MPNetEncoder, hf_names, load_mpnet, relative_buckets  # noqa: E402
from emodetect.text.wordpiece import MPNetVocabulary, WordPieceVocabulary, read_vocabulary  # noqa: E402

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "[PAD]", "[UNK]", "i", "am", "so", "happy", "sad", "to", "##day",
          "##s", "un", "##believ", "##able", "!", "?", ",", ".", "'", "t", "can", "cafe", "naive", "e", "##t",
          "<mask>"]
SIZES = {"hidden": 16, "layers": 2, "heads": 2, "intermediate": 32, "max_positions": 200}
REAL_MODEL = Path.home() / ".cache/emodetect-runs/mpnet/model/all-mpnet-base-v2"


def write_mpnet_folder(folder: Path, seed: int = 0, pieces: list[str] = PIECES,
                       sizes: dict[str, int] = SIZES) -> dict[str, np.ndarray]:
    """A tiny MPNet as the all-mpnet-base-v2 folder holds it; returns its weights (HF names)."""
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({
        "model_type": "mpnet", "hidden_size": sizes["hidden"], "num_hidden_layers": sizes["layers"],
        "num_attention_heads": sizes["heads"], "intermediate_size": sizes["intermediate"],
        "max_position_embeddings": sizes["max_positions"], "layer_norm_eps": 1e-5,
        "relative_attention_num_buckets": 32, "pad_token_id": 1, "vocab_size": len(pieces)}))
    gen = torch.Generator().manual_seed(seed)
    shapes = {name: p.shape for name, p in MPNetEncoder(len(pieces), 1, **sizes).state_dict().items()}
    weights = {f"mpnet.{theirs}": torch.randn(shapes[mine], generator=gen) * (0.3 if "norm" not in mine else 0.1)
               + (1.0 if mine.endswith("norm.weight") or mine.endswith("norm1.weight")
                  or mine.endswith("norm2.weight") else 0.0)
               for mine, theirs in hf_names(sizes["layers"]).items()}
    weights["mpnet.pooler.dense.weight"] = torch.zeros(sizes["hidden"], sizes["hidden"])  # unused, as upstream
    save_file(weights, str(folder / "model.safetensors"))
    return {k.removeprefix("mpnet."): v.double().numpy() for k, v in weights.items()}


def numpy_bucket(relative: int, num_buckets: int = 32, max_distance: int = 128) -> int:
    """One (key - query) distance's bucket, scalar by scalar (float32 like the reference)."""
    n = -relative
    half = num_buckets // 2
    out = half if n < 0 else 0
    n = abs(n)
    exact = half // 2
    if n < exact:
        return out + n
    scaled = np.log(np.float32(n) / np.float32(exact)) / np.float32(math.log(max_distance / exact)) * np.float32(half - exact)
    return out + min(half - 1, exact + int(scaled))


def numpy_mpnet(w: dict[str, np.ndarray], hf_ids: np.ndarray, layers: int, heads: int, eps: float = 1e-5) -> np.ndarray:
    """Unit-length mean-pooled last layer of Hugging Face's MPNetModel, in float64 numpy.
    Ids are Hugging Face's (<pad> = 1)."""
    erf = np.vectorize(math.erf)

    def norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[f"{name}.weight"] + w[f"{name}.bias"]

    def linear(x, name):
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    n, length = hf_ids.shape
    real = hf_ids != 1
    positions = np.cumsum(real, 1) * real + 1
    x = norm(w["embeddings.word_embeddings.weight"][hf_ids] + w["embeddings.position_embeddings.weight"][positions],
             "embeddings.LayerNorm")
    buckets = np.array([[numpy_bucket(k - q) for k in range(length)] for q in range(length)])
    bias = w["encoder.relative_attention_bias.weight"][buckets].transpose(2, 0, 1)[None]  # 1 x H x L x L
    bias = bias + np.where(real, 0.0, -1e9)[:, None, None, :]
    d = x.shape[-1] // heads
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q, k, v = (linear(x, f"{p}.attention.attn.{t}").reshape(n, length, heads, d).transpose(0, 2, 1, 3)
                   for t in "qkv")
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        attn = np.exp(scores - scores.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        context = (attn @ v).transpose(0, 2, 1, 3).reshape(n, length, heads * d)
        x = norm(linear(context, f"{p}.attention.attn.o") + x, f"{p}.attention.LayerNorm")
        hidden = linear(x, f"{p}.intermediate.dense")
        hidden = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
        x = norm(linear(hidden, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    pooled = (x * real[..., None]).sum(1) / real.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_relative_buckets_match_a_scalar_reference_past_the_longest_distance():
    length = 300  # past max_distance 128 both ways: the clamped last bucket of each half
    ours = relative_buckets(length).numpy()
    reference = np.array([[numpy_bucket(k - q) for k in range(length)] for q in range(length)])
    np.testing.assert_array_equal(ours, reference)
    assert set(np.unique(ours)) == set(range(32)) - {16}  # 16 would be distance 0 on the 'after' side


def test_mpnet_matches_a_numpy_mpnet_with_padding_and_long_rows(tmp_path):
    """Rows of 150, 9 and 3 tokens in one padded batch: the relative bias (its log buckets and the
    clamp), positions from 2, the padding mask and the pooling, all against numpy."""
    weights = write_mpnet_folder(tmp_path / "mpnet")
    assert architecture(tmp_path / "mpnet") == "mpnet"
    model, vocab = load_mpnet(tmp_path / "mpnet")
    rng = np.random.default_rng(0)
    rows = [rng.integers(6, len(PIECES) - 1, size=n).tolist() for n in (148, 7, 1)]
    ours = vocab.pack(rows, 512, trim=True).ids  # <pad> = 0, <s> = 1 in MPNetVocabulary's ids
    hf_ids = ours.copy()
    hf_ids[ours == 0], hf_ids[ours == 1] = 1, 0  # Hugging Face's: <s> = 0, <pad> = 1
    assert hf_ids[0, 0] == 0 and hf_ids[0, -1] == 2 and (hf_ids[2, 3:] == 1).all()
    with torch.no_grad():
        got = model.sentence_embedding(torch.from_numpy(ours)).numpy()
    expected = numpy_mpnet(weights, hf_ids, SIZES["layers"], SIZES["heads"])
    np.testing.assert_allclose(got, expected, atol=2e-5)
    with torch.no_grad():  # a row alone reads as in the batch: padding changes nothing
        alone = model.sentence_embedding(torch.from_numpy(ours[1:2, :9])).numpy()
    np.testing.assert_allclose(alone[0], got[1], atol=1e-5)


def test_mpnet_vocabulary_pads_with_0_and_round_trips(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(PIECES) + "\n", encoding="utf-8")
    vocab = MPNetVocabulary.from_file(path)
    assert vocab.tokens[:3] == ["<pad>", "<s>", "</s>"] and vocab.unk == PIECES.index("[UNK]")
    encoded = vocab.encode(["I am SO happy today!", "Unbelievable, naïve café?", "zzz"], 12)
    pieces = ("i", "am", "so", "happy", "to", "##day", "!")
    assert encoded.ids[0].tolist()[:9] == [1, *[vocab.index[t] for t in pieces], 2]
    assert vocab.split("Unbelievable, naïve café?") == ["un", "##believ", "##able", ",", "naive", "cafe", "?"]
    assert encoded.ids[2].tolist()[:3] == [1, vocab.unk, 2] and encoded.ids[2, 3:].sum() == 0
    again = read_vocabulary(json.loads(json.dumps(vocab.to_dict())))
    assert type(again) is MPNetVocabulary and again.tokens == vocab.tokens
    with pytest.raises(ModelError, match="mpnet-wordpiece"):
        WordPieceVocabulary.from_dict(vocab.to_dict())
    bert_order = tmp_path / "bert.txt"
    bert_order.write_text("\n".join(["[PAD]", *PIECES[:4], *PIECES[5:]]) + "\n", encoding="utf-8")
    with pytest.raises(ModelError, match="starts with <s>, <pad>"):
        MPNetVocabulary.from_file(bert_order)


def mpnet_reference_tokenizer(vocab_file: Path):
    """Hugging Face's tokenizer as all-mpnet-base-v2's tokenizer.json sets it up."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tokens = vocab_file.read_text(encoding="utf-8").splitlines()
    tokenizer = Tokenizer(WordPiece({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]",
                                    max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=None, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    return tokenizer


def as_hf_ids(ids: np.ndarray) -> list[int]:
    """MPNetVocabulary's ids of one row as Hugging Face's (<s> and <pad> trade places), padding dropped."""
    return [{1: 0}.get(int(i), int(i)) for i in ids if i]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("abcdehilmnostuy ,.!?'-éÉïÀ东京\t\n\u200b\x00😂") + PIECES[6:-1]),
                max_size=30).map("".join))
def test_mpnet_tokenizer_matches_hugging_face_tokenizers(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "mpnet_vocab.txt"
    if not path.exists():
        path.write_text("\n".join(PIECES) + "\n", encoding="utf-8")
    reference = mpnet_reference_tokenizer(path)
    ours = MPNetVocabulary.from_file(path).encode([text], 512).ids[0]
    assert as_hf_ids(ours) == reference.encode(text).ids


@pytest.mark.skipif(not (REAL_MODEL / "tokenizer.json").is_file(), reason="all-mpnet-base-v2 not fetched")
def test_real_mpnet_vocabulary_matches_its_tokenizer_json():
    """Only where docs/training/mpnet/README.md's folder was fetched: its own tokenizer.json."""
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(REAL_MODEL / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    vocab = MPNetVocabulary.from_file(REAL_MODEL / "vocab.txt")
    texts = ["i didnt feel humiliated", "[NAME] is SO annoying!!! 😤", "Naïve café — déjà vu?",
             "When my grandmother died, I felt a deep sorrow.", "东京 is lovely", "won't, can't; 3.5%"]
    for text in texts:
        assert as_hf_ids(vocab.encode([text], 512).ids[0]) == reference.encode(text).ids, text


# A tiny MPNet that can learn write_keyword_texts' three labels: hidden 32, three layers, and a
# position table of 42 rows (40 tokens a row: positions start at 2) that long texts run past.
WORDS = {"angry": ["furious", "outraged"], "happy": ["delighted", "thrilled"], "sad": ["miserable", "gloomy"]}
TRAIN_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", *dict.fromkeys(TEXT_FILLER),
                *(w for words in WORDS.values() for w in words), "<mask>"]
TRAIN_SIZES = {"hidden": 32, "layers": 3, "heads": 4, "intermediate": 64, "max_positions": 42}


def test_mpnet_trains_exports_and_reads_as_torch_does(tmp_path):
    """The whole path for an MPNet folder: train --pretrained (an MPNetEncoder, not BERT's, with
    MPNet's tokenizer and ids), export (the tokenizer inside the ONNX file), then TextEmotion,
    `emodetect text` and `emodetect evaluate` answer as the checkpoint's torch model does, and a
    text past the position table is cut to it, not read past it."""
    from typer.testing import CliRunner

    from emodetect.checkpoint import Checkpoint
    from emodetect.cli import app
    from emodetect.text.pipeline import TextEmotion

    folder = tmp_path / "mpnet"
    weights = write_mpnet_folder(folder, pieces=TRAIN_PIECES, sizes=TRAIN_SIZES)
    data = write_keyword_texts(tmp_path / "texts.csv", WORDS, n=150)
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", str(data), "--model", "text_encoder", "--pretrained", str(folder),
                                 "--out", str(tmp_path / "run"), "--train-split", "train", "--val-split", "validation",
                                 "--epochs", "1", "--batch-size", "16", "--optimizer", "adamw", "--lr", "1e-3",
                                 "--no-bf16", "--ema-decay", "0", "--threads", "1"])
    assert result.exit_code == 0, result.output
    checkpoint = Checkpoint.read(tmp_path / "run" / "best.pt")
    assert checkpoint.model_kwargs["architecture"] == "mpnet" and checkpoint.extras["max_positions"] == 40
    assert checkpoint.extras["vocab"]["tokenizer"] == "mpnet-wordpiece-v1"
    model = checkpoint.build_model().eval()
    assert type(model) is MPNetEncoder
    # Loaded, then trained a few steps: still the pretrained weights (a fresh init is nowhere near),
    # with <s> and <pad> traded to MPNetVocabulary's ids.
    state = {k: v.double().numpy() for k, v in model.state_dict().items()}
    words = weights["embeddings.word_embeddings.weight"]
    assert np.abs(state["words.weight"][1] - words[0]).max() < 0.05 < np.abs(state["words.weight"][1] - words[1]).max()
    assert np.abs(state["relative_bias.weight"] - weights["encoder.relative_attention_bias.weight"]).max() < 0.05

    onnx = tmp_path / "mpnet.onnx"
    result = runner.invoke(app, ["export", str(tmp_path / "run" / "best.pt"), "--out", str(onnx)])
    assert result.exit_code == 0, result.output
    reader = TextEmotion(onnx, threads=1)
    assert type(reader.vocab) is MPNetVocabulary and reader.max_tokens == 40
    texts = ["we went home thrilled", "my friend was furious at work", "it was a gloomy day",
             " ".join(["the day was miserable"] * 20), "Delighted!"]
    got = reader.probabilities(texts)
    # Torch from the checkpoint, with the tokenizer read from the pretrained folder itself.
    vocab = MPNetVocabulary.from_file(folder / "vocab.txt")
    encoded = vocab.encode(texts, 40)
    assert encoded.truncated.tolist() == [False, False, False, True, False]
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(encoded.ids)), 1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert reader.predict(texts)[3].truncated

    result = runner.invoke(app, ["text", "--model", str(onnx), "--json", "--threads", "1", *texts[:3]])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    shown = np.array([[line["probabilities"][label] for label in checkpoint.labels] for line in lines])
    np.testing.assert_allclose(shown, expected[:3], atol=1e-4)  # JSON rounds to 4 digits

    result = runner.invoke(app, ["evaluate", str(onnx), str(data), "--split", "validation",
                                 "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    val = load_texts(data, "validation")
    with torch.no_grad():
        val_probs = torch.softmax(model(torch.from_numpy(vocab.encode(val.texts, 40).ids)), 1).numpy()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["accuracy"] == pytest.approx(float((val_probs.argmax(1) == val.class_indices()).mean()))


def test_a_bad_mpnet_folder_is_refused_with_the_reason(tmp_path):
    """--pretrained reads config.json's model_type: an MPNet folder with a BERT-ordered vocab.txt, or
    an architecture emodetect does not read, is a DataError naming the folder and why."""
    from emodetect.text.data import _pretrained_encoder

    folder = tmp_path / "mpnet"
    write_mpnet_folder(folder)
    encoder = _pretrained_encoder(str(folder))
    assert encoder.kind == "mpnet" and encoder.row_tokens == SIZES["max_positions"] - 2
    assert encoder.model_kwargs == {"architecture": "mpnet", **SIZES, "eps": 1e-5, "buckets": 32}
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", *PIECES[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="starts with <s>, <pad>"):
        _pretrained_encoder(str(folder))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(DataError, match="model_type 'roberta'"):
        _pretrained_encoder(str(folder))
    (folder / "config.json").write_text("[]")
    with pytest.raises(DataError, match="config.json"):
        _pretrained_encoder(str(folder))
