"""Explanations: what a face's emotion rests on, from the ONNX model alone (no torch), in the
library, the command line and the service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emodetect import EmotionDetector
from emodetect.vision.explain import occlusion_masks, rise_masks, saliency

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"


@pytest.fixture(scope="module")
def detector() -> EmotionDetector:
    return EmotionDetector("realtime-int8")


def test_saliency_finds_the_pixels_a_model_looks_at():
    """A toy model that reads only the top-left 12x12 corner: every method must light that corner."""
    def predict(crops: np.ndarray) -> np.ndarray:
        p = crops[:, :12, :12].mean(axis=(1, 2)) / 255.0
        return np.stack([p, 1 - p], axis=1)

    crop = np.zeros((48, 48), np.uint8)
    crop[:12, :12] = 255  # hiding fills with the mean grey: only hiding the corner changes the answer
    for method in ("rise", "occlusion"):
        heat = saliency(predict, crop, 0, method)
        assert heat.shape == (48, 48) and 0 <= heat.min() and heat.max() == pytest.approx(1.0)
        assert heat[:12, :12].mean() > 4 * heat[24:, 24:].mean(), method


def test_masks_cover_every_pixel():
    assert (occlusion_masks() == 0).any(axis=0).all()
    assert (rise_masks() < 0.5).any(axis=0).all() and (rise_masks() > 0.5).any(axis=0).all()


def test_a_smile_rests_on_the_mouth(detector):
    explanation = detector.explain(SAMPLES / "astronaut.jpg")
    (face,) = explanation.faces
    assert face.label == face.face.label == "happy" and face.saliency.shape == (48, 48)
    assert face.saliency[26:42, 12:36].mean() > 1.5 * face.saliency[0:16, 12:36].mean()  # mouth over forehead
    body = json.loads(explanation.to_json())
    assert len(body["faces"][0]["saliency"]) == 48 and body["method"] == "rise"
    x, y, side = face.crop_box
    box = face.face.box
    assert x <= box.x + box.width and box.x <= x + side  # the map's square sits on the face
    drawn = explanation.plot()
    assert drawn.shape == explanation.result.image.shape and not np.array_equal(drawn, explanation.result.image)


def test_another_emotion_can_be_explained_and_a_wrong_one_is_named(detector):
    explanation = detector.explain(SAMPLES / "astronaut.jpg", emotion="sad", method="occlusion")
    assert explanation.faces[0].label == "sad" and explanation.method == "occlusion"
    with pytest.raises(ValueError, match="unknown emotion 'bored'"):
        detector.explain(SAMPLES / "astronaut.jpg", emotion="bored")


def test_explain_runs_on_the_base_install_without_torch(tmp_path):
    """torch and onnx shadowed by modules that fail to import, as on a base install."""
    (tmp_path / "torch.py").write_text("raise ImportError('no torch here')\n")
    (tmp_path / "onnx.py").write_text("raise ImportError('no onnx here')\n")
    code = ("import sys; sys.path.insert(0, %r); from emodetect.cli import main; "
            "sys.argv = ['emodetect', 'explain', %r, '--out', %r, '--json', '--model', 'realtime-int8']; main()"
            % (str(tmp_path), str(SAMPLES / "astronaut.jpg"), str(tmp_path / "out")))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["faces"][0]["explained"] == "happy" and (tmp_path / "out" / "astronaut_explained.png").stat().st_size > 0


def test_http_explain_gives_maps_or_the_drawn_image():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    photo = (SAMPLES / "astronaut.jpg").read_bytes()
    with TestClient(create_app(ServeConfig(workers=1, model="realtime-int8"))) as client:
        answer = client.post("/v1/explain", content=photo)
        assert answer.status_code == 200
        face = answer.json()["faces"][0]
        assert face["explained"] == face["label"] and np.array(face["saliency"]).shape == (48, 48)
        drawn = client.post("/v1/explain?annotate=true&format=png", files={"file": ("a.jpg", photo, "image/jpeg")})
        assert drawn.status_code == 200 and drawn.content.startswith(b"\x89PNG")
        wrong = client.post("/v1/explain?emotion=bored", content=photo)
        assert wrong.status_code == 422 and "emotion" in wrong.json()["detail"]


def test_text_explanations_name_the_words_that_pushed_the_label():
    from emodetect import TextEmotion

    (result,) = TextEmotion().predict(["Thank you so much, this made my day!"], explain=True)
    top = max(result.explanation, key=lambda e: e["weight"])
    assert result.label == "happy" and result.heads["goemotions"].label == "gratitude" and top["token"] == "thank"
    assert [e["token"] for e in result.explanation][:3] == ["thank", "you", "so"]
    done = subprocess.run([sys.executable, "-m", "emodetect", "text", "This is the worst service ever", "--explain"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "rests on worst" in done.stdout, done.stdout
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(workers=1))) as client:
        plain = client.post("/v1/text", json={"texts": ["I love it"]}).json()["results"][0]
        explained = client.post("/v1/text?explain=true", json={"texts": ["I love it"]}).json()["results"][0]
    assert plain["explanation"] is None and {e["token"] for e in explained["explanation"]} == {"i", "love", "it"}


def test_voice_windows_that_carry_the_label_are_marked():
    from conftest import speech_like
    from emodetect import VoiceEmotion

    result = VoiceEmotion().predict(speech_like(6.0), sample_rate=16_000)
    windows = result.to_dict()["windows"]
    assert any(w["carries_label"] for w in windows)
    assert all(w["carries_label"] == (w["label"] == result.label) for w in windows)



def test_explain_writes_nothing_unless_out_is_given_and_counts_faces_on_a_bar(tmp_path, monkeypatch):
    """`explain photo.jpg --json` wrote photo_explained.png into the user's photo folder; a group
    photo ran for half a minute with no sign of progress."""
    import shutil

    from typer.testing import CliRunner

    import emodetect.vision.cli as vision_cli
    from emodetect.cli import app

    updates: list[int] = []

    class Bar:
        def update(self, n: int) -> None:
            updates.append(n)

        def close(self) -> None:
            pass

    monkeypatch.setattr(vision_cli, "_face_bar", Bar)
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = shutil.copy(SAMPLES / "group.jpg", photos / "group.jpg")
    explain = ["explain", str(photo), "--model", "realtime-int8", "--method", "occlusion"]
    as_json = CliRunner().invoke(app, [*explain, "--json"])
    as_text = CliRunner().invoke(app, explain)
    assert as_json.exit_code == 0 and as_text.exit_code == 0, as_json.output + as_text.output
    assert sorted(p.name for p in photos.iterdir()) == ["group.jpg"]
    document = json.loads(as_json.stdout.splitlines()[-1])
    assert document["image_out"] is None and len(document["faces"]) > 1
    assert updates == [1] * (2 * len(document["faces"]))
    drawn = CliRunner().invoke(app, [*explain, "--out", str(tmp_path / "out")])
    assert drawn.exit_code == 0 and (tmp_path / "out" / "group_explained.png").stat().st_size > 0


def test_many_faces_get_maps_only_up_to_the_cap_and_the_rest_are_named():
    """One photo with 256 faces held a worker for 526 s on /v1/explain (issue 34, point 4): past
    max_explain_faces the largest faces are mapped and the rest come back labelled, without a map."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    photo = (SAMPLES / "group.jpg").read_bytes()
    with TestClient(create_app(ServeConfig(workers=1, model="realtime-int8", max_explain_faces=1))) as client:
        answer = client.post("/v1/explain?method=occlusion", content=photo)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["faces"]) == 1 and len(body["unexplained"]) >= 1
    assert answer.headers["X-Faces-Explained"] == "1"
    assert answer.headers["X-Faces"] == str(1 + len(body["unexplained"]))
    mapped = body["faces"][0]["box"]
    assert all("saliency" not in f and f["label"] for f in body["unexplained"])
    assert all(f["box"]["width"] * f["box"]["height"] <= mapped["width"] * mapped["height"]
               for f in body["unexplained"])  # the largest face is the one mapped


