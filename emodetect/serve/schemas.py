"""Request and response bodies: Pydantic models, so that the OpenAPI page at /docs documents them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every error the service returns on purpose: a sentence naming the problem."""

    detail: str = Field(examples=["upload too large: the limit is 10,485,760 bytes (10.0 MB)"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    services: dict[str, bool] = Field(description="each service (vision, ...) and whether it is loaded")


class ModelInfo(BaseModel):
    name: str
    modality: str
    file: str
    version: str | None = None
    labels: list[str]
    test_figures: dict[str, Any] | str | None = Field(
        None, description="accuracy and other figures on the test split, from the model card")
    loaded: bool = Field(description="whether this service answers with this model")


class ModelList(BaseModel):
    models: list[ModelInfo]


class ImageSize(BaseModel):
    width: int
    height: int


class BoxOut(BaseModel):
    x: int
    y: int
    width: int
    height: int


class FaceOut(BaseModel):
    id: int
    box: BoxOut
    score: float = Field(description="face detector confidence")
    emotion: str = Field(description="the most probable emotion")
    confidence: float = Field(description="probability of that emotion")
    probabilities: dict[str, float]


class DetectResponse(BaseModel):
    """The same JSON as `Result.to_json()`."""

    image: ImageSize
    model: str
    detector: str
    faces: list[FaceOut]


class DetectOptions(BaseModel):
    """Query parameters of POST /v1/detect."""

    model_config = {"extra": "forbid"}

    annotate: bool = Field(False, description="return the image with boxes and labels instead of JSON")
    blur: bool = Field(False, description="blur every face in the returned image (implies an image reply)")
    format: Literal["jpeg", "png"] | None = Field(
        None, description="format of the returned image; default PNG for PNG uploads, else JPEG")
