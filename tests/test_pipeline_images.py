"""Image loading: every input kind, EXIF orientation, and a clear ImageError for each bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emodetect.vision.images import ImageError, find_images, load_image

SAMPLES = Path(__file__).resolve().parent.parent / "emodetect" / "assets" / "samples"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))


def test_every_input_kind_gives_the_same_rgb_pixels(astronaut, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(astronaut).save(path)
    expected = astronaut
    assert np.array_equal(load_image(path), expected)
    assert np.array_equal(load_image(str(path)), expected)
    assert np.array_equal(load_image(path.read_bytes()), expected)
    assert np.array_equal(load_image(Image.fromarray(astronaut)), expected)
    assert np.array_equal(load_image(astronaut), expected)
    assert np.array_equal(load_image(np.ascontiguousarray(astronaut[..., ::-1]), color="bgr"), expected)


def test_grey_and_alpha_inputs_become_three_channels(astronaut):
    grey = astronaut[..., 0]
    for array in (grey, grey[..., None]):
        out = load_image(array)
        assert out.shape == (*grey.shape, 3) and out.dtype == np.uint8
        assert np.array_equal(out[..., 1], grey)
    rgba = np.dstack([astronaut, np.full(grey.shape, 255, np.uint8)])
    assert np.array_equal(load_image(rgba), astronaut)
    transparent = rgba.copy()
    transparent[..., 3] = 0
    assert (load_image(transparent) == 255).all()  # transparent shows as white, as in a viewer
    assert (load_image(Image.fromarray(transparent, "RGBA")) == 255).all()


def test_16_bit_and_float_images_are_scaled_not_clipped():
    ramp16 = (np.arange(256 * 4, dtype=np.uint16).reshape(16, 64) * 64)
    out = load_image(Image.fromarray(ramp16))
    assert Image.fromarray(ramp16).mode.startswith("I;16")
    assert out.min() == 0 and out.max() == 255
    floats = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    out = load_image(floats)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_exif_orientation_is_honoured(astronaut, tmp_path):
    # Store the picture lying on its side with an EXIF tag saying "rotate 90 degrees clockwise to view".
    stored = Image.fromarray(astronaut[:, :400]).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (512, 400, 3)  # upright again: taller than wide
    assert np.abs(out.astype(int) - astronaut[:, :400].astype(int)).mean() < 6
    # The same bytes without honouring EXIF would be wide, not tall.
    assert Image.open(path).size == (512, 400)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"hello, I am a text file", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image"),
])
def test_bad_bytes_raise_image_error_naming_the_problem(content, reason):
    with pytest.raises(ImageError, match=reason):
        load_image(content)


def test_truncated_file_is_reported_as_truncated(astronaut, tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[:5000])
    with pytest.raises(ImageError, match="truncated"):
        load_image(path)


def test_missing_empty_and_huge_files(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(tmp_path / "empty.png")
    Image.new("RGB", (400, 300)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="too many pixels"):
        load_image(tmp_path / "big.png", max_pixels=100_000)
    assert load_image(tmp_path / "big.png", max_pixels=120_000).shape == (300, 400, 3)


def test_arrays_that_are_not_images_are_refused():
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="empty image"):
        load_image(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((4, 4), np.nan))
    with pytest.raises(ImageError, match="cannot read an image from a dict"):
        load_image({})


def test_find_images_recurses_and_reports_missing_arguments(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.jpg", "a/b/y.PNG", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    files, missing = find_images([tmp_path / "a", tmp_path / "gone.jpg"])
    assert [f.name for f in files] == ["y.PNG", "x.jpg"]
    assert missing == [(tmp_path / "gone.jpg", "no such file or folder")]
