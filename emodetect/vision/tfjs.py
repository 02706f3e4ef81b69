"""A reader for TensorFlow.js graph models: the network rebuilt as a torch module, no TensorFlow.

Pre-trained face networks (HSE-FaceRes on VGGFace2, MobileFaceNet) reach us as TF.js graph models:
a JSON file holding a TensorFlow GraphDef (`modelTopology`) and a manifest of weights stored,
little-endian and in manifest order, in `*.bin` shards beside it. `read_tfjs_graph` turns one into
a `TfjsGraph`: a module that runs the graph's nodes in order with torch ops, its weights as
parameters, so it can be fine-tuned and exported to ONNX like any of our networks. Tensors flow
in NCHW inside; kernels are converted from TensorFlow's HWIO once, at load.

It belongs with training (the `train` extra): what ships is still one ONNX file per model.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emodetect.errors import DataError

# Ops whose work is the same in NHWC and NCHW up to where the channel axis is.
_UNARY = {
    "Relu": torch.relu, "Relu6": lambda x: x.clamp(0, 6), "Abs": torch.abs, "Neg": torch.neg,
    "Sigmoid": torch.sigmoid, "Square": torch.square, "Rsqrt": torch.rsqrt, "Identity": lambda x: x,
    "Softmax": lambda x: torch.softmax(x, -1),
}
_BINARY = {"Add": torch.add, "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul,
           "Minimum": torch.minimum, "Maximum": torch.maximum, "RealDiv": torch.div}
_CONV = {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"}
_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}  # an NHWC axis of a 4-d tensor, in NCHW


def _attr(attr: dict[str, Any]) -> Any:
    """A GraphDef attribute value as a plain Python value (strings are base64 in TF.js JSON)."""
    if "list" in attr:
        items = attr["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        if "i" in items:
            return [int(i) for i in items["i"]]
        if "f" in items:
            return [float(f) for f in items["f"]]
        return []
    if "s" in attr:
        return base64.b64decode(attr["s"]).decode()
    if "i" in attr:
        return int(attr["i"])
    if "f" in attr:
        return float(attr["f"])
    if "b" in attr:
        return bool(attr["b"])
    return None


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any]


def _decode_weights(manifest: list[dict[str, Any]], folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest as a float32 (or int32) array, de-quantised."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"], dtype=np.int64))
            quant = spec.get("quantization")
            dtype = np.dtype(quant["dtype"] if quant else spec["dtype"]).newbyteorder("<")
            size = count * dtype.itemsize
            if offset + size > len(blob):
                raise DataError(f"{folder}: weight {spec['name']} runs past the end of its shards "
                                f"({offset + size} > {len(blob)} bytes)")
            values = np.frombuffer(blob, dtype, count, offset).reshape(spec["shape"])
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                values = values.astype(np.float32) * quant["scale"] + quant["min"]
            weights[spec["name"]] = values.astype(np.float32 if spec["dtype"] == "float32" else np.int32)
    return weights


def _needed(nodes: dict[str, _Node], outputs: list[str]) -> list[str]:
    """Names of the nodes the outputs depend on, each after its inputs."""
    order: list[str] = []
    state: dict[str, int] = {}
    for out in outputs:
        stack = [(out, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                continue
            if name not in nodes:
                raise DataError(f"the graph has no node {name!r}")
            state[name] = 1
            stack.append((name, True))
            stack.extend((i.split(":")[0].lstrip("^"), False) for i in reversed(nodes[name].inputs)
                         if not state.get(i.split(":")[0].lstrip("^")))
    return order


def _key(name: str) -> str:
    return name.replace("/", "__").replace(".", "_")


class TfjsGraph(nn.Module):
    """A TF.js graph run with torch ops. Input and outputs are NCHW (4-d) where TF has NHWC.

    Built from `spec` (the nodes and the shape of each weight: JSON-able, so a checkpoint can
    rebuild the module without the original files); the weights come as parameters, filled by
    `load_weights`. Float constants with more than one value are trainable parameters; scalars
    (clip bounds) and integer constants (axes) are fixed.
    """

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.nodes = [_Node(**n) for n in spec["nodes"]]
        self.input_name = spec["input"]
        self.outputs = list(spec["outputs"])
        self.params = nn.ParameterDict()
        self.fixed: dict[str, Any] = {}
        for name, (shape, dtype, value) in spec["consts"].items():
            if value is not None:
                self.fixed[name] = value
            else:
                self.params[_key(name)] = nn.Parameter(torch.zeros(shape), requires_grad=dtype == "float32")

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy the graph's weights in, converted to torch layouts (conv kernels HWIO -> OIHW)."""
        with torch.no_grad():
            for source in self.spec["consts"]:
                if _key(source) in self.params:
                    self.params[_key(source)].copy_(torch.from_numpy(_torch_layout(source, weights[source], self.spec)))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values: dict[str, Any] = {self.input_name: x}
        for node in self.nodes:
            values[node.name] = self._run(node, values)
        outs = tuple(values[o] for o in self.outputs)
        return outs[0] if len(outs) == 1 else outs

    def _value(self, name: str, values: dict[str, Any]) -> Any:
        name = name.split(":")[0]
        if name in values:
            return values[name]
        if name in self.fixed:
            return self.fixed[name]
        return self.params[_key(name)]

    def _run(self, node: _Node, values: dict[str, Any]) -> Any:
        args = [self._value(i, values) for i in node.inputs if not i.startswith("^")]
        op, attrs = node.op, node.attrs
        if op in _UNARY:
            return _UNARY[op](args[0])
        if op == "Clip":
            return args[0].clamp(attrs["min"], attrs["max"])
        if op in ("Minimum", "Maximum") and not isinstance(args[1], torch.Tensor):
            # A clip bound (ReLU6 is Relu, Minimum 6, Maximum 0 in these graphs): clamp's backward
            # is a fraction of torch.minimum's against a broadcast tensor (measured: 2x a training step).
            bound = float(np.asarray(args[1]).reshape(-1)[0])
            return args[0].clamp(max=bound) if op == "Minimum" else args[0].clamp(min=bound)
        if op in _BINARY:
            a, b = (_as_tensor(v, args) for v in args[:2])
            return _BINARY[op](_channel_first(a, b), _channel_first(b, a))
        if op in _CONV:
            return _conv(op, args, attrs)
        if op in ("Mean", "Sum"):
            axes = [int(a) for a in np.atleast_1d(args[1])]
            dims = [_NCHW_AXIS[a] for a in axes] if args[0].dim() == 4 else axes
            reduce = torch.mean if op == "Mean" else torch.sum
            return reduce(args[0], dim=dims, keepdim=bool(attrs.get("keep_dims", False)))
        if op in ("MatMul", "_FusedMatMul"):
            a, b = args[0], args[1]
            if attrs.get("transpose_a"):
                a = a.t()
            if attrs.get("transpose_b"):
                b = b.t()
            return _fused(a @ b, attrs.get("fused_ops", []), args[2:], attrs)
        if op == "Squeeze":
            dims = attrs.get("squeeze_dims") or [d for d in range(args[0].dim()) if args[0].shape[d] == 1]
            out = args[0]
            for d in sorted((_NCHW_AXIS[d] if out.dim() == 4 else d for d in dims), reverse=True):
                out = out.squeeze(d)
            return out
        raise DataError(f"TF.js graph: op {op} (node {node.name}) is not supported by this reader")


