"""POST /v1/text: emotion in a JSON list of texts, with the bundled text model (the joint model by default)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from emodetect.serve.answers import answer
from emodetect.serve.schemas import ErrorBody
from emodetect.serve.state import ServeConfig, StateDep, service
from emodetect.serve.uploads import UploadError, media_type_of, read_body
from emodetect.serve.work import check
from emodetect.text.pipeline import TextEmotion

SERVICE = "text"
router = APIRouter(tags=["text"])

MAX_TEXTS = 1000  # per request: a larger batch should be split by the client
MAX_CHARS = 20_000  # per text: far past what the model reads (its first max_tokens tokens)
BATCH = 256  # texts per model call, with the request's cancel check between calls


class TextRequest(BaseModel):
    """The texts to read, in order; at most 1000, each at most 20,000 characters."""

    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS,
                             examples=[["Thank you so much, this made my day!", "I can't believe they cancelled it."]])


class TokenWeight(BaseModel):
    token: str
    weight: float = Field(description="fall of the label's probability when the token is left out; "
                                      "positive: the token pushed towards the label")


class HeadItem(BaseModel):
    label: str | None = Field(description="most probable label of this head; null for an empty text")
    labels: list[str] = Field(description="this head's labels at or above their thresholds (multi-label), else [label]")
    probabilities: dict[str, float]
    title: str = Field("", description="what the label set is, for people: '28 fine-grained', '6 basic'")


class TextItem(BaseModel):
    text: str
    label: str | None = Field(description="most probable label; null for an empty text")
    labels: list[str] = Field(description="labels at or above their tuned thresholds")
    probabilities: dict[str, float]
    group: str | None = Field(None, description="the face model's emotion that `label` belongs to")
    group_probabilities: dict[str, float] | None = None
    tokens: int
    truncated: bool = Field(description="true when the text had more tokens than the model reads")
    error: str | None = Field(None, description="why a text got no label (e.g. 'empty text')")
    explanation: list[TokenWeight] | None = Field(
        None, description="with ?explain=true: each token read and how much the label's probability falls without it")
    heads: dict[str, HeadItem] | None = Field(
        None, description="a multi-head model's answers in each corpus's own labels (the joint model: "
                          "goemotions' 28, isear's 7, dair's 6)")


class TextResponse(BaseModel):
    model: str
    labels: list[str]
    multilabel: bool
    heads: dict[str, list[str]] = Field(default_factory=dict, description="each extra head's labels")
    max_tokens: int
    results: list[TextItem]


# A route's parameter `model: TextDep` is the text model (an ensemble is a TextEmotion too), or 503
# while it loads.
TextDep = Annotated[TextEmotion, Depends(service(SERVICE))]


def load(config: ServeConfig) -> TextEmotion:
    """Start-up hook: one TextEmotion (onnxruntime sessions are thread-safe, so one is shared)."""
    return TextEmotion(config.model_for(SERVICE), threads=config.threads)


def _predict(model: TextEmotion, texts: list[str], explain: bool = False,
             max_explain_tokens: int | None = None) -> dict[str, Any]:
    if explain and max_explain_tokens is not None:
        # Counted before any model call: 1,000 texts of 200 words explained held a worker ~49 minutes.
        cost = model.explain_cost(texts)
        if cost > max_explain_tokens:
            raise UploadError(413, f"explaining these texts reads {cost:,} tokens; the limit per request is "
                                   f"{max_explain_tokens:,} (max_explain_tokens): send fewer or shorter texts")
    # A batch, or one text's explanation, at a time, each after the cancel check: the request's
    # deadline or its client leaving stops the work here (serve.work).
    results = []
    for start in range(0, len(texts), BATCH):
        check()
        results += model.predict(texts[start:start + BATCH])
    for r in results if explain else []:
        if r.label is not None:
            check()
            r.explanation = model.explain(r.text, r.label)
    return {"model": model.name, "labels": list(model.labels), "multilabel": model.multilabel,
            "heads": {s.name: list(s.labels) for s in model.head_segments},
            "max_tokens": model.max_tokens, "results": [r.to_dict() for r in results]}


def _parse(raw: bytes) -> TextRequest:
    """The request body as a TextRequest, or a 422 that says what is wrong (without echoing it)."""
    from pydantic import ValidationError

    try:
        body = TextRequest.model_validate_json(raw)
    except ValidationError as err:
        problems = "; ".join(f"{' '.join(map(str, e.get('loc', ()))) or 'body'}: {e.get('msg', 'invalid')}"
                             for e in err.errors()[:5])
        raise UploadError(422, f"not a JSON object with a non-empty list 'texts' of strings: {problems}") from err
    # pydantic's JSON parser already refuses an unpaired surrogate ("\ud800"): a 422 above.
    for i, text in enumerate(body.texts):
        if len(text) > MAX_CHARS:
            raise UploadError(413, f"text {i} has {len(text):,} characters; the limit is {MAX_CHARS:,}")
    return body


@router.post(
    "/v1/text", response_model=TextResponse, summary="Emotion in a list of texts",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": TextRequest.model_json_schema()}}}},
    responses={
        413: {"model": ErrorBody, "description": f"a body over the upload limit, a text over {MAX_CHARS:,} characters, "
                                                 "or with ?explain=true more tokens than max_explain_tokens"},
        415: {"model": ErrorBody, "description": "a Content-Type other than application/json"},
        422: {"model": ErrorBody, "description": "not a JSON object with a non-empty list `texts` of strings"},
        503: {"model": ErrorBody, "description": "the text model is not loaded yet, or the service is stopping"},
        504: {"model": ErrorBody, "description": "the request ran past its deadline (request_timeout_s)"},
    },
)
async def read_texts(
    request: Request,
    state: StateDep,
    model: TextDep,
    explain: Annotated[bool, Query(description="add which words pushed each label (token occlusion)")] = False,
) -> Any:
    """Labels and per-label probabilities for each text, in order.

    Send `{"texts": ["...", ...]}` (at most 1000 texts of at most 20,000 characters; the whole body
    at most the service's upload limit, refused from Content-Length or while streaming, before it
    is parsed). Empty or whitespace-only texts come back with `label: null` and `error`; texts
    longer than the model reads are cut and marked `truncated`. Texts are never stored or logged.
    With `?explain=true` the tokens read over all texts may be at most the service's
    `max_explain_tokens` (5,000 by default; each is one model row), else 413.
    """
    media_type = media_type_of(request.headers.get("content-type", ""))
    if media_type not in ("application/json", ""):
        raise UploadError(415, f"unsupported Content-Type {media_type!r}: send application/json")
    body = _parse(await read_body(request, state.config.max_upload_bytes))
    start = time.perf_counter()
    out = await state.run(_predict, model, body.texts, explain, state.config.max_explain_tokens)
    return answer(TextResponse, out, start)
