import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from emodetect.evaluate import classification_report, evaluate
from emodetect.export import export_checkpoint
from emodetect.labels import EMOTIONS
from emodetect.runtime import OnnxModel
from emodetect.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import write_fer_csv

    root = tmp_path_factory.mktemp("trained")
    data = write_fer_csv(root / "fer.csv", {"Training": 700, "PublicTest": 140, "PrivateTest": 140})
    cfg = TrainConfig(data=str(data), out=str(root / "run"), model="tiny_fer", epochs=2, batch_size=32,
                      augment=False, threads=1)
    return data, train(cfg).best_checkpoint


def test_onnx_honours_the_contract(trained, tmp_path):
    _, checkpoint = trained
    report = export_checkpoint(checkpoint, tmp_path / "m.onnx", flip_tta=True)
    assert report.max_abs_diff < 1e-4
    proto = onnx.load(str(report.path))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "pixels" and out.name == "probabilities"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [1, 48, 48] and isinstance(dims[0], str)
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    model = OnnxModel(report.path)
    assert model.labels == EMOTIONS
    assert json.loads(model.metadata["input"])["range"] == "raw grey pixels 0..255"
    for batch in (1, 5):
        probs = model.predict(np.random.default_rng(0).uniform(0, 255, (batch, 1, 48, 48)))
        assert probs.shape == (batch, 7)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_flip_tta_makes_mirrored_faces_agree(trained, tmp_path):
    _, checkpoint = trained
    model = OnnxModel(export_checkpoint(checkpoint, tmp_path / "m.onnx", flip_tta=True).path)
    x = np.random.default_rng(1).uniform(0, 255, (3, 1, 48, 48)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), model.predict(x[..., ::-1].copy()), atol=1e-5)


def test_int8_copy_keeps_accuracy_and_metadata(trained, tmp_path):
    data, checkpoint = trained
    from emodetect.vision.data import evaluation_data

    calibration = evaluation_data(data, "Training").inputs[:128]
    report = export_checkpoint(checkpoint, tmp_path / "m.onnx", int8=True, calibration=calibration)
    fp32 = evaluate(report.path, data, "PrivateTest")
    int8 = evaluate(report.int8_path, data, "PrivateTest")
    assert OnnxModel(report.int8_path).metadata["precision"] == "int8"
    assert abs(fp32.accuracy - int8.accuracy) < 0.1


def test_export_draws_its_int8_calibration_from_a_split_of_the_data(trained, tmp_path):
    # What `export --int8 --calibration-data` does: 512 inputs of the split at most, the same ones
    # on every run (a fixed seed), drawn by export_checkpoint itself.
    from emodetect.checkpoint import Checkpoint
    from emodetect.export import calibration_inputs
    from emodetect.vision.data import evaluation_data

    data, checkpoint = trained
    drawn = calibration_inputs(Checkpoint.read(checkpoint), data, "train")
    training = evaluation_data(data, "Training").inputs
    assert drawn.shape == (512, *training.shape[1:])
    np.testing.assert_array_equal(drawn, calibration_inputs(Checkpoint.read(checkpoint), data, "train"))
    assert {row.tobytes() for row in drawn} <= {row.tobytes() for row in training}
    report = export_checkpoint(checkpoint, tmp_path / "m.onnx", int8=True, calibration_data=data)
    assert OnnxModel(report.int8_path).metadata["precision"] == "int8"


def test_evaluate_checkpoint_and_onnx_agree_and_write_reports(trained, tmp_path):
    data, checkpoint = trained
    onnx_path = export_checkpoint(checkpoint, tmp_path / "m.onnx", flip_tta=False).path
    from_onnx = evaluate(onnx_path, data, "PrivateTest", out_dir=tmp_path / "report")
    from_ckpt = evaluate(checkpoint, data, "PrivateTest")
    assert from_onnx.n == 140 and abs(from_onnx.accuracy - from_ckpt.accuracy) <= 2 / 140
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["accuracy"] == pytest.approx(from_onnx.accuracy)
    assert len(saved["per_class"]) == 7 and np.array(saved["confusion"]).sum() == 140
    assert "macro-F1" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "<table>" in (tmp_path / "report" / "report.html").read_text()


def test_classification_report_metrics():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    report = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert report.accuracy == pytest.approx(4 / 6)
    a, b, c = report.per_class
    assert (a.precision, a.recall) == (1.0, pytest.approx(2 / 3))
    assert (b.precision, b.recall) == (0.5, 0.5)
    assert (c.precision, c.recall, c.f1) == (0.5, 1.0, pytest.approx(2 / 3))
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report.extra["unweighted_accuracy"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3, abs=1e-4)


