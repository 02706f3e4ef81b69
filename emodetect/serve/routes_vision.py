"""POST /v1/detect: faces and their emotions in an uploaded image, as JSON or as an annotated image."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from emodetect.serve.answers import answer
from emodetect.serve.schemas import DetectOptions, DetectResponse, ErrorBody, ExplainOptions, ExplainResponse
from emodetect.serve.state import ModelPool, ServeConfig, StateDep, service
from emodetect.vision.pipeline import FaceEmotion
from emodetect.serve.uploads import Upload, openapi_upload_body, read_upload
from emodetect.serve.work import check

SERVICE = "vision"
router = APIRouter(tags=["faces"])

UPLOAD_BODY = openapi_upload_body("image/*")
IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "empty or malformed upload"},
    413: {"model": ErrorBody, "description": "upload over the byte limit, or too many pixels"},
    415: {"model": ErrorBody, "description": "not an image, or an unsupported Content-Type"},
    422: {"model": ErrorBody, "description": "corrupt image, no 'file' field, or a bad query parameter"},
    503: {"model": ErrorBody, "description": "the face model is not loaded yet, or the service is stopping"},
    504: {"model": ErrorBody, "description": "the request ran past its deadline (request_timeout_s)"},
}


@dataclass
class VisionService:
    """The face pipeline, one copy per worker, and what /v1/models reports about it."""

    pool: ModelPool[FaceEmotion]
    model_name: str
    labels: tuple[str, ...]
    model_file: str | None = None  # file name of the ONNX model, to mark it in /v1/models


# A route's parameter `vision: VisionDep` is the face service, or 503 while it loads.
VisionDep = Annotated[VisionService, Depends(service(SERVICE))]


def load(config: ServeConfig) -> VisionService:
    """Start-up hook: build `config.workers` FaceEmotions (a few MB each)."""
    pool = ModelPool(lambda: FaceEmotion(model=config.model_for(SERVICE), detector=config.detector,
                                         threads=config.threads), config.workers)
    first = pool.first
    return VisionService(pool, first.model_name, tuple(first.labels), first.model_file)


def _encode(rgb: Any, fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    if fmt == "png":
        Image.fromarray(rgb).save(out, format="PNG", optimize=False)
    else:
        Image.fromarray(rgb).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _decode(data: bytes, max_pixels: int):
    """The header checked against the pixel limit, then the pixels decoded: once each. An
    ImageError is answered by the app's handler (its reason gives the status)."""
    from emodetect.vision.images import decode_image

    return decode_image(data, max_pixels=max_pixels)


def explain(vision: VisionService, upload: Upload, options: ExplainOptions,
            max_pixels: int, max_faces: int) -> tuple[dict[str, Any], bytes | None, str]:
    """Blocking work of one /v1/explain request: decode, detect, explain, maybe draw.

    Past `max_faces` faces the rest are answered without a map rather than refused: the count is
    known only after detection, and a group photo is an ordinary request whose every face still
    gets its label (256 faces mapped held a worker for 526 s)."""
    decoded = _decode(upload.data, max_pixels)
    with vision.pool.use() as detector:
        # The cancel check after each face's map: past the deadline, or with the client gone, the
        # worker is free after the face in hand (serve.work). An emotion the model does not have
        # is an InputError, a 422 from the app's handler.
        check()
        explanation = detector.explain(decoded.rgb, emotion=options.emotion, method=options.method,
                                       max_faces=max_faces, accurate=options.accurate,
                                       progress=lambda done, faces: check())
    if not options.annotate:
        return explanation.to_dict(), None, ""
    out_format = options.format or ("png" if decoded.format == "PNG" else "jpeg")
    return explanation.to_dict(), _encode(explanation.plot(), out_format), f"image/{out_format}"


def analyse(vision: VisionService, upload: Upload, options: DetectOptions,
            max_pixels: int) -> tuple[dict[str, Any], bytes | None, str]:
    """Blocking work of one request, run in a worker thread: check, decode, detect, maybe draw."""
    decoded = _decode(upload.data, max_pixels)
    fmt = decoded.format
    with vision.pool.use() as detector:
        result = detector.detect_rgb(decoded.rgb)
    if not (options.annotate or options.blur):
        return result.to_dict(), None, ""
    out_format = options.format or ("png" if fmt == "PNG" else "jpeg")
    return result.to_dict(), _encode(result.plot(blur=options.blur), out_format), f"image/{out_format}"


@router.post(
    "/v1/detect", response_model=DetectResponse, summary="Faces and their emotions in an image",
    openapi_extra=UPLOAD_BODY,
    responses=IMAGE_ERRORS | {
        200: {"content": {"image/jpeg": {}, "image/png": {}},
              "description": "JSON, or the annotated image with ?annotate=true or ?blur=true"},
    },
)
async def detect(
    request: Request,
    options: Annotated[DetectOptions, Query()],
    state: StateDep,
    vision: VisionDep,
) -> Any:
    """Send an image as multipart field `file` or as the raw body.

    The image is held in memory for the request only: it is never written to disk or logged.
    """
    upload = await read_upload(request, state.config.max_upload_bytes)
    start = time.perf_counter()
    body, image, media_type = await state.run(analyse, vision, upload, options, state.config.max_pixels)
    return answer(DetectResponse, body, start, image, media_type, **{"X-Faces": str(len(body["faces"]))})


@router.post(
    "/v1/explain", response_model=ExplainResponse, summary="What each face's emotion rests on: saliency maps",
    openapi_extra=UPLOAD_BODY,
    responses=IMAGE_ERRORS | {
        200: {"content": {"image/jpeg": {}, "image/png": {}},
              "description": "JSON with a 48x48 map per face, or the image with the maps drawn (?annotate=true)"},
        422: {"model": ErrorBody, "description": "corrupt image, an emotion the model lacks, or a bad query parameter"},
    },
)
async def explain_route(
    request: Request,
    options: Annotated[ExplainOptions, Query()],
    state: StateDep,
    vision: VisionDep,
) -> Any:
    """Send an image as for /v1/detect. Each face comes back with `saliency`, 48x48 values in 0..1
    over `crop_box` (the square the model read), computed from the ONNX model alone (RISE random
    masks by default; bench/explain.py measures its faithfulness). At most the service's
    `max_explain_faces` (8 by default) get a map, the largest first; the others come back in
    `unexplained`, labelled, and `X-Faces-Explained` says how many were mapped."""
    upload = await read_upload(request, state.config.max_upload_bytes)
    start = time.perf_counter()
    body, image, media_type = await state.run_long(explain, vision, upload, options, state.config.max_pixels,
                                              state.config.max_explain_faces)
    return answer(ExplainResponse, body, start, image, media_type,
                  **{"X-Faces": str(len(body["faces"]) + len(body["unexplained"])),
                     "X-Faces-Explained": str(len(body["faces"]))})
