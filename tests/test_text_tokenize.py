"""The tokenizer and vocabulary that ship inside text models."""

from __future__ import annotations

import pytest

from emodetect.text.tokenize import NUM, Vocabulary, tokenize


def test_tokenize_words_punctuation_emoji_and_other_scripts():
    assert tokenize("I didn’t LOVE it!! 😀 [NAME] 42") == ["i", "didn't", "love", "it", "!", "!", "😀",
                                                           "[name]", NUM]
    assert tokenize("Привет, мир 日本語") == ["привет", ",", "мир", "日本語"]
    assert tokenize("   ") == []


def test_vocabulary_keeps_frequent_tokens_and_maps_the_rest_to_unk():
    vocab = Vocabulary.build(["good good day", "bad day", "rare"], min_count=2)
    assert vocab.tokens == ["<pad>", "<unk>", "day", "good"]
    encoded = vocab.encode(["good rare day", ""], max_tokens=4)
    assert encoded.ids.tolist() == [[3, 1, 2, 0], [0, 0, 0, 0]]
    assert encoded.lengths.tolist() == [3, 0]


def test_long_texts_are_truncated_and_flagged():
    vocab = Vocabulary.build(["a b"], min_count=1)
    encoded = vocab.encode(["a " * 100, "a b"], max_tokens=8)
    assert encoded.ids.shape == (2, 8)
    assert encoded.truncated.tolist() == [True, False]
    assert encoded.lengths[0] == 100


def test_vocabulary_round_trips_and_refuses_another_tokenizer():
    vocab = Vocabulary.build(["x y z x"], min_count=1)
    again = Vocabulary.from_dict(vocab.to_dict())
    assert again.tokens == vocab.tokens
    with pytest.raises(ValueError, match="tokenizer"):
        Vocabulary.from_dict({"tokenizer": "bpe-v9", "tokens": vocab.tokens})