def test_the_explain_command_caps_faces_per_image(tmp_path):
    from typer.testing import CliRunner

    from emodetect.cli import app

    done = CliRunner().invoke(app, ["explain", str(SAMPLES / "group.jpg"), "--model", "realtime-int8",
                                    "--method", "occlusion", "--json", "--max-faces", "1"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout.splitlines()[-1])
    assert len(document["faces"]) == 1 and len(document["unexplained"]) >= 1


def test_explain_is_fast_by_default_and_accurate_on_request(detector, tmp_path):
    """`explain` took 30 s for five faces (issue 32, point 6): by default a face's map costs a
    quarter of the model rows of the accurate one, asked for with accurate=True / --accurate /
    ?accurate=true."""
    from typer.testing import CliRunner

    from emodetect.cli import app

    rows: list[int] = []
    original = detector.predict_crops
    detector.predict_crops = lambda crops: rows.append(len(crops)) or original(crops)
    try:
        fast = detector.explain(SAMPLES / "astronaut.jpg")
        fast_rows, rows[:] = sum(rows), []
        accurate = detector.explain(SAMPLES / "astronaut.jpg", accurate=True)
        accurate_rows = sum(rows)
    finally:
        detector.predict_crops = original
    assert 4 * fast_rows <= accurate_rows + 8  # + the detection's own row
    assert not fast.accurate and accurate.to_dict()["accurate"] is True
    for explanation in (fast, accurate):  # both find the smile
        face = explanation.faces[0].saliency
        assert face[26:42, 12:36].mean() > 1.5 * face[0:16, 12:36].mean()
    done = CliRunner().invoke(app, ["explain", str(SAMPLES / "astronaut.jpg"), "--model", "realtime-int8",
                                    "--json", "--accurate"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.splitlines()[-1])["accurate"] is True
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emodetect.serve import ServeConfig, create_app

    photo = (SAMPLES / "astronaut.jpg").read_bytes()
    with TestClient(create_app(ServeConfig(workers=1, model="realtime-int8"))) as client:
        assert client.post("/v1/explain", content=photo).json()["accurate"] is False
        assert client.post("/v1/explain?accurate=true", content=photo).json()["accurate"] is True
