"""The TF.js graph reader (emodetect.vision.tfjs) against an independent NumPy forward pass of a small
graph written here in TF.js's own format: NHWC, HWIO kernels, SAME padding, float16-quantised weights,
folded batch norm, ReLU6 as Relu/Minimum/Maximum, fused conv with PReLU, mean pooling, fused matmul."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emodetect.errors import DataError  # noqa: E402
from emodetect.vision.tfjs import read_tfjs_graph  # noqa: E402


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _conv_attrs(stride: int, fused: list[str] | None = None) -> dict:
    attrs = {"strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}}, "padding": _s("SAME"),
             "dilations": {"list": {"i": ["1", "1", "1", "1"]}}, "data_format": _s("NHWC")}
    if fused:
        attrs["fused_ops"] = {"list": {"s": [base64.b64encode(f.encode()).decode() for f in fused]}}
    return attrs


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "stem/kernel": rng.normal(0, 0.3, (3, 3, 3, 4)), "stem/bias": rng.normal(0, 0.3, 4),
        "six": np.array(6.0), "zero": np.array(0.0),
        "dw/kernel": rng.normal(0, 0.3, (3, 3, 4, 1)), "dw/mul": rng.uniform(0.5, 1.5, 4),
        "dw/add": rng.normal(0, 0.3, 4),
        "pw/kernel": rng.normal(0, 0.3, (1, 1, 4, 5)), "pw/bias": rng.normal(0, 0.3, 5),
        "pw/alpha": rng.uniform(0.1, 0.3, 5), "axes": np.array([1, 2], dtype=np.int32),
        "fc/kernel": rng.normal(0, 0.3, (5, 2)), "fc/bias": rng.normal(0, 0.3, 2),
    }


def write_graph(folder: Path, weights: dict[str, np.ndarray], half: set[str] = frozenset()) -> Path:
    """A TF.js graph model (JSON + one shard) of the network `reference` computes."""
    consts = [{"name": n, "op": "Const", "attr": {}} for n in weights]
    nodes = consts + [
        {"name": "input", "op": "Placeholder", "attr": {}},
        {"name": "stem/conv", "op": "Conv2D", "input": ["input", "stem/kernel"], "attr": _conv_attrs(2)},
        {"name": "stem/bn", "op": "Add", "input": ["stem/conv", "stem/bias"]},
        {"name": "stem/relu", "op": "Relu", "input": ["stem/bn"]},
        {"name": "stem/min", "op": "Minimum", "input": ["stem/relu", "six"]},
        {"name": "stem/clip", "op": "Maximum", "input": ["stem/min", "zero"]},
        {"name": "dw/conv", "op": "DepthwiseConv2dNative", "input": ["stem/clip", "dw/kernel"],
         "attr": _conv_attrs(2)},
        {"name": "dw/bn_mul", "op": "Mul", "input": ["dw/conv", "dw/mul"]},
        {"name": "dw/bn_add", "op": "Add", "input": ["dw/bn_mul", "dw/add"]},
        {"name": "pw/conv", "op": "_FusedConv2D", "input": ["dw/bn_add", "pw/kernel", "pw/bias", "pw/alpha"],
         "attr": _conv_attrs(1, ["BiasAdd", "Prelu"])},
        {"name": "global_pooling/Mean", "op": "Mean", "input": ["pw/conv", "axes"],
         "attr": {"keep_dims": {"b": False}}},
        {"name": "fc", "op": "_FusedMatMul", "input": ["global_pooling/Mean", "fc/kernel", "fc/bias"],
         "attr": {"fused_ops": {"list": {"s": [base64.b64encode(b"BiasAdd").decode()]}}}},
    ]
    specs, blob = [], b""
    for name, value in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": "int32" if value.dtype == np.int32 else "float32"}
        if name in half:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blob += value.astype("<f2").tobytes()
        else:
            blob += value.astype("<i4" if value.dtype == np.int32 else "<f4").tobytes()
        specs.append(spec)
    (folder / "tiny.bin").write_bytes(blob)
    path = folder / "tiny.json"
    path.write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": nodes},
                                "weightsManifest": [{"paths": ["tiny.bin"], "weights": specs}]}))
    return path


def _np_conv(x: np.ndarray, kernel: np.ndarray, stride: int, depthwise: bool = False) -> np.ndarray:
    """NHWC convolution with TensorFlow's SAME padding (the odd pixel after), by loops."""
    n, h, w, c = x.shape
    kh, kw = kernel.shape[:2]
    out_h, out_w = -(-h // stride), -(-w // stride)
    pad_h = max((out_h - 1) * stride + kh - h, 0)
    pad_w = max((out_w - 1) * stride + kw - w, 0)
    xp = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((n, out_h, out_w, c if depthwise else kernel.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            if depthwise:
                out[:, i, j, :] = np.einsum("nhwc,hwc->nc", patch, kernel[..., 0])
            else:
                out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, kernel)
    return out


def reference(x: np.ndarray, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(pooled features, output) of the graph write_graph writes, for NHWC input."""
    y = np.clip(_np_conv(x, w["stem/kernel"], 2) + w["stem/bias"], 0, 6)
    y = _np_conv(y, w["dw/kernel"], 2, depthwise=True) * w["dw/mul"] + w["dw/add"]
    y = _np_conv(y, w["pw/kernel"], 1) + w["pw/bias"]
    y = np.where(y > 0, y, y * w["pw/alpha"])
    pooled = y.mean(axis=(1, 2))
    return pooled, pooled @ w["fc/kernel"] + w["fc/bias"]


@pytest.mark.parametrize("half", [False, True])
def test_reader_matches_an_independent_forward_pass(tmp_path, half):
    rng = np.random.default_rng(1)
    weights = _weights(rng)
    quantised = {"stem/kernel", "pw/kernel", "fc/kernel"} if half else set()
    path = write_graph(tmp_path, weights, quantised)
    if half:  # the reference sees what the file holds
        weights = {k: v.astype(np.float16).astype(np.float64) if k in quantised else v for k, v in weights.items()}
    x = rng.uniform(0, 4, (2, 9, 7, 3))  # odd sizes: SAME padding differs from torch's there
    pooled, out = reference(x, weights)
    graph = read_tfjs_graph(path).eval()
    with torch.no_grad():
        ours = graph(torch.from_numpy(x).float().permute(0, 3, 1, 2))
    np.testing.assert_allclose(ours.numpy(), out, rtol=1e-4, atol=1e-4)
    cut = read_tfjs_graph(path, outputs=["global_pooling/Mean"]).eval()
    with torch.no_grad():
        np.testing.assert_allclose(cut(torch.from_numpy(x).float().permute(0, 3, 1, 2)).numpy(), pooled,
                                   rtol=1e-4, atol=1e-4)
    assert any(n.op == "Clip" for n in graph.nodes)  # ReLU6 runs as one clamp


def test_the_module_rebuilds_from_its_spec_and_trains(tmp_path):
    from emodetect.vision.tfjs import TfjsGraph

    graph = read_tfjs_graph(write_graph(tmp_path, _weights(np.random.default_rng(2))))
    twin = TfjsGraph(json.loads(json.dumps(graph.spec)))  # as a checkpoint's model_kwargs hold it
    twin.load_state_dict(graph.state_dict())
    x = torch.rand(3, 3, 8, 8)
    assert torch.equal(twin(x), graph(x))
    twin(x).sum().backward()
    assert twin.params["stem__kernel"].grad is not None and twin.params["stem__kernel"].grad.abs().sum() > 0


def test_broken_files_are_named(tmp_path):
    path = write_graph(tmp_path, _weights(np.random.default_rng(3)))
    (tmp_path / "tiny.bin").write_bytes((tmp_path / "tiny.bin").read_bytes()[:100])
    with pytest.raises(DataError, match="runs past the end"):
        read_tfjs_graph(path)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="x.json: not a TF.js graph model"):
        read_tfjs_graph(tmp_path / "x.json")


def test_an_unknown_op_is_refused_by_name(tmp_path):
    path = write_graph(tmp_path, _weights(np.random.default_rng(4)))
    model = json.loads(path.read_text())
    next(n for n in model["modelTopology"]["node"] if n["name"] == "stem/relu")["op"] = "Erf"
    path.write_text(json.dumps(model))
    with pytest.raises(DataError, match="op Erf"):
        read_tfjs_graph(path)(torch.rand(1, 3, 8, 8))


def test_onnx_export_keeps_tensorflow_padding_on_odd_sizes(tmp_path):
    """A traced size's floor division once exported as a truncating Div: the stride-2 layers of an
    odd-sized map lost their padding in the ONNX file (a 7 px map gave 3 px, not 4)."""
    import io

    import onnxruntime as ort

    graph = read_tfjs_graph(write_graph(tmp_path, _weights(np.random.default_rng(5)))).eval()
    x = torch.rand(2, 3, 7, 7) * 4
    buffer = io.BytesIO()
    torch.onnx.export(graph, x, buffer, input_names=["x"], dynamo=False, opset_version=17)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = graph(x).numpy()
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], expected, rtol=1e-4, atol=1e-4)
