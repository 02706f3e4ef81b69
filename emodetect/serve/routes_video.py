"""POST /v1/video: faces, voice and subtitles of an uploaded video on one timeline.

The upload is checked from its container header (a video stream, at most the duration limit)
before any frame is decoded, then analysed in a temporary folder that is removed when the
request ends, whatever happens: nothing uploaded is kept.
"""

from __future__ import annotations

import base64
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from emodetect.serve.answers import answer
from emodetect.serve.schemas import ErrorBody
from emodetect.serve.state import ServeState, get_state, service
from emodetect.serve.uploads import FIELD, UploadError, read_uploads

router = APIRouter(tags=["video"])
SUBTITLES = "subtitles"
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": [FIELD], "properties": {
        FIELD: {"type": "string", "format": "binary", "description": "the video (mp4, webm, mkv, mov, ...)"},
        SUBTITLES: {"type": "string", "format": "binary", "description": "optional SubRip or WebVTT subtitles"}}}},
    "video/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}}


class VideoResponse(BaseModel):
    """`VideoAnalysis.to_dict()` without file paths, and the media when asked for."""

    source: str
    faces: dict[str, Any] = Field(description="frames read and analysed, and per face track its span and mean")
    voice: dict[str, Any] | None = Field(description="the sound track's label and windows; null without sound")
    text: dict[str, Any] = Field(description="how many subtitle cues were read")
    fused: dict[str, Any] = Field(description="the fused label that holds the most time, and the mean agreement")
    segments: list[dict[str, Any]] = Field(description="per segment: each stream's estimate and the fused one")
    notes: list[str]
    video_mp4_base64: str | None = Field(None, description="with ?media=true: the annotated H.264 mp4")
    timeline_png_base64: str | None = Field(None, description="with ?media=true: the stacked timeline plot")


def _check_container(path: Path, max_seconds: float) -> None:
    """A video stream, and a duration within the limit, read from the header."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UploadError(415, "not a video: the upload has no video stream")
            seconds = container.duration / 1e6 if container.duration else None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise UploadError(415, f"not a video this service reads ({type(err).__name__}: {err})") from err
    if seconds is None:
        raise UploadError(422, "the video's header gives no duration; remux it (e.g. to mp4) and send it again")
    if seconds > max_seconds:
        raise UploadError(413, f"video too long: {seconds:,.1f} s, the limit is {max_seconds:,.0f} s")


def analyse(state: ServeState, vision: Any, video: bytes, subtitles: bytes | None, name: str, captions: bool,
            media: bool, segment_s: float) -> dict[str, Any]:
    """Blocking work of one request, in a worker thread, inside a folder that is always removed."""
    from emodetect.errors import InputError, http_status
    from emodetect.multimodal import analyse_video

    with tempfile.TemporaryDirectory(prefix="emodetect-video-") as folder:
        # The user's file name (made safe) names the plot; the suffix helps the demuxer guess.
        safe = re.sub(r"[^\w.-]", "_", Path(name).name)[-64:].lstrip(".") or "upload"
        path = Path(folder) / (safe if Path(safe).suffix else safe + ".mp4")
        path.write_bytes(video)
        _check_container(path, state.config.max_video_seconds)
        srt = None
        if subtitles is not None:
            kind = ".vtt" if subtitles.lstrip(b"\xef\xbb\xbf \r\n").startswith(b"WEBVTT") else ".srt"
            srt = Path(folder) / f"subtitles{kind}"
            srt.write_bytes(subtitles)
        try:
            with vision.pool.use() as detector:
                analysis = analyse_video(path, srt, Path(folder) / "out", captions=captions, segment_s=segment_s,
                                         emotion_detector=detector, voice_engine=state.services.get("voice"),
                                         text_reader=state.services.get("text"), save_video=media)
        except InputError as err:
            raise UploadError(http_status(err), str(err).replace(folder, "")) from err
        body = analysis.to_dict()
        body["source"] = name
        body["faces"] = {k: v for k, v in body["faces"].items() if k not in ("outputs", "source")}
        body.pop("outputs", None)
        if media:
            body["video_mp4_base64"] = base64.b64encode(Path(analysis.outputs["video"]).read_bytes()).decode()
            body["timeline_png_base64"] = base64.b64encode(Path(analysis.outputs["timeline"]).read_bytes()).decode()
    return body


@router.post(
    "/v1/video", response_model=VideoResponse, summary="Faces, voice and subtitles of a video on one timeline",
    openapi_extra=UPLOAD_BODY,
    responses={
        400: {"model": ErrorBody, "description": "empty or malformed upload"},
        408: {"model": ErrorBody, "description": "the upload did not arrive in time"},
        413: {"model": ErrorBody, "description": "upload over the video byte limit, or longer than the duration limit"},
        415: {"model": ErrorBody, "description": "not a video, or an unsupported Content-Type"},
        422: {"model": ErrorBody, "description": "unreadable subtitles, no 'file' field, or a bad query parameter"},
        503: {"model": ErrorBody, "description": "the face model is not loaded yet"},
    },
)
async def video(
    request: Request,
    captions: Annotated[bool, Query(description="draw the fused label under the annotated video")] = True,
    media: Annotated[bool, Query(description="include the annotated mp4 and the timeline PNG (base64)")] = False,
    segment: Annotated[float, Query(ge=0.5, le=60, description="seconds per segment without subtitles")] = 3.0,
    state: ServeState = Depends(get_state),
    vision: Any = Depends(service("vision")),
) -> Any:
    """Send the video as multipart field `file` (and optional subtitles as field `subtitles`), or
    as the raw body. It is written to a temporary folder for the decoder and removed when the
    answer is ready; nothing is kept or logged."""
    uploads = await read_uploads(request, state.config.max_video_bytes, kind="video",
                                 examples="video/mp4, video/webm, ...")
    upload, subtitles = uploads[FIELD], uploads.get(SUBTITLES)
    start = time.perf_counter()
    body = await state.run(analyse, state, vision, upload.data, subtitles.data if subtitles else None,
                           upload.filename or "upload", captions, media, segment)
    return answer(VideoResponse, body, start)
