"""ONNX export with the contract other tools rely on, int8 quantisation, and a parity check.

Face contract: one input `pixels`, float32 N x 1 x 48 x 48, raw grey 0..255 (normalisation is in
the graph); one output `probabilities`, N x 7 in FER-2013 order. Labels, input spec, version and
training data go into the ONNX metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emodetect import __version__
from emodetect.checkpoint import Checkpoint
from emodetect.errors import InputError
from emodetect.heads import HEAD_OUTPUT, Segment, activate
from emodetect.heads import segments as head_segments
from emodetect.modalities import get_modality

INPUT_NAME = "pixels"  # the face contract; text and voice name theirs in export_example
OUTPUT_NAME = "probabilities"


def _members(model: nn.Module | Sequence[nn.Module]) -> list[nn.Module]:
    return [model] if isinstance(model, nn.Module) else list(model)


class ProbabilityHead(nn.Module):
    """Wraps a logits model so the graph returns probabilities, optionally averaged over views.

    Views are the face and its mirror image (`flip_tta`) and, with `shift_tta` = k pixels, copies
    shifted by k up, down, left and right (edges repeated): test-time augmentation inside the
    graph, so every runtime gets it without knowing. Several models (an ensemble of seeds) are
    averaged the same way, on probabilities, in one graph: one file, one session at run time.
    """

    def __init__(self, model: nn.Module | Sequence[nn.Module], multilabel: bool = False, flip_tta: bool = False,
                 shift_tta: int = 0, segments: list[Segment] | None = None,
                 weights: Sequence[float] | None = None):
        super().__init__()
        self.members = nn.ModuleList(_members(model))
        # Members of different architectures need not be equally good: their shares, summing to 1.
        self.weights = _member_weights(weights, len(self.members))
        self.multilabel = multilabel
        self.flip_tta = flip_tta
        self.shift_tta = shift_tta
        # A multi-head model: the main head's probabilities, then the other heads' side by side
        # (each its own softmax or sigmoid), as a second output.
        self.segments = segments if segments and len(segments) > 1 else None

    def _activate(self, logits: torch.Tensor) -> torch.Tensor:
        if self.segments:
            return torch.cat(activate(logits, self.segments), 1)
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        probs = [self._activate(member(x)) for member in self.members]
        if len(probs) == 1:
            return probs[0]
        return sum(w * p for w, p in zip(self.weights, probs))

    def _views(self, x: torch.Tensor) -> list[torch.Tensor]:
        views = [x]
        k = self.shift_tta
        if k:
            h, w = x.shape[-2:]
            padded = torch.nn.functional.pad(x, (k, k, k, k), mode="replicate")
            views += [padded[..., k + dy:k + dy + h, k + dx:k + dx + w]
                      for dy, dx in ((k, 0), (-k, 0), (0, k), (0, -k))]
        if self.flip_tta:
            views += [torch.flip(v, dims=[3]) for v in views]
        return views

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        views = self._views(x)
        probs = self._probs(torch.cat(views)) if len(views) > 1 else self._probs(x)
        probs = probs.reshape(len(views), x.shape[0], -1).mean(0)
        if self.segments:
            main = self.segments[0].stop
            return probs[:, :main], probs[:, main:]
        return probs


def _member_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Each member's share of the average: equal by default, else the given ones scaled to sum to 1."""
    from emodetect.errors import DataError

    if not weights:
        return [1.0 / count] * count
    if len(weights) != count or any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise DataError(f"member weights {list(weights)}: give one non-negative weight per model "
                        f"({count}), not all zero", "invalid")
    return [float(w) / sum(weights) for w in weights]


@dataclass
class ExportReport:
    path: Path
    max_abs_diff: float  # torch vs onnxruntime on the parity batch
    int8_path: Path | None = None


