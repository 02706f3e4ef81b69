"""POST /v1/text/report: the report on posts and reviews (emodetect.text.report) from an uploaded CSV.

The CSV is read from memory in chunks and scored by the service's text model; the answer is the
report's figures (`summary`) and its self-contained page (`html`: inline styles, charts as data:
URIs). Bounded by the upload limit and by `max_report_rows`, counted from the bytes before any row
is parsed; the request deadline is checked between chunks.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from emodetect.serve.answers import answer
from emodetect.serve.schemas import ErrorBody
from emodetect.serve.routes_text import TextDep
from emodetect.serve.state import StateDep
from emodetect.serve.uploads import UploadError, openapi_upload_body, read_upload
from emodetect.serve.work import check
from emodetect.text.pipeline import TextEmotion

router = APIRouter(tags=["text"])
CHUNK = 1024  # rows scored between two deadline checks


class ReportResponse(BaseModel):
    summary: dict[str, Any] = Field(description="the report's figures: shares with intervals, trend, changes, "
                                                "before/after, typical texts, input hygiene, the model")
    html: str = Field(description="the report as one self-contained HTML page")


def _build(engine: TextEmotion, data: bytes, name: str, column: str, by: str | None, over: str | None, every: str,
           split_at: str | None, dayfirst: bool | None) -> dict[str, Any]:
    """Blocking work of one request: decode, score chunk by chunk, draw, render."""
    from emodetect.text.report import ReportBuilder, csv_chunks
    from emodetect.text.report_html import write_report

    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise UploadError(415, f"{name}: not a UTF-8 or UTF-16 CSV ({err.reason} at byte {err.start})") from None
    # A DataError (a missing column, a date read two ways) is answered by the app's one handler.
    builder = ReportBuilder(engine, by=by, over=over, every=every, split_at=split_at, dayfirst=dayfirst,
                            source=name)
    for rows, where in csv_chunks(io.StringIO(text, newline=""), [c for c in (column, by, over) if c], CHUNK, name):
        check()
        builder.predict_rows(rows, column, where)
    report = builder.finish()
    # The charts are drawn to PNG files by the page writer: a folder of our own, gone at once.
    with tempfile.TemporaryDirectory(prefix="emodetect-report-") as folder:
        html = write_report(report, Path(folder)).read_text(encoding="utf-8")
    return {"summary": report.to_dict(), "html": html}


@router.post(
    "/v1/text/report", response_model=ReportResponse, summary="A report on posts and reviews from a CSV",
    openapi_extra=openapi_upload_body("text/csv"),
    responses={
        400: {"model": ErrorBody, "description": "an empty upload, or multipart framing that cannot be read"},
        413: {"model": ErrorBody, "description": "a body over the upload limit, or more rows than max_report_rows"},
        415: {"model": ErrorBody, "description": "not a UTF-8/UTF-16 CSV, or an unsupported Content-Type"},
        422: {"model": ErrorBody, "description": "a column that is not in the CSV, or dates that cannot be read"},
        503: {"model": ErrorBody, "description": "the text model is not loaded yet, or the service is stopping"},
        504: {"model": ErrorBody, "description": "the request ran past its deadline (request_timeout_s)"},
    },
)
async def text_report(
    request: Request,
    state: StateDep,
    engine: TextDep,
    column: Annotated[str, Query(max_length=200, description="the column holding the texts")] = "text",
    by: Annotated[str | None, Query(max_length=200, description="a column to compare groups by (product, shop)")] = None,
    over: Annotated[str | None, Query(max_length=200, description="a date column: shares over time")] = None,
    every: Annotated[Literal["day", "week", "month"], Query(description="the period of the trend")] = "week",
    split_at: Annotated[str | None, Query(max_length=40, description="a date: before/after comparison")] = None,
    dayfirst: Annotated[bool | None, Query(description="01/03/2026 is 1 March (true) or 3 January (false)")] = None,
) -> Any:
    """Send the CSV as multipart field `file` or as the raw body (`text/csv`); at most
    `max_report_rows` rows. Nothing is kept: the CSV is read in memory and dropped."""
    upload = await read_upload(request, state.config.max_upload_bytes, kind="text", examples="text/csv")
    rows = upload.data.count(b"\n")  # at least the rows after the header, quoted line breaks included
    if rows > state.config.max_report_rows:
        raise UploadError(413, f"the CSV has up to {rows:,} rows; the limit is {state.config.max_report_rows:,} "
                               "(max_report_rows): run emodetect text --file FILE --report DIR for more")
    start = time.perf_counter()
    body = await state.run_long(_build, engine, upload.data, upload.filename or "upload.csv", column, by, over, every,
                           split_at, dayfirst)
    return answer(ReportResponse, body, start)
