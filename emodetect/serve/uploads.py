"""Read an uploaded image or recording from a request into memory, within limits, without touching the disk.

FastAPI's `UploadFile` spools anything over 1 MB to a temporary file, and the service promises that
nothing uploaded is written to disk; so the body is read here, chunk by chunk up to the size limit,
and a multipart body is parsed in memory with python-multipart's streaming parser.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from emodetect.errors import InputError

# Multipart framing (boundaries, part headers) on top of the file itself.
MULTIPART_SLACK = 64 * 1024
RAW_TYPES = {"application/octet-stream", ""}
MAX_PARTS = 16  # a multipart upload needs one part (`file`); a few more are tolerated
FIELD = "file"


# An UploadError's status -> its reason code (errors.HTTP_STATUS), for a program reading `reason`.
_REASONS = {400: "malformed", 413: "too_large", 415: "unsupported", 422: "invalid"}


class UploadError(InputError):
    """Bad input from the client, in the error family: an HTTP status of its own (some have no
    reason code: 408 too slow, 503 busy) and a message naming the problem. The app's one handler
    answers it as it answers every InputError (errors.http_status reads `status`)."""

    def __init__(self, status: int, message: str):
        super().__init__(message, _REASONS.get(status, "invalid"))
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str  # as the client declared it ("" when it did not)
    filename: str | None = None


def media_type_of(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def _too_large(limit: int) -> UploadError:
    return UploadError(413, f"upload too large: the limit is {limit:,} bytes ({limit / 2**20:.1f} MB)")


async def read_body(request: Request, limit: int, timeout_s: float | None = None,
                    take: Callable[[int], None] | None = None) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes, and with 408 when it
    has not all arrived within `timeout_s` (default: the service's body timeout), so that a slow
    client cannot hold a worker's memory for ever. `take(n)` is told of each chunk's bytes as it
    arrives (a budget shared by the requests in flight: `serve.work.ByteBudget`)."""
    import anyio
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if timeout_s is None:
        timeout_s = request.app.state.emodetect.config.body_timeout_s
    chunks, size = [], 0
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if take is not None:
                    take(len(chunk))
                chunks.append(chunk)
    except TimeoutError as err:
        raise UploadError(408, f"the upload did not arrive within {timeout_s:g} s ({size:,} bytes received)") from err
    except ClientDisconnect as err:  # nobody is left to answer; no traceback in the log either
        raise UploadError(400, "the client disconnected before its upload was complete") from err
    return b"".join(chunks)


def parse_multipart(body: bytes, content_type: str, field: str = FIELD) -> Upload:
    """The part named `field` of a multipart/form-data body, parsed in memory."""
    return parse_multipart_fields(body, content_type, field)[field]


def parse_multipart_fields(body: bytes, content_type: str, field: str = FIELD) -> dict[str, Upload]:
    """Every complete part of a multipart/form-data body by name; `field` must be among them."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(400, "multipart upload without a boundary in its Content-Type header")

    parts: list[dict] = []
    header_field: list[bytes] = []
    header_value: list[bytes] = []

    def on_part_begin() -> None:
        # Thousands of tiny parts would keep the event loop parsing: stop at MAX_PARTS.
        if len(parts) >= MAX_PARTS:
            raise UploadError(400, f"multipart upload with more than {MAX_PARTS} parts; send one field {field!r}")
        parts.append({"headers": {}, "data": io.BytesIO(), "complete": False})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.append(data[start:end])

    def on_header_end() -> None:
        name = b"".join(header_field).decode("latin-1").lower()
        parts[-1]["headers"][name] = b"".join(header_value).decode("latin-1")
        header_field.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"].write(data[start:end])

    def on_part_end() -> None:
        parts[-1]["complete"] = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as err:
        raise UploadError(400, f"malformed multipart body: {err}") from err

    names, found = [], {}
    for part in parts:
        disposition = part["headers"].get("content-disposition", "")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        names.append(name)
        if not part["complete"]:
            raise UploadError(400, f"multipart field {name!r} is truncated (no closing boundary)")
        filename = options.get(b"filename")
        found.setdefault(name, Upload(part["data"].getvalue(), media_type_of(part["headers"].get("content-type", "")),
                                      filename.decode("utf-8", "replace") if filename is not None else None))
    if field not in found:
        listed = ", ".join(repr(n) for n in names) or "none"
        raise UploadError(422, f"multipart upload has no field {field!r} (fields found: {listed}); "
                               f"send the file as {field}=@...")
    return found


async def read_upload(request: Request, max_bytes: int, kind: str = "image",
                      examples: str = "image/jpeg, image/png, ...") -> Upload:
    """The uploaded bytes: multipart field `file`, or the raw body.

    Raw bodies are accepted with a `kind`/* type (image/*, audio/*), application/octet-stream or
    no type at all; any other declared type (JSON, text, a form) is refused with 415 before the
    body is read.
    """
    return (await read_uploads(request, max_bytes, kind, examples))[FIELD]


async def read_uploads(request: Request, max_bytes: int, kind: str = "image",
                       examples: str = "image/jpeg, image/png, ...",
                       take: Callable[[int], None] | None = None) -> dict[str, Upload]:
    """`read_upload`, with the other fields of a multipart upload beside `file` (a video's
    subtitles, say); all of them together within `max_bytes`; `take` as `read_body`'s."""
    content_type = request.headers.get("content-type", "")
    media_type = media_type_of(content_type)
    others: dict[str, Upload] = {}
    if media_type == "multipart/form-data":
        body = await read_body(request, max_bytes + MULTIPART_SLACK, take=take)
        others = parse_multipart_fields(body, content_type)
        upload = others.pop(FIELD)
        if len(upload.data) + sum(len(u.data) for u in others.values()) > max_bytes:
            raise _too_large(max_bytes)
    elif media_type.startswith(f"{kind}/") or media_type in RAW_TYPES:
        upload = Upload(await read_body(request, max_bytes, take=take), media_type)
    else:
        raise UploadError(415, f"unsupported Content-Type {media_type!r}: send the {kind} as multipart "
                               f"field {FIELD!r} or as the raw body ({examples})")
    if not upload.data:
        where = f"multipart field {FIELD!r}" if media_type == "multipart/form-data" else "request body"
        raise UploadError(400, f"empty upload: the {where} holds 0 bytes")
    return {FIELD: upload, **others}


def openapi_upload_body(media_type: str) -> dict:
    """OpenAPI description of an upload body (multipart `file`, or raw bytes of `media_type`).

    Bodies are read by hand (see `read_upload`), so FastAPI cannot describe them itself.
    """
    binary = {"type": "string", "format": "binary"}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": [FIELD], "properties": {FIELD: binary}}},
        media_type: {"schema": binary},
        "application/octet-stream": {"schema": binary},
    }}}