def export_onnx(model: nn.Module | Sequence[nn.Module], example: torch.Tensor, path: str | Path,
                metadata: dict[str, str], multilabel: bool = False, flip_tta: bool = False, shift_tta: int = 0,
                input_name: str = INPUT_NAME, segments: list[Segment] | None = None,
                free_axes: tuple[int, ...] = (), weights: Sequence[float] | None = None) -> Path:
    """Write `model` (or the mean of several models' probabilities) as ONNX with a dynamic batch
    axis (and the input axes in `free_axes`) and string metadata; a multi-head model (`segments`)
    gets a second output, HEAD_OUTPUT."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    members = [m.eval().float().to(memory_format=torch.contiguous_format) for m in _members(model)]
    wrapped = ProbabilityHead(members, multilabel, flip_tta, shift_tta, segments, weights).eval()
    outputs = [OUTPUT_NAME, HEAD_OUTPUT] if wrapped.segments else [OUTPUT_NAME]
    torch.onnx.export(
        wrapped, (example,), str(path), input_names=[input_name], output_names=outputs,
        dynamic_axes={input_name: {0: "batch", **{axis: f"axis{axis}" for axis in free_axes}},
                      **{name: {0: "batch"} for name in outputs}}, opset_version=17,
        dynamo=False,
    )
    return set_metadata(path, metadata)


def set_metadata(path: str | Path, values: dict[str, str]) -> Path:
    """Set (add or replace) string metadata entries of an ONNX file in place."""
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for key, value in [*kept, *values.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))
    return Path(path)


def parity(model: nn.Module | Sequence[nn.Module], onnx_path: str | Path, inputs: torch.Tensor,
           flip_tta: bool = False, shift_tta: int = 0,
           multilabel: bool = False, segments: list[Segment] | None = None,
           weights: Sequence[float] | None = None) -> float:
    """Largest absolute difference between torch (float32) and onnxruntime probabilities (every
    output of a multi-head model)."""
    from emodetect.runtime import OnnxModel

    members = [m.eval().float() for m in _members(model)]
    with torch.no_grad():
        expected = ProbabilityHead(members, multilabel, flip_tta, shift_tta, segments, weights)(inputs)
    expected = [e.numpy() for e in (expected if isinstance(expected, tuple) else (expected,))]
    got = OnnxModel(onnx_path).predict_all(inputs.numpy())
    return float(max(np.abs(e - g).max() for e, g in zip(expected, got, strict=True)))


def store_float16(path: str | Path, out: str | Path | None = None) -> Path:
    """Keep the float weights of an ONNX file in half precision, each cast back to float32 inside
    the graph (onnxruntime folds the casts at load): half the bytes on disk and in the wheel, the
    same float32 arithmetic. Weight rounding moves a probability by about 1e-4."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(path))
    graph = proto.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims, dtype=np.int64) < 64:
            continue
        values = numpy_helper.to_array(init)
        if np.abs(values).max(initial=0) >= 65504:  # beyond float16's range: keep as it is
            continue
        half = numpy_helper.from_array(values.astype(np.float16), init.name + "_fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=init.name + "_to_fp32"))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "weights_stored", "float16 (computed in float32)"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out or path))
    return Path(out or path)


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


class NeedsCalibration(InputError):
    """Static int8 quantisation was asked for without calibration inputs (in the error family; still
    a ValueError, as before)."""


def quantize_dynamic_int8(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic int8 quantisation (int8 weights, activations scaled per batch at run time) of the
    MatMuls and the embedding tables: the usual recipe for transformer encoders, whose softmax and
    LayerNorm outputs a static calibration range fits badly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_path = Path(out_path)
    quantize_dynamic(str(onnx_path), str(out_path), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True, op_types_to_quantize=["MatMul", "Gemm", "Gather"])
    _int8_metadata(onnx_path, out_path)
    # The activation scale is set per call, so runtime.OnnxModel reads such a model one example
    # at a time: an answer must not depend on the examples batched beside it.
    return set_metadata(out_path, {"activation_scale": "per_call"})


def _int8_metadata(onnx_path: str | Path, out_path: Path) -> Path:
    """Keep the float model's metadata (labels, input spec) on its int8 copy, named `<name>-int8`."""
    metadata = read_metadata(onnx_path)
    metadata.update(precision="int8", name=metadata.get("name", Path(onnx_path).stem) + "-int8")
    return set_metadata(out_path, metadata)


def quantize_int8(onnx_path: str | Path, out_path: str | Path, calibration: np.ndarray) -> Path:
    """Static int8 quantisation (QDQ, per-channel) calibrated on a few hundred real inputs."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from emodetect.runtime import OnnxModel

    input_name = OnnxModel(onnx_path, threads=1).input_name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{input_name: calibration[i:i + 32]}
                                 for i in range(0, len(calibration), 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    out_path = Path(out_path)
    prepared = out_path.with_suffix(".prep.onnx")
    quant_pre_process(str(onnx_path), str(prepared))
    # reduce_range: 7-bit weights. Without it, x86 CPUs without VNNI (AVX2 only, e.g. many AMD
    # EPYC) saturate u8 x s8 products in onnxruntime and lose accuracy: the default model scored
    # 0.7024 on PrivateTest there against 0.7172 on a VNNI machine.
    quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    prepared.unlink()
    return _int8_metadata(onnx_path, out_path)


CALIBRATION_SIZE = 512  # inputs that calibrate a static int8 copy


def calibration_inputs(state: Checkpoint, data: str | Path, split: str = "train",
                       size: int = CALIBRATION_SIZE) -> np.ndarray:
    """At most `size` inputs of one split of `data`, drawn with a fixed seed, as the checkpoint's
    model reads them (text: the checkpoint's vocabulary encodes the texts)."""
    module = get_modality(state.modality).data_module()
    options = {"model": state} if module.EVALUATION_NEEDS_MODEL else {}
    inputs = module.evaluation_data(data, split, **options).inputs
    return inputs[torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))[:size].numpy()]


def _agreeing_states(checkpoints: Sequence[str | Path]) -> list[Checkpoint]:
    """Read checkpoints to be averaged: they must answer in the same labels, heads and input."""
    from emodetect.errors import DataError

    states = [Checkpoint.read(c) for c in checkpoints]
    first = states[0]
    for path, state in zip(checkpoints[1:], states[1:]):
        for what, get in (("modality", lambda s: s.modality), ("labels", lambda s: s.labels),
                          ("multilabel", lambda s: s.multilabel), ("input features", lambda s: s.extras)):
            if get(state) != get(first):
                raise DataError(f"{path}: its {what} ({get(state)}) differ from {checkpoints[0]}'s "
                                f"({get(first)}); only models of the same contract can be averaged", "invalid")
    return states


def export_checkpoint(checkpoint: str | Path | Sequence[str | Path], out: str | Path, flip_tta: bool = True,
                      shift_tta: int = 0, int8: bool = False, calibration: np.ndarray | None = None,
                      extra_metadata: dict[str, str] | None = None,
                      weights: Sequence[float] | None = None, calibration_data: str | Path | None = None,
                      calibration_split: str = "train") -> ExportReport:
    """Export a training checkpoint (or the mean of several, e.g. seeds of one recipe, as one
    graph, weighted by `weights` if given); with int8, also write `<out stem>_int8.onnx`, calibrated
    on `calibration` or else on inputs drawn from `calibration_split` of `calibration_data`
    (`calibration_inputs`)."""
    from emodetect.errors import DataError

    checkpoints = [checkpoint] if isinstance(checkpoint, (str, Path)) else list(checkpoint)
    if not checkpoints:
        raise DataError("no checkpoint to export", "empty")
    states = _agreeing_states(checkpoints)
    shares = _member_weights(weights, len(states))
    state = states[0]
    if int8 and calibration is None and calibration_data is not None:  # drawn before the slow part
        calibration = calibration_inputs(state, calibration_data, calibration_split)
    members = [s.build_model() for s in states]
    config = state.config
    modality = get_modality(state.modality)
    modality_data = modality.data_module()
    example, input_spec = modality_data.export_example(state)
    extras = state.extras
    if hasattr(modality_data, "export_extras"):
        if len(members) > 1:  # thresholds are tuned for one model's probabilities
            raise DataError(f"{modality.name} checkpoints are averaged with `emodetect ensemble` "
                            "(it tunes thresholds for the average), not by export", "unsupported")
        extras = modality_data.export_extras(state, members[0])  # e.g. text: thresholds tuned on validation
    # Mirroring only means something for images (a voice log-mel is 4-D too, but time runs one way).
    flip_tta, shift_tta = flip_tta and modality.mirror_tta, shift_tta if modality.mirror_tta else 0
    labels, multilabel = state.labels, state.multilabel
    segs = head_segments(labels, multilabel, extras.get("heads", []))
    # Input axes the model reads at any length (a one-layer text CNN: the token axis, up to the
    # length it was trained with).
    free_axes = tuple(getattr(members[0], "dynamic_input_axes", ()))
    for axis in free_axes:
        input_spec["shape"][axis] = f"1..{input_spec['shape'][axis]}"
    architectures = [s.model_name for s in states]
    val_scores = [s.score for s in states]
    metadata = {
        "labels": json.dumps(labels),
        "input": json.dumps(input_spec),
        "output": "probabilities N x %d (%s)" % (len(labels), "sigmoid" if multilabel else "softmax")
                  + "".join(f"; {HEAD_OUTPUT} [{s.start - len(labels)}:{s.stop - len(labels)}] head {s.name}, "
                            f"{len(s.labels)} labels ({'sigmoid' if s.multilabel else 'softmax'})" for s in segs[1:]),
        "multilabel": json.dumps(multilabel),
        "modality": modality.name,
        "architecture": architectures[0] if len(states) == 1 else
                        f"mean of {len(states)}: " + " + ".join(architectures),
        "emodetect_version": __version__,
        "training_data": "+".join(Path(part).name for part in str(config.get("data", "")).split("+"))
                         + f" ({config.get('train_split', '')})",
        "val_score": " ".join(f"{v:.4f}" for v in val_scores),
        "flip_tta": json.dumps(flip_tta),
        "shift_tta": str(shift_tta),
        "precision": "float32",
        "extras": json.dumps(extras),
    }
    if len(states) > 1 and weights:
        metadata["architecture"] = f"weighted mean of {len(states)}: " + " + ".join(
            f"{w:.2f} x {a}" for w, a in zip(shares, architectures))
    if len(states) > 1:  # a member rebuilt from an ONNX file has no validation score: null, not NaN
        metadata["members"] = json.dumps([{"architecture": s.model_name, "weight": round(w, 4),
                                           "seed": s.config.get("seed"), "epoch": s.epoch,
                                           "val_score": round(float(v), 4) if np.isfinite(v) else None}
                                          for s, v, w in zip(states, val_scores, shares)])
    metadata |= extra_metadata or {}
    path = export_onnx(members, example, out, metadata, multilabel, flip_tta, shift_tta,
                       input_spec["name"], segs, free_axes, shares)
    parity_batch = example.repeat(8, *([1] * (example.dim() - 1)))
    if example.dtype.is_floating_point:
        parity_batch = torch.rand(parity_batch.shape, generator=torch.Generator().manual_seed(0)) * 255
    diff = parity(members, path, parity_batch, flip_tta, shift_tta, multilabel, segs, shares)
    for axis in free_axes:  # a free axis is checked at a third of its length too
        short = parity_batch.narrow(axis, 0, max(1, parity_batch.shape[axis] // 3))
        diff = max(diff, parity(members, path, short, flip_tta, shift_tta, multilabel, segs,
                                shares))
    int8_path = None
    if int8:
        int8_out = Path(out).with_name(Path(out).stem + "_int8.onnx")
        if getattr(members[0], "int8_dynamic", False):  # a transformer encoder
            int8_path = quantize_dynamic_int8(path, int8_out)
        elif calibration is None:
            raise NeedsCalibration("int8 export needs calibration inputs")
        else:
            int8_path = quantize_int8(path, int8_out, calibration)
    return ExportReport(path, diff, int8_path)
