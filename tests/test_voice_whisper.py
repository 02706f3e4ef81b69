"""The Whisper encoder reader and the voice model built on it, on a tiny random encoder written in
CTranslate2's binary format by our own writer: no download, no CTranslate2."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emodetect.voice import whisper as W  # noqa: E402

WIDTH, HEADS, LAYERS, POSITIONS = 16, 2, 2, 64


def sinusoids(length: int, channels: int) -> np.ndarray:
    """Whisper's position table."""
    increment = math.log(10000) / (channels // 2 - 1)
    inv = np.exp(-increment * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def random_variables(seed: int = 0) -> dict[str, np.ndarray]:
    """A WhisperSpec-shaped encoder (and one decoder variable, which the encoder must ignore), with
    float16 weights as faster-whisper's files store them."""
    rng = np.random.default_rng(seed)

    def w(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    v = {"encoder/conv1/weight": w(WIDTH, W.N_MELS, 3, scale=0.05), "encoder/conv1/bias": w(WIDTH),
         "encoder/conv2/weight": w(WIDTH, WIDTH, 3), "encoder/conv2/bias": w(WIDTH)}
    for i in range(LAYERS):
        p = f"encoder/layer_{i}"
        qkv_bias = w(3 * WIDTH)
        qkv_bias[WIDTH:2 * WIDTH] = 0  # Whisper's key projection has no bias
        v |= {f"{p}/self_attention/layer_norm/gamma": (1 + w(WIDTH, scale=0.1)).astype(np.float16),
              f"{p}/self_attention/layer_norm/beta": w(WIDTH, scale=0.1),
              f"{p}/self_attention/linear_0/weight": w(3 * WIDTH, WIDTH), f"{p}/self_attention/linear_0/bias": qkv_bias,
              f"{p}/self_attention/linear_1/weight": w(WIDTH, WIDTH), f"{p}/self_attention/linear_1/bias": w(WIDTH),
              f"{p}/ffn/layer_norm/gamma": (1 + w(WIDTH, scale=0.1)).astype(np.float16),
              f"{p}/ffn/layer_norm/beta": w(WIDTH, scale=0.1),
              f"{p}/ffn/linear_0/weight": w(4 * WIDTH, WIDTH), f"{p}/ffn/linear_0/bias": w(4 * WIDTH),
              f"{p}/ffn/linear_1/weight": w(WIDTH, 4 * WIDTH), f"{p}/ffn/linear_1/bias": w(WIDTH)}
    v |= {"encoder/layer_norm/gamma": np.ones(WIDTH, np.float16), "encoder/layer_norm/beta": np.zeros(WIDTH, np.float16),
          "encoder/num_heads": np.array(HEADS, np.int16),
          "encoder/position_encodings/encodings": sinusoids(POSITIONS, WIDTH).astype(np.float16),
          "decoder/embeddings/weight": w(10, WIDTH)}
    return v


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("whisper") / "model.bin"
    W.write_ct2(path, random_variables(), aliases={"decoder/projection/weight": "decoder/embeddings/weight"})
    return path


def reference_encoder(v: dict[str, np.ndarray], mel: np.ndarray) -> np.ndarray:
    """Whisper's encoder written out in numpy, straight from the CTranslate2 names."""
    import math

    erf = np.vectorize(math.erf)
    v = {k.removeprefix("encoder/"): np.asarray(a, np.float64) for k, a in v.items() if k.startswith("encoder/")}
    gelu = lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))  # noqa: E731

    def conv(x, weight, bias, stride):
        x = np.pad(x, ((0, 0), (1, 1)))
        steps = range(0, x.shape[1] - 2, stride)
        return np.stack([np.einsum("oik,ik->o", weight, x[:, s:s + 3]) for s in steps], axis=1) + bias[:, None]

    def ln(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * v[f"{p}/gamma"] + v[f"{p}/beta"]

    x = gelu(conv(mel, v["conv1/weight"], v["conv1/bias"], 1))
    x = gelu(conv(x, v["conv2/weight"], v["conv2/bias"], 2)).T
    x = x + v["position_encodings/encodings"][:len(x)]
    head = WIDTH // HEADS
    for i in range(LAYERS):
        p = f"layer_{i}"
        qkv = ln(x, f"{p}/self_attention/layer_norm") @ v[f"{p}/self_attention/linear_0/weight"].T \
            + v[f"{p}/self_attention/linear_0/bias"]
        q, k, val = np.split(qkv, 3, axis=1)
        out = []
        for h in range(HEADS):
            s = slice(h * head, (h + 1) * head)
            scores = q[:, s] @ k[:, s].T / np.sqrt(head)
            weights = np.exp(scores - scores.max(1, keepdims=True))
            out.append(weights / weights.sum(1, keepdims=True) @ val[:, s])
        x = x + np.concatenate(out, 1) @ v[f"{p}/self_attention/linear_1/weight"].T + v[f"{p}/self_attention/linear_1/bias"]
        hidden = gelu(ln(x, f"{p}/ffn/layer_norm") @ v[f"{p}/ffn/linear_0/weight"].T + v[f"{p}/ffn/linear_0/bias"])
        x = x + hidden @ v[f"{p}/ffn/linear_1/weight"].T + v[f"{p}/ffn/linear_1/bias"]
    return ln(x, "layer_norm")


def test_reader_gives_back_what_the_writer_wrote(model_file):
    written = random_variables()
    model = W.read_ct2(model_file)
    assert (model.spec, model.revision, model.version) == ("WhisperSpec", 3, 6)
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert set(model.variables) == set(written) | {"decoder/projection/weight"}
    for name, value in written.items():
        got = model.variables[name]
        assert got.shape == value.shape, name
        np.testing.assert_array_equal(got, value.astype(got.dtype), err_msg=name)
    assert model.variables["encoder/conv1/weight"].dtype == np.float32  # float16 widened
    assert int(model.variables["encoder/num_heads"]) == HEADS


def test_int8_weights_are_dequantised_with_their_row_scales(tmp_path):
    weight = np.array([[1.0, -0.5], [0.25, 0.125]], np.float32)
    scale = 127 / np.abs(weight).max(axis=1)
    path = W.write_ct2(tmp_path / "q.bin", {"w": np.round(weight * scale[:, None]).astype(np.int8),
                                             "w_scale": scale.astype(np.float32)})
    got = W.read_ct2(path).variables
    assert set(got) == {"w"}
    np.testing.assert_allclose(got["w"], weight, atol=0.01)


def test_reader_refuses_an_unknown_binary_version(tmp_path):
    from emodetect.errors import ModelError

    (tmp_path / "bad.bin").write_bytes((99).to_bytes(4, "little"))
    # a model file that cannot be used: one line naming it, in the error family (still a ValueError)
    with pytest.raises(ModelError, match="binary version 99") as refused:
        W.read_ct2(tmp_path / "bad.bin")
    assert refused.value.reason == "unsupported"


def test_a_model_file_cut_anywhere_is_one_error_naming_it(tmp_path):
    """Cut inside the header, the index or a shape: a ModelError naming the file, never a raw
    struct.error traceback."""
    from emodetect.errors import ModelError

    whole = W.write_ct2(tmp_path / "whole.bin", {"encoder/w": np.ones((3, 2), np.float32)}).read_bytes()
    for cut in (2, 6, 12, 20, 30, len(whole) - 30):
        part = tmp_path / f"cut{cut}.bin"
        part.write_bytes(whole[:cut])
        with pytest.raises(ModelError, match=f"cut{cut}.bin"):
            W.read_ct2(part)


def test_encoder_matches_whisper_written_out_in_numpy(model_file):
    encoder = W.load_whisper_encoder(model_file).eval()
    assert (encoder.width, encoder.depth, len(encoder.blocks)) == (WIDTH, LAYERS, LAYERS)
    mel = np.random.default_rng(1).standard_normal((W.N_MELS, 41)).astype(np.float32)
    with torch.no_grad():
        got = encoder(torch.from_numpy(mel)[None])[0].numpy()
    expected = reference_encoder(W.read_ct2(model_file).variables, mel)
    assert got.shape == (21, WIDTH)  # stride 2: ceil(41 / 2) frames
    np.testing.assert_allclose(got, expected, atol=2e-4)
    # hidden_states: each layer's output, the last one before the final LayerNorm.
    with torch.no_grad():
        states = encoder.hidden_states(torch.from_numpy(mel)[None])
        np.testing.assert_allclose(encoder.ln_post(states[-1])[0].numpy(), got, atol=1e-5)


def test_front_end_is_whispers_log_mel():
    """The graph's DFT-as-convolution log-mel against numpy's FFT with Whisper's recipe."""
    rng = np.random.default_rng(2)
    wave = (rng.standard_normal(8000) * 0.1 * np.hanning(8000)).astype(np.float32)
    with torch.no_grad():
        got = W.build_front_end()(torch.from_numpy(wave)[None])[0].numpy()
    padded = np.pad(wave.astype(np.float64), (200, 200), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.stack([padded[s:s + 400] * window for s in range(0, len(padded) - 399, 160)])
    power = np.abs(np.fft.rfft(frames, axis=1)[:-1]) ** 2
    log_spec = np.log10(np.maximum(power @ W.mel_filters().T.astype(np.float64), 1e-10)).T
    expected = (np.maximum(log_spec, log_spec.max() - 8) + 4) / 4
    assert got.shape == (W.N_MELS, len(wave) // W.HOP_LENGTH)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_mel_filters_are_whispers():
    """Figures of faster-whisper 1.2.1's FeatureExtractor(80).mel_filters (librosa's Slaney mel),
    which our filterbank matched exactly (max difference 0.0)."""
    bank = W.mel_filters()
    assert bank.shape == (80, 201)
    assert bank.max() == pytest.approx(0.025880685, abs=1e-8)
    np.testing.assert_allclose(bank[[0, 10, 40, 79]].sum(axis=1), [0.024863, 0.024863, 0.026665, 0.024925], atol=2e-6)
    assert bank[[0, 10, 40, 79]].argmax(axis=1).tolist() == [1, 10, 43, 192]


def test_exported_whisper_voice_model_runs_in_the_voice_pipeline(model_file, tmp_path):
    """One ONNX file, waveform in, probabilities out, read by VoiceEmotion through its metadata."""
    from emodetect.export import export_onnx
    from emodetect.voice.pipeline import VoiceEmotion

    labels = ["angry", "happy", "sad"]
    torch.manual_seed(0)
    heads = [W.build_head(LAYERS * 2 * WIDTH, len(labels), hidden=8) for _ in range(2)]
    model = W.build_emotion_model(W.build_front_end(), W.load_whisper_encoder(model_file), heads).eval()
    example = torch.zeros(1, 16000)
    path = export_onnx(model, example, tmp_path / "w.onnx", W.onnx_metadata(labels, window_s=1.0, name="tiny-test"),
                       input_name="wave")
    reader = VoiceEmotion(path)
    assert reader.labels == tuple(labels) and reader.model_window_s == 1.0
    rng = np.random.default_rng(3)
    speech = (np.sin(2 * np.pi * 220 * np.arange(40000) / 16000) * 0.3 + rng.standard_normal(40000) * 0.01)
    result = reader.predict(speech.astype(np.float32), 16000)
    assert result.label in labels and len(result.voiced) >= 2
    # The graph on one window is the torch model on it (the probabilities, through the softmax).
    window = speech[:16000].astype(np.float32)[None]
    with torch.no_grad():
        expected = model(torch.from_numpy(window)).softmax(-1).numpy()
    np.testing.assert_allclose(reader.model.predict(window), expected, atol=1e-4)
    assert json.loads(reader.model.metadata["extras"])["feature"] == W.FEATURE
