"""API models of Label Studio's ML-backend protocol (what Label Studio 1.x sends and expects).

Field names are Label Studio's (`label_studio/ml/api_connector.py` in its repository); unknown
fields are allowed, since Label Studio adds some between versions and a backend must not break.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_TASKS_PER_REQUEST = 10_000


class HealthOut(BaseModel):
    status: str = "UP"
    model_class: str


class SetupIn(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    project: str = Field(min_length=1, description="`<project id>.<created_at timestamp>`.")
    labeling_config: str = Field(alias="schema", min_length=1,
                                 description="The project's labeling config (XML).")
    hostname: str | None = None
    access_token: str | None = None
    extra_params: dict[str, Any] | None = None


class SetupOut(BaseModel):
    model_version: str


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int = Field(ge=0, le=2**63 - 1)
    data: dict[str, Any]


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    tasks: list[TaskIn] = Field(max_length=MAX_TASKS_PER_REQUEST)
    project: str | None = Field(None, description="`<project id>.<created_at timestamp>`.")
    label_config: str = Field(min_length=1)
    model_version: str | None = None
    params: dict[str, Any] | None = None


class ChoicesValueOut(BaseModel):
    choices: list[str]


class RegionOut(BaseModel):
    from_name: str
    to_name: str
    type: str = "choices"
    value: ChoicesValueOut


class PredictionOut(BaseModel):
    result: list[RegionOut]
    score: float | None = Field(description="The calibrated confidence of the label.")
    model_version: str


class PredictOut(BaseModel):
    results: list[PredictionOut] = Field(description="One per task, in the order sent.")


class WebhookIn(BaseModel):
    """Any Label Studio webhook; the annotation events are read in the service."""

    model_config = ConfigDict(extra="allow")

    action: str = Field(min_length=1)
    project: dict[str, Any] | None = None
    annotation: dict[str, Any] | None = None
    annotations: list[dict[str, Any]] | None = None
    task: dict[str, Any] | None = None


class WebhookOut(BaseModel):
    result: dict[str, Any] | None
    status: str
