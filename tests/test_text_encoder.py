"""A pretrained text encoder (emodetect.text.encoder, .wordpiece): BERT's tokenizer to the id, the
Hugging Face weights loaded by name, padding that changes nothing, and the whole path a user takes:
train --pretrained, export --int8 with no calibration data, TextEmotion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from emodetect.runtime import OnnxModel

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from conftest import TEXT_FILLER, write_keyword_texts  # noqa: E402
from emodetect.cli import app  # noqa: E402
from emodetect.errors import ModelError  # noqa: E402
from emodetect.text.encoder import TextEncoder, encoder_sizes, hf_names  # noqa: E402
from emodetect.text.wordpiece import WordPieceVocabulary  # noqa: E402

WORDS = {"angry": ["furious", "outraged", "livid"], "happy": ["delighted", "thrilled", "glad"],
         "sad": ["miserable", "gloomy", "heartbroken"]}
FILLER = TEXT_FILLER
PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *FILLER, "un", "##believ", "##able", "believ", "##e",
          "fur", "##ious", "out", "##raged", "liv", "##id", "delight", "##ed", "thrill", "glad", "mis", "##er",
          "##able", "gloom", "##y", "heart", "##broken", "!", "?", ",", ".", "'", "s", "##s", "e", "##t",
          "cafe", "naive", "i", "can", "don", "t"]
SIZES = {"hidden": 16, "layers": 2, "heads": 2, "intermediate": 32, "max_positions": 40}


def write_vocab(path):
    path.write_text("\n".join(dict.fromkeys(PIECES)) + "\n", encoding="utf-8")
    return path


def write_bert_folder(folder, seed=0):
    """A tiny BERT in Hugging Face's layout: vocab.txt, config.json, model.safetensors."""
    from safetensors.torch import save_file

    folder.mkdir()
    vocab = WordPieceVocabulary.from_file(write_vocab(folder / "vocab.txt"))
    (folder / "config.json").write_text(json.dumps({
        "hidden_size": SIZES["hidden"], "num_hidden_layers": SIZES["layers"], "num_attention_heads": SIZES["heads"],
        "intermediate_size": SIZES["intermediate"], "max_position_embeddings": SIZES["max_positions"],
        "layer_norm_eps": 1e-12, "vocab_size": len(vocab)}))
    torch.manual_seed(seed)
    source = TextEncoder(len(vocab), 2, **SIZES).state_dict()
    weights = {f"bert.{theirs}": source[mine].clone() for mine, theirs in hf_names(SIZES["layers"]).items()}
    weights["bert.embeddings.token_type_embeddings.weight"] = torch.randn(2, SIZES["hidden"])
    save_file(weights, str(folder / "model.safetensors"))
    return folder, weights


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("abcdefghilmnorstuy ,.!?'-éÉïÀ东京\t\n\u200b\x00😂") + FILLER[:6] + PIECES[5:]),
                max_size=30).map("".join))
def test_wordpiece_matches_hugging_face_tokenizers(tmp_path_factory, text):
    """Pieces and their mix with punctuation, accents, CJK, control characters and emoji. (A text
    that spells a special token, "[CLS]", differs on purpose: Hugging Face reads it as the control
    token, we as the characters a user typed.)"""
    from tokenizers import BertWordPieceTokenizer

    path = tmp_path_factory.getbasetemp() / "vocab.txt"
    if not path.exists():
        write_vocab(path)
    reference = BertWordPieceTokenizer(str(path), lowercase=True)
    ours = WordPieceVocabulary.from_file(path).encode([text], 512).ids[0]
    assert [int(i) for i in ours if i] == reference.encode(text).ids


def test_rows_keep_cls_and_sep_when_cut_and_trim_to_the_longest(tmp_path):
    vocab = WordPieceVocabulary.from_file(write_vocab(tmp_path / "vocab.txt"))
    assert vocab.split("Unbelievable!") == ["un", "##believ", "##able", "!"]
    assert vocab.split("zzz") == ["[UNK]"]
    rows = vocab.token_ids(["the day was unbelievable", "glad"])
    batch = vocab.pack(rows, 5)
    assert batch.ids.shape == (2, 5)
    assert batch.ids[0].tolist() == [vocab.cls, *rows[0][:3], vocab.sep]  # cut, [SEP] kept
    assert batch.ids[1].tolist() == [vocab.cls, rows[1][0], vocab.sep, 0, 0]
    assert batch.lengths.tolist() == [len(rows[0]) + 2, 3] and batch.truncated.tolist() == [True, False]
    assert vocab.pack(rows[1:], 50, trim=True).ids.shape == (1, 3)


