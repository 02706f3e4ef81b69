"""POST /v1/detect: faces and their emotions in an uploaded image, as JSON or as an annotated image."""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from emodetect.serve.schemas import DetectOptions, DetectResponse, ErrorBody
from emodetect.serve.state import ModelPool, ServeConfig, ServeState, get_state, service
from emodetect.serve.uploads import Upload, UploadError, openapi_upload_body, read_upload

SERVICE = "vision"
router = APIRouter(tags=["faces"])

READABLE = "JPEG, PNG, WebP, BMP, GIF, TIFF"
UPLOAD_BODY = openapi_upload_body("image/*")


@dataclass
class VisionService:
    """The face pipeline, one copy per worker, and what /v1/models reports about it."""

    pool: ModelPool[Any]
    model_name: str
    labels: tuple[str, ...]
    model_file: str | None = None  # file name of the ONNX model, to mark it in /v1/models


def load(config: ServeConfig) -> VisionService:
    """Start-up hook: build `config.workers` EmotionDetectors (a few MB each)."""
    from emodetect import EmotionDetector

    pool = ModelPool(lambda: EmotionDetector(model=config.model, detector=config.detector,
                                             threads=config.threads), config.workers)
    onnx = getattr(pool.first, "_model", None)  # the pipeline's OnnxModel, for its file name
    path = getattr(onnx, "path", None)
    return VisionService(pool, pool.first.model_name, tuple(pool.first.labels),
                         path.name if path is not None else None)


def _inspect(data: bytes, max_pixels: int) -> str:
    """Read only the image header: refuse non-images (415) and pixel bombs (413) before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format or "", image.size
    except UnidentifiedImageError as err:
        raise UploadError(415, f"not an image: the {len(data):,} bytes received are in no format this "
                               f"service reads ({READABLE})") from err
    except Image.DecompressionBombError as err:
        # PIL refuses > 2x its own limit inside open(), before we see the size; its message has the count.
        count = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(count.group(1)):,}" if count else "more than PIL accepts"
        raise UploadError(413, f"image has too many pixels: {size}, the limit is {max_pixels:,} "
                               "(decompression bomb guard)") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise UploadError(422, f"corrupt image header: {err}") from err
    if width * height > max_pixels:
        raise UploadError(413, f"image has too many pixels: {width}x{height} = {width * height:,}, the "
                               f"limit is {max_pixels:,} (decompression bomb guard)")
    return fmt


def _encode(rgb: Any, fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    if fmt == "png":
        Image.fromarray(rgb).save(out, format="PNG", optimize=False)
    else:
        Image.fromarray(rgb).save(out, format="JPEG", quality=90)
    return out.getvalue()


def analyse(vision: VisionService, upload: Upload, options: DetectOptions,
            max_pixels: int) -> tuple[dict[str, Any], bytes | None, str]:
    """Blocking work of one request, run in a worker thread: check, decode, detect, maybe draw."""
    from emodetect.vision.images import ImageError, load_image

    fmt = _inspect(upload.data, max_pixels)
    try:
        image = load_image(upload.data, max_pixels=max_pixels)
    except ImageError as err:
        raise UploadError(422, f"unreadable {fmt or 'image'}: {err}") from err
    except (OSError, SyntaxError, ValueError) as err:  # a decoder error that escaped load_image
        raise UploadError(422, f"corrupt {fmt or 'image'}: {err}") from err
    with vision.pool.use() as detector:
        result = detector.detect(image)
    if not (options.annotate or options.blur):
        return result.to_dict(), None, ""
    out_format = options.format or ("png" if fmt == "PNG" else "jpeg")
    return result.to_dict(), _encode(result.plot(blur=options.blur), out_format), f"image/{out_format}"


@router.post(
    "/v1/detect", response_model=DetectResponse, summary="Faces and their emotions in an image",
    openapi_extra=UPLOAD_BODY,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}},
              "description": "JSON, or the annotated image with ?annotate=true or ?blur=true"},
        400: {"model": ErrorBody, "description": "empty or malformed upload"},
        413: {"model": ErrorBody, "description": "upload over the byte limit, or too many pixels"},
        415: {"model": ErrorBody, "description": "not an image, or an unsupported Content-Type"},
        422: {"model": ErrorBody, "description": "corrupt image, no 'file' field, or a bad query parameter"},
        503: {"model": ErrorBody, "description": "the face model is not loaded yet"},
    },
)
async def detect(
    request: Request,
    options: Annotated[DetectOptions, Query()],
    state: ServeState = Depends(get_state),
    vision: VisionService = Depends(service(SERVICE)),
) -> Any:
    """Send an image as multipart field `file` or as the raw body.

    The image is held in memory for the request only: it is never written to disk or logged.
    """
    upload = await read_upload(request, state.config.max_upload_bytes)
    start = time.perf_counter()
    body, image, media_type = await state.run(analyse, vision, upload, options, state.config.max_pixels)
    headers = {"Cache-Control": "no-store", "X-Faces": str(len(body["faces"])),
               "Server-Timing": f"inference;dur={(time.perf_counter() - start) * 1000:.1f}"}
    if image is not None:
        return Response(image, media_type=media_type, headers=headers)
    return Response(DetectResponse.model_validate(body).model_dump_json(), media_type="application/json",
                    headers=headers)
