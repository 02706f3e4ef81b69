"""Whisper's pre-trained speech encoder as a torch module, read from a CTranslate2 `model.bin`, with an
emotion head on top: the voice model that starts from 680k hours of speech rather than from scratch.

Training code only (the `train` extra): torch is imported when a module is built. The model file
is the one `faster-whisper` runs (a CTranslate2 conversion of OpenAI's Whisper, MIT), read here
without CTranslate2: `read_ct2` parses its binary layout, `WhisperEncoder.from_variables` builds
the encoder (two convolutions with GELU, sinusoidal positions, pre-LN transformer layers, a final
LayerNorm), and `WhisperFrontEnd` computes Whisper's log-mel (80 mel bands, 16 kHz, 25 ms FFT,
10 ms hop, log10 floored 8 decades below the clip's peak) from the waveform, so the exported ONNX
takes 16 kHz samples and needs no feature code of its own at inference.

Layout of a CTranslate2 model.bin (binary version 6, little-endian), as its
`python/ctranslate2/specs/model_spec.py` writes it:

    u32 binary version | string spec name | u32 spec revision | u32 variable count
    per variable: string name | u8 rank | u32 x rank shape | u8 dtype | u32 byte count | bytes
    u32 alias count | per alias: string alias | string target

where a string is a u16 length (counting a trailing NUL) and its bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from emodetect.errors import ModelError

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms: 100 log-mel frames a second, 50 encoder frames a second
N_MELS = 80
FEATURE = "whisper-wave-v1"  # the ONNX takes 16 kHz samples; the log-mel is inside the graph

# CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_DTYPE_IDS = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
              np.dtype(np.float16): 4}


@dataclass
class Ct2Model:
    """A CTranslate2 model file: its spec (e.g. WhisperSpec), revision and named variables."""

    spec: str
    revision: int
    version: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def scope(self, prefix: str) -> dict[str, np.ndarray]:
        """Variables under `prefix/`, named relative to it."""
        start = prefix.rstrip("/") + "/"
        return {k[len(start):]: v for k, v in self.variables.items() if k.startswith(start)}


def _read_string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<H", f.read(2))
    return f.read(length).rstrip(b"\0").decode("utf-8")


def _write_string(f: BinaryIO, text: str) -> None:
    data = text.encode("utf-8") + b"\0"
    f.write(struct.pack("<H", len(data)))
    f.write(data)


def _read_ct2_variables(path: str | Path) -> tuple[str, int, int, dict[str, np.ndarray], dict[str, str]]:
    """The spec, revision, version, raw variables and aliases of a model.bin, in file order."""
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if not 3 <= version <= 6:
            raise ModelError(f"{path}: CTranslate2 binary version {version}; this reader knows 3 to 6", "unsupported")
        spec = _read_string(f)
        (revision,) = struct.unpack("<I", f.read(4))
        (count,) = struct.unpack("<I", f.read(4))
        raw: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = _read_string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank))
            (dtype_id,) = struct.unpack("<B", f.read(1))
            (nbytes,) = struct.unpack("<I", f.read(4))
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise ModelError(f"{path}: truncated inside variable {name!r}")
            dtype = _DTYPES.get(dtype_id)
            if dtype is None:
                raise ModelError(f"{path}: variable {name!r} has unknown dtype id {dtype_id}", "unsupported")
            if dtype == "bfloat16":  # the high half of a float32
                array = (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                array = np.frombuffer(data, dtype)
            raw[name] = array.reshape(shape)
        aliases = {}
        tail = f.read(4)
        if len(tail) == 4:
            for _ in range(struct.unpack("<I", tail)[0]):
                alias = _read_string(f)
                aliases[alias] = _read_string(f)
    return spec, revision, version, raw, aliases


def read_ct2(path: str | Path) -> Ct2Model:
    """Parse a CTranslate2 model.bin (binary versions 3-6) into numpy arrays.

    float16 and bfloat16 weights become float32; int8 weights with a `<name>_scale` companion
    (CTranslate2's per-row quantisation, weight = int8 / scale) are dequantised.
    """
    try:
        spec, revision, version, raw, aliases = _read_ct2_variables(path)
    except ModelError:
        raise
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        # A file cut short anywhere in its header or index (struct.error), or bytes that are not one.
        raise ModelError(f"{path}: not a whole CTranslate2 model.bin (truncated or damaged: {err})") from err
    variables = {}
    for name, array in raw.items():
        if name.endswith("_scale") and name[:-len("_scale")] in raw:
            continue
        scale = raw.get(name + "_scale")
        if array.dtype == np.int8 and scale is not None:
            scale = scale.astype(np.float32)
            array = array.astype(np.float32) / (scale.reshape(-1, *[1] * (array.ndim - 1)) if scale.ndim else scale)
        elif array.dtype in (np.float16, np.float32):
            array = array.astype(np.float32)
        variables[name] = array
    for alias, target in aliases.items():
        variables.setdefault(alias, variables[target])
    return Ct2Model(spec, revision, version, variables, aliases)


def write_ct2(path: str | Path, variables: dict[str, np.ndarray], spec: str = "WhisperSpec",
              revision: int = 3, aliases: dict[str, str] | None = None) -> Path:
    """Write variables in the same binary layout (version 6): for tests, which need no download."""
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 6))
        _write_string(f, spec)
        f.write(struct.pack("<I", revision))
        f.write(struct.pack("<I", len(variables)))
        for name, value in variables.items():
            array = np.asarray(value).copy(order="C")  # ascontiguousarray would make a scalar 1-d
            _write_string(f, name)
            f.write(struct.pack("<B", array.ndim))
            f.write(struct.pack(f"<{array.ndim}I", *array.shape))
            f.write(struct.pack("<B", _DTYPE_IDS[array.dtype]))
            data = array.tobytes()
            f.write(struct.pack("<I", len(data)))
            f.write(data)
        f.write(struct.pack("<I", len(aliases or {})))
        for alias, target in (aliases or {}).items():
            _write_string(f, alias)
            _write_string(f, target)
    return Path(path)


def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Whisper's filterbank: librosa.filters.mel(sr, n_fft, n_mels) with its defaults (Slaney mel
    scale, linear below 1 kHz and logarithmic above, area-normalised triangles), n_mels x (n_fft/2+1)."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def hz_to_mel(hz):
        hz = np.asarray(hz, dtype=np.float64)
        return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep,
                        hz / f_sp)

    def mel_to_hz(mel):
        mel = np.asarray(mel, dtype=np.float64)
        return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)

    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def _torch():
    import torch

    return torch


def build_front_end() -> Any:
    """WhisperFrontEnd(): 16 kHz waveform N x samples -> Whisper log-mel N x 80 x (samples // 160)."""
    torch = _torch()
    from torch import nn

    class WhisperFrontEnd(nn.Module):
        """Whisper's log-mel as graph operations (a DFT as a strided convolution, so the ONNX needs
        no STFT operator): reflect-padded centred frames, periodic Hann window, power, mel, log10,
        floored 8 decades below the window's peak, scaled as Whisper was trained."""

        def __init__(self):
            super().__init__()
            n = torch.arange(N_FFT, dtype=torch.float64)
            k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
            window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / N_FFT)  # periodic Hann
            angle = 2 * math.pi * k[:, None] * n[None] / N_FFT
            self.register_buffer("dft_real", (torch.cos(angle) * window)[:, None].float(), persistent=False)
            self.register_buffer("dft_imag", (-torch.sin(angle) * window)[:, None].float(), persistent=False)
            self.register_buffer("mel", torch.from_numpy(mel_filters()), persistent=False)

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.pad(wave[:, None], (N_FFT // 2, N_FFT // 2), mode="reflect")
            real = torch.nn.functional.conv1d(x, self.dft_real, stride=HOP_LENGTH)
            imag = torch.nn.functional.conv1d(x, self.dft_imag, stride=HOP_LENGTH)
            power = (real ** 2 + imag ** 2)[..., :-1]  # Whisper drops the last centred frame
            log_spec = torch.log10(torch.clamp(self.mel @ power, min=1e-10))
            peak = log_spec.amax(dim=(1, 2), keepdim=True)
            return (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0

    return WhisperFrontEnd()


def build_encoder(variables: dict[str, np.ndarray], layers: int | None = None) -> Any:
    """Whisper's audio encoder from the `encoder/` variables of a WhisperSpec model (shapes give the
    sizes: tiny 4 x 384, base 6 x 512); `layers` keeps only the first layers (for a cache of a lower
    layer's output)."""
    torch = _torch()
    from torch import nn

    heads = int(variables["num_heads"])
    width = variables["conv1/weight"].shape[0]
    depth = len({k.split("/")[0] for k in variables if k.split("/")[0].removeprefix("layer_").isdigit()})

    class Block(nn.Module):
        """Pre-LN transformer layer: x + attn(ln(x)), then x + mlp(ln(x))."""

        def __init__(self):
            super().__init__()
            self.attn_ln = nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)  # CTranslate2 fuses q, k (no bias: zeros), v
            self.out = nn.Linear(width, width)
            self.mlp_ln = nn.LayerNorm(width)
            self.fc1 = nn.Linear(width, 4 * width)
            self.fc2 = nn.Linear(4 * width, width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, t, _ = x.shape
            q, k, v = self.qkv(self.attn_ln(x)).view(n, t, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(-1, -2)) * (width // heads) ** -0.5
            attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, t, width)
            x = x + self.out(attended)
            return x + self.fc2(nn.functional.gelu(self.fc1(self.mlp_ln(x))))

    class WhisperEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(N_MELS, width, 3, padding=1)
            self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
            self.register_buffer("positions", torch.zeros(variables["position_encodings/encodings"].shape))
            self.blocks = nn.ModuleList(Block() for _ in range(depth if layers is None else layers))
            self.ln_post = nn.LayerNorm(width) if layers is None or layers == depth else None
            self.width, self.depth = width, depth

        def stem(self, mel: torch.Tensor) -> torch.Tensor:
            """log-mel N x 80 x T -> N x ceil(T/2) x width, positions added."""
            x = nn.functional.gelu(self.conv1(mel))
            x = nn.functional.gelu(self.conv2(x)).transpose(1, 2)
            return x + self.positions[:x.shape[1]]

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            x = self.stem(mel)
            for block in self.blocks:
                x = block(x)
            return self.ln_post(x) if self.ln_post is not None else x

        def hidden_states(self, mel: torch.Tensor) -> list[torch.Tensor]:
            """Each layer's output (before the final LayerNorm): what a feature cache keeps."""
            x, states = self.stem(mel), []
            for block in self.blocks:
                x = block(x)
                states.append(x)
            return states

    encoder = WhisperEncoder()
    load_encoder_weights(encoder, variables)
    return encoder


def _ln(module: Any, variables: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {f"{module}.weight": variables[f"{prefix}/gamma"], f"{module}.bias": variables[f"{prefix}/beta"]}


def _linear(module: str, variables: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {f"{module}.weight": variables[f"{prefix}/weight"], f"{module}.bias": variables[f"{prefix}/bias"]}


def encoder_state(variables: dict[str, np.ndarray], layers: int) -> dict[str, np.ndarray]:
    """CTranslate2 `encoder/` names -> the torch module's state dict names."""
    state = {"positions": variables["position_encodings/encodings"]}
    for conv in ("conv1", "conv2"):
        state |= _linear(conv, variables, conv)
    for i in range(layers):
        p = f"layer_{i}"
        state |= _ln(f"blocks.{i}.attn_ln", variables, f"{p}/self_attention/layer_norm")
        state |= _linear(f"blocks.{i}.qkv", variables, f"{p}/self_attention/linear_0")
        state |= _linear(f"blocks.{i}.out", variables, f"{p}/self_attention/linear_1")
        state |= _ln(f"blocks.{i}.mlp_ln", variables, f"{p}/ffn/layer_norm")
        state |= _linear(f"blocks.{i}.fc1", variables, f"{p}/ffn/linear_0")
        state |= _linear(f"blocks.{i}.fc2", variables, f"{p}/ffn/linear_1")
    return state


def load_encoder_weights(encoder: Any, variables: dict[str, np.ndarray]) -> None:
    torch = _torch()

    state = encoder_state(variables, len(encoder.blocks))
    if encoder.ln_post is not None:
        state |= _ln("ln_post", variables, "layer_norm")
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    missing, unexpected = encoder.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ModelError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")


def load_whisper_encoder(model_dir: str | Path, layers: int | None = None) -> Any:
    """The encoder of a faster-whisper model folder (or its model.bin)."""
    path = Path(model_dir)
    model = read_ct2(path / "model.bin" if path.is_dir() else path)
    if model.spec != "WhisperSpec":
        raise ModelError(f"{path}: a {model.spec}, not a WhisperSpec model", "unsupported")
    return build_encoder(model.scope("encoder"), layers)


def layer_statistics(states: list[Any], ln_post: Any) -> Any:
    """Statistics pooling over every layer: each layer's frames LayerNormed (the last with the
    encoder's own final LayerNorm, the others without scale or shift), then their mean and standard
    deviation over time, N x (layers * 2 * width). Lower layers keep more of the voice's pitch and
    timbre, the top one more of the words; the head weighs them."""
    torch = _torch()

    pooled, width = [], tuple(ln_post.normalized_shape)  # static, so the ONNX export needs no shape op
    for i, state in enumerate(states):
        h = ln_post(state) if i == len(states) - 1 else torch.nn.functional.layer_norm(state, width)
        mean = h.mean(dim=1)
        pooled += [mean, torch.sqrt(((h - mean[:, None]) ** 2).mean(dim=1) + 1e-6)]
    return torch.cat(pooled, dim=1)


def build_head(features: int, num_classes: int, hidden: int = 256, dropout: float = 0.3) -> Any:
    """Standardised pooled statistics (centre and scale from the training windows, set with
    `head.standardise`) -> one hidden layer -> logits."""
    torch = _torch()
    from torch import nn

    class StatisticsHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("centre", torch.zeros(features))
            self.register_buffer("scale", torch.ones(features))
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, hidden), nn.GELU(),
                                            nn.Dropout(dropout), nn.Linear(hidden, num_classes))

        def standardise(self, pooled: torch.Tensor) -> None:
            self.centre.copy_(pooled.mean(dim=0))
            self.scale.copy_(pooled.std(dim=0).clamp(min=1e-4))

        def forward(self, pooled: torch.Tensor) -> torch.Tensor:
            return self.classifier((pooled - self.centre) / self.scale)

    return StatisticsHead()


def build_emotion_model(front_end: Any, encoder: Any, heads: list[Any]) -> Any:
    """waveform N x samples (16 kHz) -> log of the heads' mean probabilities, N x classes: what is
    exported to ONNX (the export's softmax turns it back into those probabilities)."""
    torch = _torch()
    from torch import nn

    class WhisperEmotion(nn.Module):
        def __init__(self):
            super().__init__()
            self.front_end, self.encoder, self.heads = front_end, encoder, nn.ModuleList(heads)

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            pooled = layer_statistics(self.encoder.hidden_states(self.front_end(wave)), self.encoder.ln_post)
            probs = torch.stack([head(pooled).softmax(dim=-1) for head in self.heads]).mean(dim=0)
            return torch.log(probs)

    return WhisperEmotion()


def onnx_metadata(labels: list[str] | tuple[str, ...], window_s: float, name: str, **extra: str) -> dict[str, str]:
    """The voice ONNX contract of a Whisper-based model: 16 kHz samples in (the log-mel is inside the
    graph), `extras.feature` telling VoiceEmotion to feed samples rather than our log-mel."""
    import json

    samples = int(round(window_s * SAMPLE_RATE))
    spec = {"name": "wave", "shape": ["N", samples], "dtype": "float32",
            "range": "16 kHz mono samples in [-1, 1] (emodetect.voice.features.prepare)",
            "normalisation": "inside the graph (Whisper log-mel, floored 8 decades below the window's peak)"}
    return {"modality": "voice", "name": name, "labels": json.dumps(list(labels)), "input": json.dumps(spec),
            "output": f"probabilities N x {len(labels)} (softmax)", "multilabel": "false",
            "extras": json.dumps({"feature": FEATURE, "window_s": window_s}), "precision": "float32", **extra}