def test_pretrained_weights_load_by_name_and_padding_changes_nothing(tmp_path):
    folder, weights = write_bert_folder(tmp_path / "bert")
    vocab = WordPieceVocabulary.from_file(folder / "vocab.txt")
    model = TextEncoder(len(vocab), 3, **encoder_sizes(folder))
    model.load_pretrained(folder)
    state = model.state_dict()
    for mine, theirs in hf_names(SIZES["layers"]).items():
        torch.testing.assert_close(state[mine], weights[f"bert.{theirs}"])
    torch.testing.assert_close(state["segment"], weights["bert.embeddings.token_type_embeddings.weight"][0])
    model.eval()
    ids = vocab.encode(["the day was unbelievable", "glad"], 12)
    short = vocab.encode(["the day was unbelievable", "glad"], 12, trim=True)
    with torch.no_grad():
        torch.testing.assert_close(model(torch.from_numpy(ids.ids)), model(torch.from_numpy(short.ids)))
    wrong = TextEncoder(len(vocab), 3, **{**SIZES, "hidden": 32, "intermediate": 64})
    with pytest.raises(ModelError, match="word_embeddings"):
        wrong.load_pretrained(folder)


def test_train_pretrained_export_int8_and_read(tmp_path):
    folder, _ = write_bert_folder(tmp_path / "bert")
    data = write_keyword_texts(tmp_path / "texts.csv", WORDS, n=270)
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", str(data), "--model", "text_encoder", "--pretrained", str(folder),
                                 "--out", str(tmp_path / "run"), "--train-split", "train", "--val-split", "validation",
                                 "--epochs", "12", "--batch-size", "16", "--optimizer", "adamw", "--lr", "1e-2",
                                 "--no-bf16", "--ema-decay", "0", "--threads", "1"])
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert max(entry["val_acc"] for entry in log) > 0.8  # three classes: chance is 1/3
    out = tmp_path / "encoder.onnx"
    result = runner.invoke(app, ["export", str(tmp_path / "run" / "best.pt"), "--out", str(out), "--int8"])
    assert result.exit_code == 0, result.output
    assert "max |torch - onnxruntime|" in result.output and (tmp_path / "encoder_int8.onnx").exists()

    from emodetect.text.pipeline import TextEmotion

    for path in (out, tmp_path / "encoder_int8.onnx"):
        reader = TextEmotion(path, threads=1)
        assert reader.max_tokens == SIZES["max_positions"]  # never past the position table
        results = reader.predict(["we went home thrilled", "my friend was furious at work",
                                  " ".join(["the day"] * 60), ""])
        assert [r.label for r in results[:2]] == ["happy", "angry"]
        assert results[2].truncated and results[3].error == "empty text"
        explanation = reader.explain("we went home thrilled")
        assert [e["token"] for e in explanation] == ["we", "went", "home", "thrill", "##ed"]
        assert max(explanation, key=lambda e: e["weight"])["token"] in ("thrill", "##ed")
    # Dynamic int8 scales activations per call, so the int8 copy reads one text per call.
    assert OnnxModel(tmp_path / "encoder_int8.onnx").one_per_call and not OnnxModel(out).one_per_call


def test_encoder_without_or_with_a_bad_pretrained_folder_is_refused(tmp_path):
    data = write_keyword_texts(tmp_path / "texts.csv", WORDS, n=24)
    common = ["train", "--data", str(data), "--model", "text_encoder", "--out", str(tmp_path / "run"),
              "--train-split", "train", "--val-split", "validation", "--epochs", "1", "--no-bf16"]
    result = CliRunner().invoke(app, common)
    assert result.exit_code != 0 and "--pretrained FOLDER" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, [*common, "--pretrained", str(tmp_path / "empty")])
    assert result.exit_code != 0
    assert "vocab.txt, config.json, model.safetensors" in result.output and "empty" in result.output
    result = CliRunner().invoke(app, [*common, "--pretrained", str(tmp_path / "empty"), "--embeddings", "v.txt"])
    assert result.exit_code != 0 and "--pretrained and --embeddings" in result.output


def test_bundled_minilm_reads_alone_or_batched_alike_and_answers_in_every_head():
    """The bundled encoder: a text's answer does not depend on the texts batched with it (dynamic
    int8 sets its activation scale per call, which moved probabilities by up to 0.14 and flipped
    3% of the labels when texts were batched, so the runtime reads one text per call), every head
    answers, and a text past the 512-piece position table is read up to it and flagged."""
    from emodetect.text.pipeline import TextEmotion

    reader = TextEmotion("minilm-int8", threads=1)
    assert reader.heads == ["goemotions", "dair", "isear"] and reader.max_tokens == 512
    texts = ["Thank you so much, this made my day!", "I can't believe they cancelled it again.",
             "We were walking home when a car nearly hit my little brother, and I froze. " * 3, "ok",
             "unbelievably frustrating " * 300]
    together = reader.predict(texts)
    for text, batched in zip(texts, together):
        (alone,) = reader.predict([text])
        assert alone.label == batched.label
        np.testing.assert_allclose(list(alone.probabilities.values()), list(batched.probabilities.values()),
                                   atol=1e-6)
        assert set(batched.heads) == {"goemotions", "dair", "isear"}
    assert together[4].truncated and not any(r.truncated for r in together[:4])
    pieces = [e["token"] for e in reader.explain("unbelievably frustrating")]
    assert pieces == reader.vocab.split("unbelievably frustrating") and len(pieces) >= 2
