"""Hostile or damaged `--model` files: one error naming the file, at load, never a traceback or an
`Infinity` in JSON (issue 34, point 9)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from emodetect.errors import EmodetectError, ModelError  # noqa: E402
from emodetect.runtime import bundled_model_path, load_model  # noqa: E402

LABELS = ["a", "b", "c", "d"]


def _tiny_model(path: Path, node: str, constant: float = 0.0, labels: list[str] = LABELS, width: int = 4) -> Path:
    """A 1 x 4 float input through one node (`Add` of a constant, `Log`, or `Identity` cut to
    `width`), labels in the metadata as exports write them."""
    nodes, inits = [], []
    if node == "Add":
        inits.append(helper.make_tensor("k", TensorProto.FLOAT, [1], [constant]))
        nodes.append(helper.make_node("Add", ["x", "k"], ["y"]))
    elif node == "Slice":
        for name, value in (("starts", 0), ("ends", width), ("axes", 1)):
            inits.append(helper.make_tensor(name, TensorProto.INT64, [1], [value]))
        nodes.append(helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"]))
    else:
        nodes.append(helper.make_node(node, ["x"], ["y"]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", None])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"labels": json.dumps(labels)})
    onnx.save(model, path)
    return path


def test_a_truncated_onnx_file_is_a_model_error_naming_it(tmp_path):
    good = bundled_model_path("realtime-int8", "vision").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="cut.onnx: not a usable ONNX model"):
        load_model(path)


def test_random_bytes_are_a_model_error_naming_the_file(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="noise.onnx"):
        load_model(path)


def test_a_damaged_name_that_is_not_utf8_is_a_model_error_naming_the_file(tmp_path):
    """onnxruntime quotes the unknown operator in its message and decodes that message as UTF-8:
    a flipped byte there once ended load_model with a raw UnicodeDecodeError (found by
    test_fuzz_hostile on a bit-flipped realtime-int8)."""
    path = _tiny_model(tmp_path / "tmp.onnx", "Identity")
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(path.read_bytes().replace(b"Identity", b"Identit\xf4"))
    with pytest.raises(ModelError, match="damaged.onnx: not a usable ONNX model"):
        load_model(damaged)


@pytest.mark.parametrize("constant", [float("inf"), float("nan")])
def test_a_model_answering_inf_or_nan_is_refused_at_load(tmp_path, constant):
    path = _tiny_model(tmp_path / "bad.onnx", "Add", constant)
    with pytest.raises(ModelError, match="bad.onnx: the model answered 4 non-finite value"):
        load_model(path)


def test_an_output_width_other_than_the_labels_is_refused_at_load(tmp_path):
    path = _tiny_model(tmp_path / "narrow.onnx", "Slice", width=3)
    with pytest.raises(ModelError, match="answers 3 classes, but its metadata names 4 labels"):
        load_model(path)


def test_labels_that_are_not_a_list_of_names_are_refused(tmp_path):
    path = _tiny_model(tmp_path / "odd.onnx", "Identity")
    model = onnx.load(path)
    helper.set_model_props(model, {"labels": "{not json"})
    onnx.save(model, path)
    with pytest.raises(ModelError, match="odd.onnx: the labels in its metadata are not JSON"):
        load_model(path)


def test_a_multilabel_flag_that_is_not_true_or_false_is_refused(tmp_path):
    path = _tiny_model(tmp_path / "flag.onnx", "Identity")
    model = onnx.load(path)
    helper.set_model_props(model, {"labels": json.dumps(LABELS), "multilabel": "{"})
    onnx.save(model, path)
    with pytest.raises(ModelError, match="flag.onnx: multilabel in its metadata"):
        load_model(path)


def test_non_finite_answers_on_real_input_are_refused_not_printed(tmp_path):
    model = load_model(_tiny_model(tmp_path / "log.onnx", "Log"))  # finite on the dummy example
    assert np.isfinite(model.predict(np.full((2, 4), 0.5, np.float32))).all()
    with pytest.raises(ModelError, match="log.onnx: the model answered 4 non-finite"):
        model.predict(np.full((1, 4), -1.0, np.float32))


def test_hostile_model_files_end_commands_with_one_line_not_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from emodetect.cli import app

    noise = tmp_path / "noise.onnx"
    noise.write_bytes(b"\x08\x07garbage" * 100)
    face = tmp_path / "face.png"
    from PIL import Image

    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(face)
    import wave

    sound = tmp_path / "hum.wav"
    with wave.open(str(sound), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\x00\x01" * 16000)
    runner = CliRunner()
    for args in (["detect", str(face), "--model", str(noise)], ["predict", str(face), "--model", str(noise)],
                 ["text", "great news", "--model", str(noise)], ["voice", str(sound), "--model", str(noise)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert isinstance(result.exception, SystemExit) and "noise.onnx" in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_model_error_is_in_the_error_family():
    assert issubclass(ModelError, EmodetectError) and issubclass(ModelError, ValueError)


def test_the_service_refuses_a_damaged_model_file_before_it_starts(tmp_path):
    pytest.importorskip("fastapi")
    from emodetect.serve import ServeConfig, create_app
    from emodetect.serve.server import run

    noise = tmp_path / "noise.onnx"
    noise.write_bytes(b"\x08\x07garbage" * 100)
    app = create_app(ServeConfig(workers=1, model=str(noise)), route_modules=("emodetect.serve.routes_health",))
    with pytest.raises(ModelError, match="noise.onnx: not a usable ONNX model"):
        run(app, "127.0.0.1", 0)
