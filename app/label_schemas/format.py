"""The label-schema format users upload (YAML or JSON), its limits and its canonical hash.

`schemas/label-schema.json` is generated from `LabelSchemaDoc` (`rac schemas json-schema`), so the
documented format and the validator cannot drift apart; a test checks the file is current.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from app.errors import BadRequest, InvalidInput
from app.validation import NoNul

MAX_LABELS = 20_000
MAX_EXAMPLES_PER_LABEL = 50
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 4_000
MAX_EXAMPLE_CHARS = 2_000

SchemaName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"),
]
LabelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=MAX_NAME_CHARS), NoNul]
Description = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=MAX_DESCRIPTION_CHARS), NoNul]
Example = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=MAX_EXAMPLE_CHARS), NoNul]


class LabelDoc(BaseModel):
    """One label: what the judge is asked about, one at a time."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: LabelName = Field(description="Unique within the schema; what annotations carry.")
    description: Description = Field(
        description="When the label applies (and when it does not): the judge reads this."
    )
    examples: list[Example] = Field(
        default_factory=list,
        max_length=MAX_EXAMPLES_PER_LABEL,
        description="Short items that carry this label; they also improve retrieval.",
    )


class LabelSchemaDoc(BaseModel):
    """A label schema: the set of labels a project assigns to its items."""

    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"$id": "label-schema.json"})

    name: SchemaName = Field(description="Identifier used in URLs, e.g. `banking77`.")
    description: Annotated[str, StringConstraints(strip_whitespace=True,
                                                  max_length=MAX_DESCRIPTION_CHARS),
                           NoNul] = Field(
        default="", description="What the items are and what the labels say about them."
    )
    multi_label: bool = Field(
        default=False,
        description="If true an item may carry several labels: every candidate the judge "
        "accepts is kept, instead of stopping at the first.",
    )
    labels: list[LabelDoc] = Field(min_length=1, max_length=MAX_LABELS)
    target_precision: float | None = Field(
        default=None, ge=0.5, le=0.999,
        description="Precision wanted of the labels accepted without review (default: the "
        "server's, 0.95). The calibrator turns it into the confidence cutoff; a request or job "
        "that gives `target_precision` or `cutoff` overrides it.",
    )

    @field_validator("labels")
    @classmethod
    def _unique_names(cls, labels: list[LabelDoc]) -> list[LabelDoc]:
        seen: dict[str, int] = {}
        for i, label in enumerate(labels):
            key = label.name.casefold()
            if key in seen:
                raise ValueError(
                    f"labels[{i}] (name {label.name!r}): duplicate label name, "
                    f"already used by labels[{seen[key]}]"
                )
            seen[key] = i
        return labels

    def canonical_json(self) -> str:
        data = self.model_dump(mode="json")
        if data.get("target_precision") is None:  # documents without it keep their old hash
            data.pop("target_precision", None)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


# libyaml's C parser when PyYAML has it (the wheels do): the pure-Python safe loader took 23 s
# for a 6 MB schema, against 1.6 s for the same document as JSON.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
JSON_TYPES = {"application/json", "text/json"}


def parse_document(body: bytes, content_type: str | None) -> Any:
    """Bytes -> plain data. JSON is a subset of YAML: unknown types go through the YAML parser."""
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 text: {exc}") from None
    if not text.strip():
        raise BadRequest("the body is empty; send a label schema as YAML or JSON")
    try:
        if media in JSON_TYPES:
            return json.loads(text)
        return yaml.load(text, Loader=_YAML_LOADER)
    # ValueError: JSON's errors, and a number of more than 4,300 digits (Python's int limit)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if media in JSON_TYPES else "YAML"
        raise BadRequest(f"the body is not valid {kind}: {exc}") from None
    except RecursionError:
        raise BadRequest("the document nests too deeply") from None


def _describe_location(data: Any, loc: tuple[Any, ...]) -> str:
    """`labels[3] (name 'card_arrival').description`: point at a label by index and by name."""
    if len(loc) >= 2 and loc[0] == "labels" and isinstance(loc[1], int):
        labels = data.get("labels")
        label = labels[loc[1]] if isinstance(labels, list) and loc[1] < len(labels) else None
        name = label.get("name") if isinstance(label, dict) else None
        where = f"labels[{loc[1]}]" + (f" (name {name!r})" if isinstance(name, str) else "")
        rest = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[2:])
        return where + rest
    return ".".join(str(p) for p in loc) or "(document)"


def validate_schema_document(data: Any) -> LabelSchemaDoc:
    if not isinstance(data, dict):
        raise InvalidInput(
            "a label schema must be a mapping with keys name, description, labels "
            f"(got {type(data).__name__})"
        )
    try:
        return LabelSchemaDoc.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:50]:
            where = _describe_location(data, tuple(err["loc"]))
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (allowed: name, description, multi_label, labels; "\
                      "per label: name, description, examples)"
            problems.append({"location": where, "message": msg})
        detail = "; ".join(f"{p['location']}: {p['message']}" for p in problems)
        raise InvalidInput(f"invalid label schema: {detail}",
                           extra={"problems": problems}) from None


def json_schema() -> dict[str, Any]:
    schema = LabelSchemaDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