def _as_tensor(value: Any, like: list[Any]) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    ref = next(v for v in like if isinstance(v, torch.Tensor))
    return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)


def _channel_first(value: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """A per-channel constant ([C] or [1,1,1,C] in NHWC) broadcast against an NCHW tensor."""
    if other.dim() == 4 and value.dim() == 1 and value.numel() > 1:
        return value.reshape(-1, 1, 1)
    if other.dim() == 4 and value.dim() == 4 and value.shape[1] == 1 and value.shape[2] == 1:
        return value.permute(0, 3, 1, 2)
    return value


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: any odd pixel goes after (bottom/right), unlike torch's."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _conv(op: str, args: list[Any], attrs: dict[str, Any]) -> torch.Tensor:
    x, kernel = args[0], args[1]
    stride = attrs.get("strides", [1, 1, 1, 1])[1:3]
    dilation = attrs.get("dilations", [1, 1, 1, 1])[1:3]
    padding = attrs.get("padding", "VALID")
    kh, kw = kernel.shape[2], kernel.shape[3]
    if padding == "SAME":
        # Python ints even under ONNX tracing: a traced size's floor division is exported as a
        # truncating Div, which dropped the padding of every odd-sized stride-2 layer.
        top, bottom = _same_padding(int(x.shape[2]), kh, stride[0], dilation[0])
        left, right = _same_padding(int(x.shape[3]), kw, stride[1], dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
    elif padding == "EXPLICIT":
        p = attrs["explicit_paddings"]  # NHWC pairs
        x = F.pad(x, (p[4], p[5], p[2], p[3]))
    groups = x.shape[1] if "Depthwise" in op else 1
    out = F.conv2d(x, kernel, stride=tuple(stride), dilation=tuple(dilation), groups=groups)
    return _fused(out, attrs.get("fused_ops", []), args[2:], attrs)


def _fused(x: torch.Tensor, ops: list[str], extra: list[Any], attrs: dict[str, Any]) -> torch.Tensor:
    """The activation and bias TF's grappler fused into a conv or matmul node."""
    extra = list(extra)
    for op in ops:
        if op == "BiasAdd":
            bias = extra.pop(0)
            x = x + (bias.reshape(-1, 1, 1) if x.dim() == 4 else bias)
        elif op == "Relu":
            x = torch.relu(x)
        elif op == "Relu6":
            x = x.clamp(0, 6)
        elif op == "Prelu":
            alpha = extra.pop(0)
            alpha = alpha.reshape(-1, 1, 1) if x.dim() == 4 else alpha
            x = torch.where(x > 0, x, x * alpha)
        elif op == "LeakyRelu":
            x = F.leaky_relu(x, attrs.get("leakyrelu_alpha", 0.2))
        else:
            raise DataError(f"TF.js graph: fused op {op} is not supported by this reader")
    return x


def _torch_layout(name: str, value: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    role = spec["roles"].get(name)
    if role == "conv":  # HWIO -> OIHW
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    if role == "depthwise":  # H W in mult -> (in*mult) 1 H W
        h, w, cin, mult = value.shape
        return np.ascontiguousarray(value.transpose(2, 3, 0, 1).reshape(cin * mult, 1, h, w))
    return np.ascontiguousarray(value)


def read_tfjs_graph(path: str | Path, outputs: list[str] | None = None) -> TfjsGraph:
    """The TF.js graph model at `path` (its JSON; shards beside it) as a torch module with its
    weights, cut at `outputs` (node names; default: the graph's own outputs)."""
    path = Path(path)
    try:
        model = json.loads(path.read_text())
        topology, manifest = model["modelTopology"], model["weightsManifest"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: not a TF.js graph model ({err})") from err
    weights = _decode_weights(manifest, path.parent)
    graph = module_from_topology(topology, {k: (list(v.shape), str(v.dtype)) for k, v in weights.items()},
                                 outputs, small={k: v for k, v in weights.items() if v.size <= 4})
    graph.load_weights(weights)
    return graph


def module_from_topology(topology: dict[str, Any], weight_shapes: dict[str, tuple[list[int], str]],
                         outputs: list[str] | None = None, small: dict[str, np.ndarray] | None = None,
                         ) -> TfjsGraph:
    """The module for a GraphDef (no weights yet): the nodes `outputs` need, in running order."""
    raw = {n["name"]: _Node(n["name"], n["op"], list(n.get("input", [])),
                            {k: _attr(v) for k, v in n.get("attr", {}).items()})
           for n in topology["node"]}
    placeholders = [n for n in raw.values() if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise DataError(f"TF.js graph: expected one input, found {len(placeholders)}")
    if outputs is None:
        used = {i.split(":")[0].lstrip("^") for n in raw.values() for i in n.inputs}
        outputs = [n for n in raw if n not in used and raw[n].op != "Const"]
    order = _needed(raw, outputs)
    roles = {node.inputs[1]: "depthwise" if "Depthwise" in node.op else "conv"
             for node in (raw[n] for n in order) if node.op in _CONV and len(node.inputs) > 1}
    consts: dict[str, Any] = {}
    small = small or {}
    for name in (n for n in order if raw[n].op == "Const"):
        shape, dtype = weight_shapes.get(name, ([], "float32"))
        value = small.get(name)
        fixed = value is not None and (dtype != "float32" or value.size == 1)
        consts[name] = (_layout_shape(shape, roles, name), dtype, value.tolist() if fixed else None)
    order = _fuse_clips(raw, order, small)
    nodes = [vars(raw[n]) for n in order if raw[n].op not in ("Const", "Placeholder")]
    spec = {"input": placeholders[0].name, "outputs": outputs, "nodes": nodes, "consts": consts,
            "roles": roles}
    return TfjsGraph(json.loads(json.dumps(spec)))


def _fuse_clips(raw: dict[str, _Node], order: list[str], small: dict[str, np.ndarray]) -> list[str]:
    """Relu -> Minimum(a) -> Maximum(b), as the converter writes ReLU6, becomes one clamp: three
    element-wise passes and their backward become one (about 1.3x a fine-tuning step)."""
    consumers: dict[str, int] = {}
    for node in raw.values():
        for i in node.inputs:
            consumers[i.split(":")[0]] = consumers.get(i.split(":")[0], 0) + 1

    def bound(node: _Node) -> float | None:
        value = small.get(node.inputs[1]) if len(node.inputs) == 2 else None
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    dropped: set[str] = set()
    for name in order:
        top = raw[name]
        if top.op != "Maximum" or bound(top) is None:
            continue
        mid = raw.get(top.inputs[0])
        if mid is None or mid.op != "Minimum" or bound(mid) is None or consumers.get(mid.name) != 1:
            continue
        relu = raw.get(mid.inputs[0])
        low, high = bound(top), bound(mid)
        source = mid.inputs[0]
        if relu is not None and relu.op == "Relu" and consumers.get(relu.name) == 1:
            source, low = relu.inputs[0], max(low, 0.0)
            dropped.add(relu.name)
        dropped.add(mid.name)
        raw[name] = _Node(name, "Clip", [source], {"min": low, "max": high})
    return [n for n in order if n not in dropped]


def _layout_shape(shape: list[int], roles: dict[str, str], name: str) -> list[int]:
    if roles.get(name) == "conv":
        h, w, i, o = shape
        return [o, i, h, w]
    if roles.get(name) == "depthwise":
        h, w, i, m = shape
        return [i * m, 1, h, w]
    return list(shape)
