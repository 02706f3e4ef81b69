"""Request and response bodies: Pydantic models, so that the OpenAPI page at /docs documents them."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from emodetect.labels import EMOTIONS
from emodetect.vision.explain import METHODS
from emodetect.vision.results import Box, Face


def from_dataclass(cls: type, **types: Any) -> type[BaseModel]:
    """A response model with the fields of a result dataclass, their `doc` metadata as the
    descriptions: the schema follows the result instead of re-declaring it. `types` swaps a
    field's type (a nested dataclass for its derived model)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: (types.get(f.name, hints[f.name]), Field(description=f.metadata.get("doc")))
              for f in dataclasses.fields(cls)}
    return create_model(f"{cls.__name__}Out", **fields)


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
    card: str = Field(description="where its model card is (Markdown)")


class ModelList(BaseModel):
    models: list[ModelInfo]


class ImageSize(BaseModel):
    width: int
    height: int


BoxOut = from_dataclass(Box)
FaceOut = create_model("FaceOut", __base__=from_dataclass(Face, box=BoxOut),
                       emotion=(str, Field(description="the same as `label`: its name before 0.2")))


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


class ExplainOptions(BaseModel):
    """Query parameters of POST /v1/explain."""

    model_config = {"extra": "forbid"}

    emotion: Literal[EMOTIONS] | None = Field(  # type: ignore[valid-type]
        None, description="explain this emotion for every face (default: each face's own)")
    method: Literal[METHODS] = Field(METHODS[0], description="rise (random masks) or occlusion (a sliding square)")  # type: ignore[valid-type]
    annotate: bool = Field(False, description="return the image with the maps drawn instead of JSON")
    format: Literal["jpeg", "png"] | None = Field(None, description="format of the returned image")
    accurate: bool = Field(False, description="a finer map from 4x the masks, in 4x the time")


class CropBox(BaseModel):
    x: int
    y: int
    width: int
    height: int


class ExplainedFace(FaceOut):  # type: ignore[misc, valid-type]
    explained: str = Field(description="the emotion the map explains")
    explained_probability: float
    crop_box: CropBox = Field(description="the square, in image pixels, the 48x48 map covers (may pass the edges)")
    saliency: list[list[float]] = Field(description="48 rows of 48 values in 0..1: what the emotion rests on")


class ExplainResponse(BaseModel):
    image: ImageSize
    model: str
    detector: str
    method: str
    accurate: bool = Field(False, description="the accurate mask set (?accurate=true), not the fast default")
    faces: list[ExplainedFace]
    unexplained: list[FaceOut] = Field(  # type: ignore[valid-type]
        default_factory=list, description="faces past the service's max_explain_faces (the largest are "
                                          "mapped first): labelled, without a map")
