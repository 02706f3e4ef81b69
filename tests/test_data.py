
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_faces, write_fer_csv
from emodetect.labels import EMOTIONS, canonical_emotion
from emodetect.vision.data import DataError, load_faces, read_fer_csv, read_ferplus


def test_fer_csv_splits_and_aliases(fer_csv):
    train = load_faces(fer_csv, "Training")
    val = load_faces(fer_csv, "val")
    test = load_faces(fer_csv, "PrivateTest")
    assert (len(train), len(val), len(test)) == (700, 140, 140)
    assert train.images.shape == (700, 48, 48) and train.images.dtype == np.uint8
    expected_images, expected_labels = synthetic_faces(700, 0)
    np.testing.assert_array_equal(train.labels, expected_labels)
    np.testing.assert_array_equal(train.images, expected_images)


def test_gzipped_csv_reads_like_plain(tmp_path):
    plain = write_fer_csv(tmp_path / "a.csv", {"Training": 20})
    packed = write_fer_csv(tmp_path / "a.csv.gz", {"Training": 20})
    np.testing.assert_array_equal(load_faces(plain).images, load_faces(packed).images)


def test_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path):
    good = " ".join(["10"] * 2304)
    path = write_fer_csv(tmp_path / "bad.csv", {"Training": 10}, extra_lines=[
        f"9,{good},Training",            # label out of range
        "3,1 2 3,Training",              # too few pixels
        f"x,{good},Training",            # label not a number
        "3," + " ".join(["300"] * 2304) + ",Training",  # pixel out of range
    ])
    dataset, _ = read_fer_csv(path, "Training")
    assert len(dataset) == 10
    assert len(dataset.skipped) == 4
    assert [s.split(":")[1] for s in dataset.skipped] == ["12", "13", "14", "15"]
    assert "2304" in dataset.skipped[1]


def test_missing_file_and_empty_split_are_clear_errors(tmp_path, fer_csv):
    with pytest.raises(DataError, match="no such file"):
        load_faces(tmp_path / "nope.csv", "Training")
    only_train = write_fer_csv(tmp_path / "t.csv", {"Training": 5})
    with pytest.raises(DataError, match="PrivateTest"):
        load_faces(only_train, "test")
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="header"):
        load_faces(tmp_path / "wrong.csv")


def test_ferplus_soft_labels_majority_and_non_faces(tmp_path):
    fer = write_fer_csv(tmp_path / "fer.csv", {"Training": 4})
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = [
        "Training,fer0.png,0,8,2,0,0,0,0,0,0,0",   # happy, some surprise
        "Training,,10,0,0,0,0,0,0,0,0,0",          # no name: FER+ dropped it as a non-face
        "Training,fer2.png,0,0,0,0,0,0,0,0,1,9",   # mostly 'not a face'
        "Training,fer3.png,0,0,0,0,3,0,0,5,0,0",   # contempt counts as disgust
    ]
    votes = tmp_path / "fer2013new.csv"
    votes.write_text("\n".join([header, *rows]) + "\n")
    data = read_ferplus(fer, votes, "Training")
    assert len(data) == 2
    assert [EMOTIONS[i] for i in data.labels] == ["happy", "disgust"]
    np.testing.assert_allclose(data.soft_labels[0, EMOTIONS.index("surprise")], 0.2)
    np.testing.assert_allclose(data.soft_labels.sum(1), 1.0, rtol=1e-6)


def test_image_folder_with_synonyms_and_a_corrupt_file(tmp_path):
    images, labels = synthetic_faces(14)
    names = {"angry": "anger", "happy": "happiness", "surprise": "surprised"}
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / "train" / names.get(EMOTIONS[label], EMOTIONS[label])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).resize((96, 96)).save(folder / f"{i}.png")
    (tmp_path / "train" / "sad" / "broken.jpg").write_bytes(b"not an image")
    data = load_faces(tmp_path, "train")
    assert len(data) == 14
    assert sorted(data.class_counts()) == sorted(np.bincount(labels, minlength=7).tolist())
    assert len(data.skipped) == 1 and "broken.jpg" in data.skipped[0]


def test_synonyms():
    assert canonical_emotion("Happiness") == "happy"
    with pytest.raises(ValueError, match="unknown emotion"):
        canonical_emotion("bored")


def test_training_folders_are_decoded_as_inference_decodes_them(tmp_path):
    """No train/serve skew: EXIF orientation and transparency are honoured in training folders too."""
    from PIL import Image

    from emodetect.vision.data import read_image_folder
    from emodetect.vision.faces import grey_face

    upright = np.zeros((60, 40), np.uint8)
    upright[:20] = 255  # bright top: an upright face is brighter above than below
    (tmp_path / "happy").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; viewers rotate it back
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).convert("RGB").save(
        tmp_path / "happy" / "turned.jpg", exif=exif, quality=95)
    rgba = np.zeros((48, 48, 4), np.uint8)  # fully transparent: white, as a viewer shows it
    Image.fromarray(rgba, "RGBA").save(tmp_path / "happy" / "clear.png")
    faces = read_image_folder(tmp_path)
    by_name = dict(zip(["clear.png", "turned.jpg"], faces.images))
    assert by_name["turned.jpg"][:12].mean() > 200 and by_name["turned.jpg"][-12:].mean() < 50
    assert by_name["clear.png"].min() == 255
    for name, image in by_name.items():
        assert np.array_equal(image, grey_face(tmp_path / "happy" / name))


SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"


def _photo_folder(root: Path) -> Path:
    """test/<emotion>/ of whole photos, as a user brings them: a smiling face and a photo with none."""
    import shutil

    for emotion, name in (("happy", "astronaut.jpg"), ("sad", "coffee.jpg")):
        (root / "test" / emotion).mkdir(parents=True)
        shutil.copy(SAMPLES / name, root / "test" / emotion / name)
    return root


def test_a_folder_of_photos_is_cropped_as_detect_crops_and_a_photo_without_a_face_is_skipped(tmp_path):
    from emodetect.vision.pipeline import EmotionDetector

    data = load_faces(_photo_folder(tmp_path), "test")
    assert len(data) == 1 and [EMOTIONS[i] for i in data.labels] == ["happy"]
    assert len(data.skipped) == 1 and "coffee.jpg" in data.skipped[0] and "no face" in data.skipped[0]
    assert "largest face found by yunet" in data.source
    _, _, crops = EmotionDetector().detect_with_crops(np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB")))
    assert np.array_equal(data.images[0], crops[0])


def test_evaluate_on_a_folder_of_photos_reads_their_faces(tmp_path):
    from emodetect.evaluate import evaluate

    report = evaluate("default", _photo_folder(tmp_path), "test")
    assert report.n == 1 and report.accuracy == 1.0  # whole photos read as 48x48 crops scored 0.0
