"""Knowledge distillation for face models: `emodetect train --teacher MODEL` on face data."""

from importlib.resources import files as files_of

import numpy as np
import pytest
from typer.testing import CliRunner

from emodetect.cli import app
from emodetect.errors import DataError
from emodetect.export import export_checkpoint
from emodetect.labels import EMOTIONS
from emodetect.runtime import OnnxModel
from emodetect.train import TrainConfig, train
from emodetect.vision.data import load_faces
from emodetect.vision.distill import distill_targets

runner = CliRunner()
TRAIN = ["--model", "tiny_fer", "--batch-size", "32", "--no-augment", "--no-bf16", "--threads", "1"]


@pytest.fixture(scope="module")
def shifted_teacher(tmp_path_factory):
    """A teacher trained on labels shifted by one (stripes k read as emotion k+1), and the data
    with the true labels: a student that answers like the teacher heard it, not the labels."""
    from conftest import synthetic_faces, write_fer_csv

    root = tmp_path_factory.mktemp("distill")
    data = write_fer_csv(root / "fer.csv", {"Training": 700, "PublicTest": 140, "PrivateTest": 140})
    lines = data.read_text().splitlines()
    shifted = [lines[0]] + [f"{(int(line.split(',', 1)[0]) + 1) % len(EMOTIONS)},{line.split(',', 1)[1]}"
                            for line in lines[1:]]
    (root / "shifted.csv").write_text("\n".join(shifted) + "\n")
    cfg = TrainConfig(data=str(root / "shifted.csv"), out=str(root / "teacher"), model="tiny_fer", epochs=3,
                      batch_size=32, lr=0.05, augment=False, ema_decay=0.99, threads=1)
    teacher = export_checkpoint(train(cfg).best_checkpoint, root / "teacher.onnx", flip_tta=False).path
    return data, teacher


def test_face_targets_mix_the_labels_with_the_teachers_probabilities(shifted_teacher):
    data, teacher = shifted_teacher
    faces = load_faces(data, "Training")
    one_hot = np.eye(len(EMOTIONS), dtype=np.float32)[faces.labels]
    mixed = distill_targets(str(teacher), faces.images, one_hot, 0.3, threads=1)
    expected = 0.7 * one_hot + 0.3 * OnnxModel(teacher).predict(faces.images[:, None].astype(np.float32))
    np.testing.assert_allclose(mixed, expected, atol=1e-5)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-5)
    # The shifted teacher disagrees with the labels: the mix really holds its answers.
    assert (mixed.argmax(1) == faces.labels).mean() > 0.9
    assert (distill_targets(str(teacher), faces.images, one_hot, 1.0).argmax(1) == (faces.labels + 1) % 7).mean() > 0.8


def test_a_student_taught_by_the_face_teacher_alone_answers_like_it(shifted_teacher, tmp_path):
    """--distill 1 through the command line: no label reaches the student, so it reads the stripes
    as the teacher does, one emotion over from the labels."""
    data, teacher = shifted_teacher
    out = tmp_path / "student"
    result = runner.invoke(app, ["train", "--data", str(data), "--teacher", str(teacher), "--distill", "1",
                                 "--out", str(out), "--epochs", "3", "--lr", "0.05", *TRAIN])
    assert result.exit_code == 0, result.output
    # last.pt: best.pt is chosen on the true labels, which this student is taught to ignore.
    student = OnnxModel(export_checkpoint(out / "last.pt", tmp_path / "student.onnx", flip_tta=False).path)
    faces = load_faces(data, "PrivateTest")
    said = student.predict(faces.images[:, None].astype(np.float32)).argmax(1)
    assert (said == (faces.labels + 1) % 7).mean() > 0.8
    assert (said == faces.labels).mean() < 0.3


@pytest.mark.parametrize("flags, words", [
    (["--teacher", "no-such-model"], "no-such-model"),
    (["--teacher", "TEACHER", "--distill", "1.5"], "between 0 and 1"),
    (["--teacher", "goemotions"], "no bundled vision model named 'goemotions'"),
    (["--teacher", "GOEMOTIONS_FILE"], "other labels"),
    (["--distill-heads", "main"], "read by text training"),
])
def test_a_face_teacher_that_cannot_teach_is_refused_by_name(shifted_teacher, tmp_path, flags, words):
    data, teacher = shifted_teacher
    files = {"TEACHER": str(teacher), "GOEMOTIONS_FILE": str(files_of("emodetect") / "assets" / "text_goemotions.onnx")}
    flags = [files.get(flag, flag) for flag in flags]
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                                 *flags, *TRAIN])
    assert result.exit_code != 0
    assert words in result.output, result.output
    assert not (tmp_path / "run" / "best.pt").exists()


def test_distill_share_outside_zero_to_one_is_a_data_error(shifted_teacher):
    data, teacher = shifted_teacher
    faces = load_faces(data, "PublicTest")
    with pytest.raises(DataError, match="--distill"):
        distill_targets(str(teacher), faces.images, np.eye(7, dtype=np.float32)[faces.labels], -0.1)
