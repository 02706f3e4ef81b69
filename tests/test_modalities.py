"""The modality table: every modality honours it, and a new one is one package plus one registration.

The toy modality below is a separate installed package (a folder with a .dist-info that declares an
`emodetect.modalities` entry point), so nothing in emodetect is edited to add it: it must still
appear in `train`, `export`, `models`, `evaluate`, its own command and the service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emodetect.modalities import BUILTIN, get_modality, load_object, modalities

TOY_FILES = {
    "toy_modality/__init__.py": '''
        from emodetect.modalities import BatchInputs, Modality

        MODALITY = Modality(
            name="toy", summary="rows of eight numbers", data="toy_modality.data",
            architectures="toy_modality.models", pipeline="toy_modality.pipeline:ToyEmotion",
            commands=("toy_modality.cli:toy",), router="toy_modality.routes", assets="toy_modality.assets",
            batch=BatchInputs("vectors", "toy_modality.workers:SUFFIXES", "toy_modality.workers:ToyWorker"),
            intended="Telling calm rows of eight numbers from excited ones, in tests.",
            gaps=("Knows only the sign of the first number.",),
        )
    ''',
    "toy_modality/assets/__init__.py": "",
    "toy_modality/data.py": '''
        import csv

        import numpy as np

        from emodetect.config import normalise_split
        from emodetect.modalities import EvaluationData, csv_header

        LABELS = ("calm", "excited")
        EVALUATION_NEEDS_MODEL = False


        def _dicts(data, split):
            with open(data, newline="") as handle:
                return [r for r in csv.DictReader(handle) if split is None or r["split"] == normalise_split(split)]


        def _rows(data, split):
            rows = _dicts(data, split)
            x = np.array([[float(r[f"x{i}"]) for i in range(8)] for r in rows], dtype=np.float32)
            return x, np.array([LABELS.index(r["label"]) for r in rows])


        def recognises(data):
            return {"x0", "label"} <= set(csv_header(data))


        def training_data(cfg):
            import torch

            from emodetect.train import TrainingData

            x, y = _rows(cfg.data, cfg.train_split)
            vx, vy = _rows(cfg.data, cfg.val_split)
            return TrainingData(torch.from_numpy(x), torch.eye(len(LABELS))[y], torch.from_numpy(vx),
                                torch.from_numpy(vy), LABELS)


        def evaluation_data(data, split):
            x, y = _rows(data, split)
            return EvaluationData(x, y, LABELS, f"{data} ({split})")


        def evaluation_groups(data, split, column):
            return np.array([r[column] for r in _dicts(data, split)])


        def export_example(state):
            import torch

            return torch.zeros(1, 8), {"name": "values", "shape": ["N", 8], "dtype": "float32"}
    ''',
    "toy_modality/models.py": '''
        from torch import nn

        from emodetect.registry import register_model


        @register_model
        def toy_mlp(num_classes: int = 2) -> nn.Module:
            return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, num_classes))
    ''',
    "toy_modality/pipeline.py": '''
        import numpy as np

        from emodetect.runtime import load_model


        class ToyEmotion:
            def __init__(self, model=None):
                self.model = load_model(model, "toy", threads=1)
                self.model_name = self.model.metadata.get("name", self.model.path.stem)

            def predict(self, values):
                probs = self.model.predict(np.asarray([values], dtype=np.float32))[0]
                return self.model.labels[int(probs.argmax())], float(probs.max())
    ''',
    "toy_modality/cli.py": '''
        import typer


        def toy(values: list[float] = typer.Argument(..., help="eight numbers")) -> None:
            """The toy modality's verb."""
            from toy_modality.pipeline import ToyEmotion

            label, confidence = ToyEmotion().predict(values)
            typer.echo(f"{label}\\t{confidence:.3f}")
    ''',
    "toy_modality/routes.py": '''
        from fastapi import APIRouter, Depends
        from pydantic import BaseModel

        from emodetect.serve.state import ServeConfig, service

        SERVICE = "toy"
        router = APIRouter(tags=["toy"])


        class ToyRequest(BaseModel):
            values: list[float]


        def load(config: ServeConfig):
            from toy_modality.pipeline import ToyEmotion

            return ToyEmotion(config.model_for(SERVICE))  # emodetect serve --toy-model


        @router.post("/v1/toy")
        def read_toy(body: ToyRequest, model=Depends(service(SERVICE))) -> dict:
            label, confidence = model.predict(body.values)
            return {"label": label, "confidence": confidence}
    ''',
    "toy_modality/workers.py": '''
        import os

        import numpy as np

        from emodetect.arrow import arrow_schema, arrow_table

        SUFFIXES = (".toy",)  # a text file of eight numbers


        class ToyWorker:
            def __init__(self, model=None):
                from toy_modality.pipeline import ToyEmotion

                self.engine = ToyEmotion(model)
                self.schema = arrow_schema(["source", "label", "confidence", "error"], {"source", "label", "error"})

            def score(self, batch):
                rows = []
                for source, path, unreadable in zip(batch["source"], batch["path"], batch["error"]):
                    try:
                        if unreadable:
                            raise OSError(unreadable)
                        label, confidence = self.engine.predict(np.loadtxt(os.fsdecode(path), ndmin=1))
                        rows.append({"source": source, "label": label, "confidence": confidence})
                    except (OSError, ValueError) as err:
                        rows.append({"source": source, "error": str(err)})
                return arrow_table(rows, self.schema)
    ''',
    "toy_modality-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: toy-modality\nVersion: 0.1\n",
    "toy_modality-0.1.dist-info/entry_points.txt": "[emodetect.modalities]\ntoy = toy_modality:MODALITY\n",
}


def _write_plugin(root: Path) -> Path:
    for name, text in TOY_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def _write_toy_data(path: Path) -> Path:
    """'excited' when the first value is positive, else 'calm': an MLP learns it in a few epochs."""
    rng = np.random.default_rng(0)
    lines = ["split,label,sign," + ",".join(f"x{i}" for i in range(8))]
    for split, n in (("train", 240), ("validation", 60), ("test", 60)):
        for row in rng.normal(size=(n, 8)):
            label = "excited" if row[0] > 0 else "calm"
            sign = "up" if row[1] > 0 else "down"
            lines.append(f"{split},{label},{sign}," + ",".join(f"{v:.4f}" for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_registered_modality_honours_the_table():
    """Each row names modules and objects that exist and have what the shared stages call: its
    data module is a ModalityData (the Protocol), its engine answers in the one engine shape."""
    from emodetect.modalities import ModalityData

    assert [m.name for m in BUILTIN] == ["vision", "text", "voice"]
    for modality in modalities():
        data = modality.data_module()
        assert isinstance(data, ModalityData), modality.name
        assert isinstance(data.EVALUATION_NEEDS_MODEL, bool)
        assert isinstance(modality.pipeline_class(), type)
        for reference in modality.commands:
            assert callable(load_object(reference))
        if modality.router:
            routes = load_object(modality.router + ":router")
            assert routes.routes and load_object(modality.router + ":SERVICE") == modality.name
        assert get_modality(modality.name) is modality


def test_the_engines_answer_in_one_shape():
    """FaceEmotion, TextEmotion and VoiceEmotion: predict, model_name, model_file, labels; the
    face engine's former name is the same class."""
    import emodetect
    from emodetect.vision.pipeline import EmotionDetector, FaceEmotion

    assert EmotionDetector is FaceEmotion is emodetect.FaceEmotion
    assert get_modality("vision").pipeline_class() is FaceEmotion
    for modality in BUILTIN:
        engine = modality.pipeline_class()(threads=1)
        assert callable(engine.predict) and engine.model_name == "default", modality.name
        assert engine.model_file.endswith(".onnx") and len(engine.labels) >= 6, modality.name
    assert emodetect.TextEmotion("accurate").model_file == "text_accurate.ensemble.json"


def test_each_rows_serve_model_option_and_card_text_reach_the_service_and_the_cards():
    """The table names each modality's `emodetect serve` model option (a ServeConfig field for the
    built-in rows) and the card text every model of the modality carries."""
    import typer.main

    from emodetect.cards import model_card
    from emodetect.cli import app
    from emodetect.errors import InputError
    from emodetect.serve.config import FIELD_NAMES, ServeConfig

    flags = {opt for p in typer.main.get_command(app).commands["serve"].params for opt in p.opts}
    assert [m.model_option for m in BUILTIN] == ["model", "text_model", "voice_model"]
    for modality in BUILTIN:
        assert modality.model_option in FIELD_NAMES, modality.name
        assert f"--{modality.model_option.replace('_', '-')}" in flags, modality.name
        assert ServeConfig(**{modality.model_option: "fast"}).model_for(modality.name) == "fast"
        assert modality.intended and modality.gaps, modality.name
        card = model_card("default", modality.name)
        assert modality.intended in card and all(f"- {gap}" in card for gap in modality.gaps)
    with pytest.raises(InputError, match="the voice model is ServeConfig.voice_model"):
        ServeConfig(models={"voice": "fast"})
    with pytest.raises(InputError, match="unknown modality 'smell'"):
        ServeConfig(models={"smell": "x.onnx"})


def test_a_data_module_missing_part_of_the_contract_is_named(tmp_path, monkeypatch):
    from emodetect.modalities import Modality

    (tmp_path / "half_modality.py").write_text("def training_data(cfg):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    half = Modality(name="half", summary="", data="half_modality", architectures="half_modality",
                    pipeline="half_modality:X")
    with pytest.raises(TypeError, match="lacks EVALUATION_NEEDS_MODEL, recognises, evaluation_data, "
                                        "evaluation_groups, export_example"):
        half.data_module()


def test_one_split_vocabulary_with_the_fer2013_names_as_aliases():
    from emodetect.config import SPLITS, TrainConfig, normalise_split

    assert SPLITS == ("train", "validation", "test")
    assert (TrainConfig().train_split, TrainConfig().val_split) == ("train", "validation")
    assert [normalise_split(s) for s in ("Training", "PublicTest", "PrivateTest", " VAL ", "dev", "test")] == \
        ["train", "validation", "test", "validation", "validation", "test"]
    assert normalise_split("speaker=03") == "speaker=03"


def test_unknown_config_keys_and_options_of_another_modality_are_refused(tmp_path):
    from emodetect.config import config_from_dict
    from emodetect.errors import InputError
    from emodetect.train import TrainConfig, train

    with pytest.raises(InputError, match="'epoch' \\(did you mean epochs"):
        config_from_dict({"epoch": 3})
    assert config_from_dict({"epochs": 3}).epochs == 3
    with pytest.raises(InputError, match="--wave-copies is read by voice training, not text"):
        train(TrainConfig(data=str(tmp_path / "x.csv"), model="kim_cnn_tiny", wave_copies=2, out=str(tmp_path)))
    with pytest.raises(InputError, match="--pretrained is read by vision and text training, not voice"):
        train(TrainConfig(data=str(tmp_path), model="mel_cnn_tiny", pretrained="x", out=str(tmp_path)))


def test_a_name_several_modalities_share_is_refused_not_guessed():
    from emodetect.errors import InputError
    from emodetect.runtime import resolve_model

    with pytest.raises(InputError, match="vision:default, text:default, voice:default"):
        resolve_model("default")
    assert resolve_model("text:default").path.name == "text_default.onnx"
    assert resolve_model("default", "voice").path.name == "voice_default.onnx"
    assert resolve_model("accurate").kind == "ensemble" and resolve_model("accurate").modality == "text"
    assert resolve_model("runs/x/best.pt").kind == "checkpoint" and resolve_model("runs/x/best.pt").modality is None
    with pytest.raises(InputError, match="is a text model, not voice"):
        resolve_model("text:default", "voice")
    with pytest.raises(KeyError, match="no bundled voice model named 'goemotions'"):
        resolve_model("goemotions", "voice")


def test_an_unknown_modality_is_named_with_the_known_ones():
    from emodetect.errors import InputError

    with pytest.raises(InputError, match="unknown modality 'smell'; known: vision, text, voice"):
        get_modality("smell")


def test_the_registry_knows_each_architectures_modality():
    from emodetect.registry import model_modality

    assert model_modality("vgg_fer") == "vision"
    assert model_modality("kim_cnn_tiny") == "text"
    assert model_modality("mel_cnn_tiny") == "voice"


def test_a_model_of_another_modality_is_refused_by_name(tmp_path):
    from emodetect.errors import InputError
    from emodetect.train import TrainConfig, train

    with pytest.raises(InputError, match="--model vgg_fer is a vision architecture, not text"):
        train(TrainConfig(data=str(tmp_path / "x.csv"), model="vgg_fer", modality="text", out=str(tmp_path)))


def _run(plugin: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "emodetect", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _emodetect(plugin: Path, cwd: Path, *args: str) -> str:
    done = _run(plugin, cwd, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _accuracy(markdown: str) -> float:
    return float(markdown.split("- accuracy: **")[1].split("**")[0])


def test_a_new_modality_is_one_package_and_one_registration(tmp_path, monkeypatch):
    plugin = _write_plugin(tmp_path / "plugin")
    data = _write_toy_data(tmp_path / "toy.csv")
    assets = plugin / "toy_modality" / "assets"

    # train: --modality follows from the architecture, which the toy package registered.
    trained = json.loads(_emodetect(plugin, tmp_path, "train", "--model", "toy_mlp", "--data", str(data),
                                    "--out", "run", "--epochs", "15", "--batch-size", "32", "--lr", "0.1",
                                    "--ema-decay", "0", "--label-smoothing", "0", "--no-bf16",
                                    "--threads", "1").strip().splitlines()[-1])
    assert trained["best_val_score"] > 0.85
    assert json.loads((tmp_path / "run" / "config.json").read_text())["modality"] == "toy"

    # export: the toy's own example input; no mirror test-time augmentation (not images).
    _emodetect(plugin, tmp_path, "export", "run/best.pt", "--out", str(assets / "toy_default.onnx"),
               "--name", "default")
    from emodetect.runtime import OnnxModel, write_catalog

    meta = OnnxModel(assets / "toy_default.onnx").metadata
    assert meta["modality"] == "toy" and meta["flip_tta"] == "false"
    write_catalog(assets)  # what the toy package ships beside its model

    # models, evaluate (by bundled name, and by file with the modality read from it), its command.
    listed = [json.loads(line) for line in _emodetect(plugin, tmp_path, "models", "--json").splitlines()]
    assert {"name": "default", "modality": "toy"}.items() <= next(m for m in listed if m["modality"] == "toy").items()
    assert any(m["modality"] == "vision" for m in listed)
    by_name = _emodetect(plugin, tmp_path, "evaluate", "default", str(data), "--modality", "toy")
    by_file = _emodetect(plugin, tmp_path, "evaluate", str(assets / "toy_default.onnx"), str(data))
    assert by_name == by_file  # the same model, found two ways
    assert _accuracy(by_name) > 0.85, by_name
    # its data named by the columns it recognises, and grouped by one of them (evaluation_groups)
    grouped = _emodetect(plugin, tmp_path, "evaluate", "default", str(data), "--group-by", "sign",
                         "--split", "PrivateTest")
    assert "## By sign" in grouped and "| up |" in grouped and _accuracy(grouped) == _accuracy(by_name)
    assert "toy" in _emodetect(plugin, tmp_path, "--help")
    # its card: the row's intended use and known gaps, as the built-in modalities' cards have theirs
    card = _emodetect(plugin, tmp_path, "models", "--card", "default", "--modality", "toy")
    assert "# Model card: `default` (toy)" in card
    assert "## Intended use\n\nTelling calm rows of eight numbers from excited ones, in tests." in card
    assert "## Known gaps\n\n- Knows only the sign of the first number." in card
    assert _emodetect(plugin, tmp_path, "toy", "3", "0", "0", "0", "0", "0", "0", "0").startswith("excited\t")
    assert _emodetect(plugin, tmp_path, "toy", "--", "-3", "0", "0", "0", "0", "0", "0", "0").startswith("calm\t")

    # the service: `emodetect serve --toy-model` names its model, checked like the others' before
    # the service starts; the toy router is mounted, the model it names loaded at start-up and
    # marked in /v1/models.
    pytest.importorskip("fastapi")
    assert "--toy-model" in _emodetect(plugin, tmp_path, "serve", "--help")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    refused = subprocess.run([sys.executable, "-m", "emodetect", "serve", "--toy-model", "nosuch"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert "--toy-model nosuch: no such file, and no bundled toy model named 'nosuch'" in refused.stderr
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    monkeypatch.syspath_prepend(str(plugin))
    model_file = str(assets / "toy_default.onnx")
    assert ServeConfig(models={"toy": model_file}).model_for("toy") == model_file
    with TestClient(create_app(ServeConfig(workers=1, models={"toy": model_file}))) as client:
        answer = client.post("/v1/toy", json={"values": [2, 0, 0, 0, 0, 0, 0, 0]})
        assert answer.status_code == 200 and answer.json()["label"] == "excited"
        models = client.get("/v1/models").json()["models"]
        assert any(m["modality"] == "toy" and m["loaded"] for m in models)
        assert "/v1/toy" in client.get("/openapi.json").json()["paths"]


def _toy_model(path: Path) -> Path:
    """An ONNX model of the toy contract, made by hand: 'excited' when the first value is positive."""
    import onnx
    from onnx import TensorProto, helper

    weights = np.zeros((8, 2), dtype=np.float32)
    weights[0] = (-4.0, 4.0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["values", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)], "toy",
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, [8, 2], weights.ravel())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"labels": json.dumps(["calm", "excited"]), "modality": "toy"})
    onnx.save(model, path)
    return path


def test_batch_reads_a_new_modality_from_its_table_row(tmp_path, monkeypatch):
    """Its files' suffixes and its worker, named in its row, are all `emodetect batch` needs."""
    pytest.importorskip("pyarrow")
    from emodetect.distributed import list_inputs

    plugin = _write_plugin(tmp_path / "plugin")
    folder = tmp_path / "readings"
    folder.mkdir()
    for i, first in enumerate((2.0, -2.0, 3.0)):
        (folder / f"r{i}.toy").write_text(" ".join([str(first)] + ["0"] * 7) + "\n")
    (folder / "broken.toy").write_text("not numbers\n")
    (folder / "notes.md").write_text("not read\n")
    monkeypatch.syspath_prepend(str(plugin))
    kind, items = list_inputs(folder)
    assert kind == "vectors" and [Path(i["source"]).name for i in items] == ["broken.toy", "r0.toy", "r1.toy", "r2.toy"]
    # What each Ray actor does with a block of them: the row's worker scores it.
    model = _toy_model(tmp_path / "toy.onnx")
    worker = load_object(get_modality("toy").batch.worker)(str(model))
    table = worker.score({name: np.array([item[name] for item in items]) for name in ("source", "path", "error")})
    assert table.column("label").to_pylist() == [None, "excited", "calm", "excited"]
    assert table.column("error").to_pylist()[0]  # the broken file's, as a row

    # The command, on a local Ray.
    pytest.importorskip("ray")
    pd = pytest.importorskip("pandas")
    done = _run(plugin, tmp_path, "batch", str(folder), "--out", "out", "--model", str(model), "--workers", "1")
    # exit 1: one input became an error row
    assert done.returncode == 1 and done.stdout.startswith("vectors: 4 found"), (done.stdout, done.stderr[-3000:])
    assert "1 error(s)" in done.stdout
    written = pd.read_parquet(tmp_path / "out")
    assert sorted(zip(written["source"].map(lambda s: Path(s).name), written["label"].fillna(""))) == [
        ("broken.toy", ""), ("r0.toy", "excited"), ("r1.toy", "calm"), ("r2.toy", "excited")]


DETECTOR_FILES = {
    "toy_detector.py": '''
        from emodetect.vision.detectors import Detection, FaceDetector


        class CentreDetector(FaceDetector):
            """One 'face': the middle third of the image."""

            name = "centre"

            def __init__(self, min_score=0.5, max_side=640, threads=1):
                super().__init__(min_score, max_side)

            def _detect(self, rgb):
                h, w = rgb.shape[:2]
                return [Detection(w / 3, h / 3, w / 3, h / 3, 0.9)]
    ''',
    "toy_detector-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: toy-detector\nVersion: 0.1\n",
    "toy_detector-0.1.dist-info/entry_points.txt": "[emodetect.face_detectors]\ncentre = toy_detector:CentreDetector\n",
}


def test_a_new_face_detector_is_one_module_and_one_registration(tmp_path):
    from PIL import Image

    plugin = tmp_path / "plugin"
    for name, text in DETECTOR_FILES.items():
        (plugin / name).parent.mkdir(parents=True, exist_ok=True)
        (plugin / name).write_text(textwrap.dedent(text).lstrip())
    Image.new("RGB", (300, 240), (128, 128, 128)).save(tmp_path / "grey.png")
    assert "centre" in _emodetect(plugin, tmp_path, "detect", "--help")
    line = json.loads(_emodetect(plugin, tmp_path, "detect", "grey.png", "--detector", "centre", "--json"))
    (face,) = line["faces"]
    assert face["box"] == {"x": 100, "y": 80, "width": 100, "height": 80}


def test_a_name_several_modalities_share_follows_the_data_it_is_given(tmp_path, fer_csv, caplog):
    from typer.testing import CliRunner

    from emodetect.cli import app

    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,label\nThank you so much this made my day!,happy\nI am so scared of tomorrow,fear\n"
                        "This is the worst service ever,angry\nI miss her so much,sad\n", encoding="utf-8")
    text = CliRunner().invoke(app, ["evaluate", "default", str(labelled)])
    assert text.exit_code == 0, text.output  # a FER-2013 header error before: the face model was chosen
    # the text model: the report names it `default` (its metadata name) and counts the 4 texts
    assert "Evaluation of `default`" in text.stdout and "labelled.csv[all]` (4 examples)" in text.stdout
    assert "no 'split' column: every row is scored" in caplog.text
    faces = CliRunner().invoke(app, ["evaluate", "default", str(fer_csv), "--split", "PrivateTest"])
    assert faces.exit_code == 0 and "fer.csv[PrivateTest]" in faces.stdout


def test_a_shared_name_on_data_that_does_not_say_asks_for_the_modality(tmp_path):
    from typer.testing import CliRunner

    from emodetect.cli import app

    (tmp_path / "notes.csv").write_text("comment,label\nfine,happy\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", "default", str(tmp_path / "notes.csv")])
    assert result.exit_code == 2
    assert "--modality vision or --modality text or --modality voice" in result.stderr
    card = CliRunner().invoke(app, ["models", "--card", "default"])
    assert card.exit_code == 0 and "(vision)" in card.stdout  # as the README shows it
    assert "--modality text or --modality voice" in card.stderr  # never silently the face model
    text_card = CliRunner().invoke(app, ["models", "--card", "default", "--modality", "text"])
    assert "(text)" in text_card.stdout and not text_card.stderr
