"""Turn anything a user may hand us (path, bytes, PIL image, numpy array) into an RGB uint8 array.

Every failure is an `ImageError` whose message names the problem, so that a batch over a folder can
report the file and go on.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emodetect.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
READABLE = "JPEG, PNG, WebP, BMP, GIF, TIFF"
# The one pixel limit, for the library, the command line and the service: 40 MP covers an 8K frame
# or a modern phone photo; decoded RGB that is 120 MB.
DEFAULT_MAX_PIXELS = 40_000_000


class ImageError(InputError):
    """The input is not a usable image: missing, empty, corrupt, truncated, too large, or not one.

    `reason` (errors.HTTP_STATUS): empty, unsupported (no image format), too_large (pixels),
    invalid (corrupt or truncated)."""


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # H x W x 3 uint8, EXIF orientation applied
    format: str  # PIL's name of the file format ("JPEG", "PNG", ...); "" for arrays and PIL images


# What PIL's decoders raise on malformed bytes (its own fuzzers see all of these): a bad file is
# an ImageError that names it, never a crash of a batch.
PIL_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError,
                     ZeroDivisionError, struct.error)


def load_image(source: Any, max_pixels: int = DEFAULT_MAX_PIXELS, color: str = "rgb") -> np.ndarray:
    """Decode `source` into an H x W x 3 RGB uint8 array, honouring EXIF orientation.

    `source` is a path (str or Path), bytes, a PIL image or a numpy array. A numpy array is grey
    (H x W or H x W x 1), 3-channel or 4-channel; `color` says whether its channels are "rgb"
    (the default, as PIL and this library produce) or "bgr" (as OpenCV produces).
    """
    return decode_image(source, max_pixels, color).rgb


def decode_image(source: Any, max_pixels: int = DEFAULT_MAX_PIXELS, color: str = "rgb") -> DecodedImage:
    """`load_image`, with the file format beside the pixels: the header is read once, checked
    against `max_pixels` before any pixel is decoded, and the pixels are decoded once."""
    if isinstance(source, np.ndarray):
        return DecodedImage(_from_array(source, max_pixels, color), "")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError("empty data (0 bytes)", "empty")
        return _from_pil_file(io.BytesIO(data), max_pixels, f"the {len(data):,} bytes are")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if not path.is_file():
            raise ImageError(f"{path}: not a file")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)", "empty")
        try:
            handle = open(path, "rb")
        except OSError as err:  # permission denied, a folder turned file, ...
            raise ImageError(f"{path}: cannot read ({err.strerror or err})") from err
        with handle:
            return _from_pil_file(handle, max_pixels, "the file is")
    from PIL import Image

    if isinstance(source, Image.Image):
        return DecodedImage(_from_pil(source, max_pixels), "")
    raise ImageError(f"cannot read an image from a {type(source).__name__}; "
                     "give a path, bytes, a PIL image or a numpy array")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"empty image ({width}x{height})", "empty")
    if max_pixels and width * height > max_pixels:
        raise ImageError(f"too many pixels: {width}x{height} = {width * height:,}, the limit is "
                         f"{max_pixels:,} (decompression bomb guard)", "too_large")


def _bomb(err: Exception, max_pixels: int) -> ImageError:
    """PIL refuses more than twice its own limit inside open(), before we see the size."""
    count = re.search(r"\((\d+) pixels\)", str(err))
    size = f"{int(count.group(1)):,}" if count else "more than PIL accepts"
    return ImageError(f"too many pixels: {size}, the limit is {max_pixels:,} (decompression bomb guard)",
                      "too_large")


def _from_pil_file(handle: Any, max_pixels: int, what: str) -> DecodedImage:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(handle)
    except UnidentifiedImageError as err:
        raise ImageError(f"not an image: {what} in no format emodetect reads ({READABLE})",
                         "unsupported") from err
    except Image.DecompressionBombError as err:
        raise _bomb(err, max_pixels) from err
    except PIL_DECODE_ERRORS as err:
        raise ImageError(f"unreadable image ({type(err).__name__}: {err})") from err
    fmt = image.format or ""
    # The header is read; refuse huge images before decoding a single pixel.
    _check_size(*image.size, max_pixels)
    try:
        image.load()
    except Image.DecompressionBombError as err:
        raise _bomb(err, max_pixels) from err
    except PIL_DECODE_ERRORS as err:
        reason = "truncated" if "truncated" in str(err) else "corrupt"
        raise ImageError(f"{reason} {fmt or 'image'} ({err})") from err
    return DecodedImage(_from_pil(image, max_pixels), fmt)


def _from_pil(image: Any, max_pixels: int) -> np.ndarray:
    from PIL import Image, ImageOps

    _check_size(*image.size, max_pixels)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception as err:  # a broken EXIF block should not hide the pixels; PIL raises many types
        raise ImageError(f"corrupt EXIF data ({err})") from err
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float grey: stretch to 8 bits rather than clipping at 255.
        grey = np.asarray(image, dtype=np.float32)
        lo, hi = float(grey.min()), float(grey.max())
        grey = (grey - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(grey)
        return np.repeat(grey.round().astype(np.uint8)[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as an image viewer shows them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    try:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    except PIL_DECODE_ERRORS as err:
        raise ImageError(f"corrupt image ({err})") from err


def _from_array(array: np.ndarray, max_pixels: int, color: str) -> np.ndarray:
    if color not in ("rgb", "bgr"):
        raise InputError(f"color must be 'rgb' or 'bgr', not {color!r}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"array of shape {array.shape} is not an image "
                         "(expected H x W, H x W x 1, H x W x 3 or H x W x 4)")
    _check_size(array.shape[1], array.shape[0], max_pixels)
    array = _to_uint8(array)
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[..., None], 3, axis=2))
    if array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    if color == "bgr":
        array = array[..., ::-1]
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ImageError("float image contains NaN or infinity")
        # Floats in 0..1 are the common convention (matplotlib, scikit-image); else assume 0..255.
        scale = 255.0 if array.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(array * scale, 0, 255).round().astype(np.uint8)
    if array.dtype.kind in "iu":
        return np.clip(array, 0, 255).astype(np.uint8)
    raise ImageError(f"array of dtype {array.dtype} is not an image")


def find_images(paths: list[str | Path], suffixes: Collection[str] = IMAGE_SUFFIXES,
                ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively, following links once) into image files, in a stable order.

    Returns the files to read and the (path, reason) of what cannot be read: arguments that do not
    exist, folders that cannot be listed, dangling links, link loops, and FIFOs or devices named
    like images. Inside a folder, files are picked by suffix so that a stray notes.txt is not an
    error, but a file named .jpg that is not a JPEG is (it is reported when it fails to load).
    `suffixes` picks other files the same way (`emodetect batch` walks recordings with it too).
    """
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _walk(path, files, problems, suffixes)
        elif path.is_file():
            files.append(path)
        elif path.is_symlink():
            problems.append((path, "dangling symbolic link"))
        elif path.exists():
            problems.append((path, "not a regular file"))
        else:
            problems.append((path, "no such file or folder"))
    return files, problems


def _walk(root: Path, files: list[Path], problems: list[tuple[Path, str]], suffixes: Collection[str]) -> None:
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []

    def unreadable(err: OSError) -> None:
        problems.append((Path(err.filename), f"cannot list folder ({err.strerror or err})"))

    for folder, dirs, names in os.walk(root, onerror=unreadable, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:  # a link back to a folder already walked
            problems.append((Path(folder), "symbolic link loop, not followed"))
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix.lower() not in suffixes:
                continue
            if path.is_file():
                found.append(path)
            elif path.is_symlink() and not path.exists():
                problems.append((path, "dangling symbolic link"))
            else:
                problems.append((path, "not a regular file"))
    files.extend(sorted(found))
