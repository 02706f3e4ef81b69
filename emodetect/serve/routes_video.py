"""POST /v1/video: faces, voice and subtitles of an uploaded video on one timeline.

The upload is checked from its container header (a video stream, at most the duration limit)
before any frame is decoded, then analysed in a temporary folder that is removed when the
request ends, whatever happens: nothing uploaded is kept.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from emodetect.serve.answers import answer
from emodetect.serve.schemas import ErrorBody
from emodetect.serve.routes_vision import VisionDep, VisionService
from emodetect.serve.state import ServeState, StateDep
from emodetect.serve.tempfiles import upload_folder
from emodetect.serve.uploads import FIELD, UploadError, read_uploads
from emodetect.serve.work import check, checked

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
    text: dict[str, Any] = Field(description="how many subtitle cues (or utterances heard, without "
                                             "subtitles) were read, and from which (words_from)")
    fused: dict[str, Any] = Field(description="the fused label that holds the most time, and the mean agreement")
    segments: list[dict[str, Any]] = Field(description="per segment: each stream's estimate and the fused one")
    notes: list[str]
    video_mp4_base64: str | None = Field(None, description="with ?media=true: the annotated H.264 mp4")
    timeline_png_base64: str | None = Field(None, description="with ?media=true: the stacked timeline plot")


def _container_of(video: bytes) -> str:
    """The upload's container from its first bytes, before anything parses it: mp4/mov, Matroska/WebM
    or AVI. Anything else (an HLS playlist, a concat list, an image) is refused here, since FFmpeg
    left to probe such a file opens the files it names (issue 34)."""
    from emodetect.media import UPLOAD_FORMATS, sniff_container

    kind = sniff_container(video[:16])
    if kind is None:
        raise UploadError(415, "not a video this service reads: send mp4/mov, Matroska/WebM or AVI "
                               "(playlists and other containers are refused)")
    return UPLOAD_FORMATS[kind]


def _check_container(path: Path, max_seconds: float, container_format: str, max_frames: int,
                     max_pixels: int, segment_s: float | None = None, max_segments: int | None = None) -> None:
    """A video stream, and a duration, frame count and frame size within the limits, read from the
    header by the named demuxer. The header may lie: frames are counted, and each frame's size
    checked, again while decoding (`frame_limit`, `max_pixels`). With `segment_s` (no subtitles),
    the fixed segments the duration makes are at most `max_segments`."""
    import av

    from emodetect.media import ffmpeg_reason, open_container

    try:
        with open_container(path, container_format) as container:
            if not container.streams.video:
                raise UploadError(415, "not a video: the upload has no video stream")
            seconds = container.duration / 1e6 if container.duration else None
            frames = container.streams.video[0].frames  # 0 where the container does not say (Matroska)
            width = container.streams.video[0].codec_context.width or 0
            height = container.streams.video[0].codec_context.height or 0
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        # FFmpeg's message names the file, and so the server's temporary folder: not for the client.
        raise UploadError(415, f"not a video this service reads ({type(err).__name__}: {ffmpeg_reason(err)})") from err
    if seconds is None:
        raise UploadError(422, "the video's header gives no duration; remux it (e.g. to mp4) and send it again")
    if seconds > max_seconds:
        raise UploadError(413, f"video too long: {seconds:,.1f} s, the limit is {max_seconds:,.0f} s")
    if frames > max_frames:
        raise UploadError(413, f"video has too many frames: {frames:,}, the limit is {max_frames:,}")
    if width * height > max_pixels:
        raise UploadError(413, f"too many pixels per frame: {width}x{height} = {width * height:,}, "
                               f"the limit is {max_pixels:,}")
    if segment_s is not None and max_segments is not None and math.ceil(seconds / segment_s) > max_segments:
        raise UploadError(413, f"{seconds:,.1f} s in segments of {segment_s:g} s makes {math.ceil(seconds / segment_s):,} "
                               f"segments; the limit is {max_segments:,} (max_video_segments): ask for longer ?segment=")


@contextmanager
def _private_paths_unsaid(folder: str) -> Iterator[None]:
    """An InputError from the work on an upload's private folder, with the folder's path taken out
    of its message (the client named no such path); its status is the app handler's, from its reason."""
    from emodetect.errors import InputError

    try:
        yield
    except InputError as err:
        if folder not in str(err):
            raise
        raise InputError(str(err).replace(folder, ""), err.reason) from err