def test_macro_f1_counts_a_class_predicted_but_never_true_as_scikit_learn_does():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 2, 1, 1])  # class 2 has a false positive and no true example; class 3 neither
    report = classification_report(y_true, y_pred, ["a", "b", "c", "d"])
    # f1_score(y_true, y_pred, average="macro"): classes 0, 1, 2 count; class 2 scores 0.
    assert report.macro_f1 == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert report.macro_f1 < report.accuracy == 0.75  # left out before, it put macro-F1 (0.83) above accuracy
    assert report.per_class[2].f1 == 0.0 and report.confusion[0][2] == 1
    assert "over the 3 classes true or predicted" in report.to_markdown()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "emodetect", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_export_evaluate_predict_round_trip(trained, tmp_path):
    data, checkpoint = trained
    out = _cli("export", str(checkpoint), "--out", str(tmp_path / "cli.onnx"), "--name", "mine")
    assert out.returncode == 0, out.stderr
    assert "max |torch - onnxruntime|" in out.stdout
    ev = _cli("evaluate", str(tmp_path / "cli.onnx"), str(data), "--split", "test", "--out", str(tmp_path / "r"))
    assert ev.returncode == 0, ev.stderr
    assert "accuracy" in ev.stdout and (tmp_path / "r" / "report.json").exists()
    from PIL import Image

    from conftest import synthetic_faces

    Image.fromarray(synthetic_faces(1)[0][0]).save(tmp_path / "face.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    pred = _cli("predict", str(tmp_path / "face.png"), str(tmp_path / "bad.png"), "--model", str(tmp_path / "cli.onnx"))
    assert pred.returncode == 1
    header, row = pred.stdout.splitlines()
    assert header.split() == ["file", "label", "conf"] and "face.png" in row and row.split()[1] in EMOTIONS
    assert "bad.png" in pred.stderr and "not an image" in pred.stderr


def test_cli_errors_name_the_problem(tmp_path):
    ev = _cli("evaluate", "default", str(tmp_path / "missing.csv"))
    assert ev.returncode == 2 and "missing.csv" in ev.stderr and "Traceback" not in ev.stderr
    tr = _cli("train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r"))
    assert tr.returncode == 2 and "no such file" in tr.stderr


def test_shift_tta_averages_shifted_views_inside_the_graph(trained, tmp_path):
    import torch

    from emodetect.export import ProbabilityHead
    from emodetect.train import load_checkpoint_model

    _, checkpoint = trained
    report = export_checkpoint(checkpoint, tmp_path / "m.onnx", flip_tta=True, shift_tta=2)
    assert report.max_abs_diff < 1e-4
    model = load_checkpoint_model(checkpoint)
    x = torch.rand(2, 1, 48, 48) * 255
    head = ProbabilityHead(model, flip_tta=True, shift_tta=2)
    assert len(head._views(x)) == 10
    with torch.no_grad():
        plain = ProbabilityHead(model)(x)
        averaged = head(x)
    np.testing.assert_allclose(OnnxModel(report.path).predict(x.numpy()), averaged.numpy(), atol=1e-4)
    assert not torch.allclose(plain, averaged)


def test_members_of_different_architectures_average_with_their_weights(trained, tmp_path):
    """`emodetect export a.pt b.pt --weight 0.3 --weight 0.7`: one graph whose probabilities are the
    weighted mean of each member's own, the shares in the metadata; bad weights are refused."""
    data, first = trained
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "other"), model="vgg_fer_small", epochs=1,
                      batch_size=32, augment=False, threads=1)
    second = train(cfg).best_checkpoint
    alone = [OnnxModel(export_checkpoint(c, tmp_path / f"{i}.onnx", flip_tta=True).path)
             for i, c in enumerate((first, second))]
    report = export_checkpoint([first, second], tmp_path / "mix.onnx", flip_tta=True, weights=[3, 7])
    assert report.max_abs_diff < 1e-4
    x = np.random.default_rng(0).uniform(0, 255, (6, 1, 48, 48)).astype(np.float32)
    mixed = OnnxModel(report.path)
    expected = 0.3 * alone[0].predict(x) + 0.7 * alone[1].predict(x)
    np.testing.assert_allclose(mixed.predict(x), expected, atol=1e-5)
    members = json.loads(mixed.metadata["members"])
    assert [m["architecture"] for m in members] == ["tiny_fer", "vgg_fer_small"]
    assert [m["weight"] for m in members] == [0.3, 0.7]
    from emodetect.errors import DataError

    with pytest.raises(DataError, match="one non-negative weight per model"):
        export_checkpoint([first, second], tmp_path / "bad.onnx", weights=[1.0])


def test_float16_storage_halves_the_file_and_keeps_the_answers(trained, tmp_path):
    from emodetect.export import read_metadata, store_float16

    _, checkpoint = trained
    path = export_checkpoint(checkpoint, tmp_path / "m.onnx", flip_tta=True).path
    half = store_float16(path, tmp_path / "half.onnx")
    weights = {i.name: i for i in onnx.load(str(path)).graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    stored = {i.name: i for i in onnx.load(str(half)).graph.initializer}
    big = [n for n, i in weights.items() if np.prod(i.dims) >= 64]
    assert big and all(stored[n + "_fp16"].data_type == onnx.TensorProto.FLOAT16 for n in big)
    assert half.stat().st_size < path.stat().st_size
    x = np.random.default_rng(1).uniform(0, 255, (4, 1, 48, 48)).astype(np.float32)
    np.testing.assert_allclose(OnnxModel(half).predict(x), OnnxModel(path).predict(x), atol=2e-3)
    meta = read_metadata(half)
    assert meta["weights_stored"].startswith("float16") and json.loads(meta["labels"]) == list(EMOTIONS)