def _check_cues(path: Path, max_segments: int) -> None:
    """Subtitles of at most `max_segments` cues: each cue is one segment of the answer. Read before
    any frame is decoded (and again by the analysis; a file over multimodal.MAX_CUES is refused
    before it is parsed)."""
    from emodetect.multimodal import read_subtitles

    with _private_paths_unsaid(str(path.parent)):
        cues = len(read_subtitles(path))
    if cues > max_segments:
        raise UploadError(413, f"too many subtitle cues: {cues:,}; each is a segment of the answer and the limit "
                               f"is {max_segments:,} (max_video_segments)")


def analyse(state: ServeState, vision: VisionService, video: bytes, subtitles: bytes | None, name: str, captions: bool,
            media: bool, segment_s: float) -> dict[str, Any]:
    """Blocking work of one request, in a worker thread, inside a folder that is always removed."""
    from emodetect.multimodal import analyse_video

    container_format = _container_of(video)
    with upload_folder() as private:
        folder = str(private)
        # The client's name (letters, digits, _ and - only, no suffix) names the plot; a suffix or a
        # pattern could make a reader take the file for a playlist or an image sequence (`x.m3u8`,
        # `img%03d.png`), and every reader is told the demuxer anyway.
        path = Path(folder) / "in" / (re.sub(r"[^\w-]", "_", Path(name).stem)[-64:] or "upload")
        path.parent.mkdir()
        path.write_bytes(video)
        max_segments = state.config.max_video_segments
        _check_container(path, state.config.max_video_seconds, container_format,
                         state.config.max_video_frames, state.config.max_pixels,
                         None if subtitles is not None else segment_s, max_segments)
        srt = None
        if subtitles is not None:
            kind = ".vtt" if subtitles.lstrip(b"\xef\xbb\xbf \r\n").startswith(b"WEBVTT") else ".srt"
            srt = Path(folder) / f"subtitles{kind}"
            srt.write_bytes(subtitles)
            _check_cues(srt, max_segments)
        with _private_paths_unsaid(folder):
            # checked(...): each model call makes the request's cancel check first, so the work
            # stops between frames past the deadline or when the client goes (serve.work).
            with vision.pool.use() as detector:
                analysis = analyse_video(path, srt, Path(folder) / "out", captions=captions, segment_s=segment_s,
                                         emotion_detector=checked(detector),
                                         voice_engine=checked(state.services.get("voice")),
                                         text_reader=checked(state.services.get("text")), save_video=media,
                                         container_format=container_format,
                                         frame_limit=state.config.max_video_frames,
                                         max_pixels=state.config.max_pixels, check=check)
        if len(analysis.segments) > max_segments:  # utterances heard, where the header could not say
            raise UploadError(413, f"{len(analysis.segments):,} segments; the limit is {max_segments:,} "
                                   "(max_video_segments)")
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
        413: {"model": ErrorBody, "description": "upload over the video byte limit, longer than the duration limit, more frames than the frame limit, frames over the pixel limit, or more segments (subtitle cues) than the segment limit"},
        415: {"model": ErrorBody, "description": "not a video, or an unsupported Content-Type"},
        422: {"model": ErrorBody, "description": "unreadable subtitles, no 'file' field, or a bad query parameter"},
        503: {"model": ErrorBody, "description": "the face model is not loaded yet, video uploads in flight "
                                                "hold their byte budget (max_video_bytes_in_flight), or the service is stopping"},
        504: {"model": ErrorBody, "description": "the request ran past its deadline (request_timeout_s)"},
    },
)
async def video(
    request: Request,
    state: StateDep,
    vision: VisionDep,
    captions: Annotated[bool, Query(description="draw the fused label under the annotated video")] = True,
    media: Annotated[bool, Query(description="include the annotated mp4 and the timeline PNG (base64)")] = False,
    segment: Annotated[float, Query(ge=0.5, le=60, description="seconds per segment without subtitles")] = 3.0,
) -> Any:
    """Send the video as multipart field `file` (and optional subtitles as field `subtitles`), or
    as the raw body. It is written to a temporary folder for the decoder and removed when the
    answer is ready; nothing is kept or logged."""
    declared = request.headers.get("content-length", "")
    # The upload's bytes count against the budget of all video uploads in flight until the answer
    # is made: past it, 503 at once instead of memory held (serve.work.ByteBudget).
    with state.video_bytes.hold(int(declared) if declared.isdigit() else None) as take:
        uploads = await read_uploads(request, state.config.max_video_bytes, kind="video",
                                     examples="video/mp4, video/webm, ...", take=take)
        upload, subtitles = uploads[FIELD], uploads.get(SUBTITLES)
        start = time.perf_counter()
        body = await state.run_long(analyse, state, vision, upload.data, subtitles.data if subtitles else None,
                               upload.filename or "upload", captions, media, segment)
    return answer(VideoResponse, body, start)
