"""The service as a Label Studio ML backend for one label schema.

- `connect`: a labeling config's `<Choices>` becomes (a new version of) the schema: labels are
  matched by value, so labels pushed here before keep their descriptions and examples; a new
  label's description is its `hint`, else its value.
- `predict`: each task becomes an item (`label-studio-<project>-<task>`, the task's other data
  fields as metadata), the engine labels it like `POST /v1/classify` and the decision is stored.
- `handle_webhook`: an annotation made in Label Studio becomes a review (ground truth, exemplar,
  calibration evidence) by its annotator at its time; deleting it retracts the review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.calibration import service as calibration
from app.db import utcnow
from app.errors import InvalidInput
from app.items import repository as items
from app.items.api import ItemIn
from app.items.models import Item
from app.items.service import ingest
from app.label_schemas import repository as schemas
from app.label_schemas.format import LabelSchemaDoc
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.label_schemas.service import document_of, push_schema
from app.label_studio import labeling_config, repository
from app.label_studio.api import PredictIn, PredictionOut, RegionOut, WebhookIn
from app.label_studio.labeling_config import ChoicesConfig
from app.label_studio.models import LabelStudioAnnotation
from app.labelling import service as labelling
from app.rac.decision import Strategy
from app.review import service as review
from app.review import undo
from app.runtime import Runtime

MODEL_CLASS = "RACLabeller"
ANNOTATION_SAVED = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
# Label Studio 1.x emits ANNOTATIONS_DELETED (ids only); its ML-backend SDK names the singular.
ANNOTATION_DELETED = ("ANNOTATION_DELETED", "ANNOTATIONS_DELETED")
TRAINING = "START_TRAINING"


@dataclass(frozen=True)
class Connected:
    schema: LabelSchema
    version: SchemaVersion
    config: ChoicesConfig


def schema_document(name: str, config: ChoicesConfig,
                    existing: LabelSchemaDoc | None) -> LabelSchemaDoc:
    """The schema a `<Choices>` config describes, keeping what `existing` knows of each label."""
    known = {x.name: x for x in existing.labels} if existing else {}
    labels = []
    for choice in config.choices:
        old = known.get(choice.value)
        description = choice.hint or (old.description if old else choice.value)
        labels.append({"name": choice.value, "description": description,
                       "examples": list(old.examples) if old else []})
    doc = {"name": name, "description": existing.description if existing else
           "Labelled in Label Studio.", "multi_label": config.multiple, "labels": labels}
    try:
        return LabelSchemaDoc.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"the labeling config does not make a valid label schema: "
                           f"{where}: {first['msg']}") from None


def connect(session: Session, principal: Principal, schema_name: str,
            config_xml: str) -> Connected:
    """Make the schema match the labeling config (a new version only if something changed)."""
    config = labeling_config.parse(config_xml)
    schema = schemas.find_schema(session, principal.project_id, schema_name)
    existing = document_of(schemas.get_version(session, schema)) if schema else None
    pushed = push_schema(session, principal.project_id,
                         schema_document(schema_name, config, existing))
    return Connected(pushed.schema, pushed.version, config)


def model_version(session: Session, runtime: Runtime, connected: Connected,
                  strategy: Strategy | None = None) -> str:
    """Names everything a prediction depends on: schema version, judge (or, for `retrieval`,
    the embedder alone) and calibrator. Label Studio asks again for tasks whose predictions
    carry another version."""
    model = (f"{runtime.embedder.model_id}:retrieval" if strategy == "retrieval"
             else labelling.judge_for_schema(session, runtime, connected.schema.id).model_id)
    calibrator = calibration.current(session, connected.schema.id)
    return (f"{connected.schema.name}-v{connected.version.version}/{model}"
            f"/calibrator-v{calibrator.version}")


MAX_ID = 2**63 - 1  # Label Studio's ids are 64-bit database keys, and so are the columns here


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def ls_project_id(project: object) -> int:
    """Label Studio's project id from `<id>.<timestamp>` (setup, predict) or a bare id."""
    head = str(project if project is not None else "").split(".", 1)[0]
    if not head.isascii() or not head.isdigit() or int(head) > MAX_ID:
        raise InvalidInput(f"`project` must be '<id>.<timestamp>' as Label Studio sends it; "
                           f"got {str(project)[:100]!r}")
    return int(head)


def _item_for_task(task_id: int, data: object, config: ChoicesConfig, project: int,
                   where: str) -> ItemIn:
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}.data must be an object")
    text = data.get(config.data_field)
    if not isinstance(text, str | int | float) or not str(text).strip():
        raise InvalidInput(f"{where}.data.{config.data_field}: the task has no text (the "
                           f"labeling config reads ${config.data_field})")
    metadata = {k: v for k, v in data.items() if k != config.data_field}
    metadata["label_studio"] = {"project": project, "task": task_id}
    try:
        return ItemIn(id=f"label-studio-{project}-{task_id}", text=str(text), metadata=metadata)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
                           ) from None


def _store_items(session: Session, project_id: int, posted: Sequence[ItemIn]) -> list[Item | None]:
    """The tasks' items, stored if new; None where a task's text changed since it was stored."""
    stored = ingest(session, project_id, posted, skip_conflicts=True)
    pks = [pk for pk in stored.item_pks if pk is not None]
    by_pk = {item.id: item for item in items.items_by_ids(session, pks)}
    return [by_pk[pk] if pk is not None else None for pk in stored.item_pks]


def predict(session: Session, runtime: Runtime, principal: Principal, schema_name: str,
            body: PredictIn, strategy: Strategy | None = None) -> list[PredictionOut]:
    """Label the tasks (`strategy`: the engine's, default the configured one)."""
    connected = connect(session, principal, schema_name, body.label_config)
    config, version = connected.config, connected.version
    project = ls_project_id(body.project) if body.project is not None else 0
    posted = [_item_for_task(t.id, t.data, config, project, f"tasks[{i}]")
              for i, t in enumerate(body.tasks)]
    if not posted:
        return []
    items = _store_items(session, principal.project_id, posted)
    mv = model_version(session, runtime, connected, strategy)
    params = runtime.params(multi_label=version.multi_label, strategy=strategy,
                            schema_target=version.content.get("target_precision"))
    decisions = labelling.classify(session, runtime, connected.schema, version,
                                   [p.text for p in posted], params)
    kept = [(item, d) for item, d in zip(items, decisions, strict=True) if item is not None]
    labelling.record_decisions(session, connected.schema, version, [i for i, _ in kept],
                               [d for _, d in kept])
    return [PredictionOut(
        result=[RegionOut(from_name=config.from_name, to_name=config.to_name,
                          value={"choices": d.labels})] if d.labels else [],  # type: ignore[arg-type]
        score=d.confidence, model_version=mv) for d in decisions]


def _choices(annotation: dict[str, Any], config: ChoicesConfig) -> list[str]:
    """The labels an annotation chose in the config's `<Choices>` (none: none of these)."""
    chosen: list[str] = []
    regions = annotation.get("result")
    for region in regions if isinstance(regions, list) else []:
        if (isinstance(region, dict) and region.get("type") == "choices"
                and region.get("from_name") == config.from_name
                and isinstance(region.get("value"), dict)):
            picked = region["value"].get("choices")
            chosen += [str(c) for c in picked] if isinstance(picked, list) else []
    return list(dict.fromkeys(chosen))


def _when(annotation: dict[str, Any]) -> datetime:
    raw = annotation.get("updated_at") or annotation.get("created_at")
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _annotator(annotation: dict[str, Any]) -> str:
    # Label Studio's webhook carries the annotator's user id (`completed_by`), not a name.
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return (f"label-studio:user-{who}" if who is not None else "label-studio")[:100]


def _record(session: Session, runtime: Runtime, principal: Principal, connected: Connected,
            item: Item, link: LabelStudioAnnotation) -> None:
    review.record_review(session, runtime, connected.schema, connected.version, item,
                         list(link.labels), source=link.annotator,
                         reviewer_key_id=principal.key_id,
                         note=f"Label Studio annotation {link.ls_annotation_id}",
                         reviewed_at=link.annotated_at)


def _annotation_saved(session: Session, runtime: Runtime, principal: Principal,
                      connected: Connected, project: int, body: WebhookIn) -> dict[str, Any]:
    annotation, task = body.annotation or {}, body.task or {}
    if not _is_id(annotation.get("id")) or not _is_id(task.get("id")):
        raise InvalidInput(f"{body.action} needs `annotation.id` and `task.id` (integers)")
    posted = _item_for_task(task["id"], task.get("data"), connected.config, project, "task")
    item = _store_items(session, principal.project_id, [posted])[0]
    if item is None:
        raise InvalidInput(f"task {task['id']}: its text changed since this service stored it "
                           f"as item {posted.id!r}")
    labels = _choices(annotation, connected.config)
    link = repository.find(session, connected.schema.id, project, annotation["id"])
    if annotation.get("was_cancelled"):  # skipped in Label Studio: not a label
        if link is not None and link.retracted_at is None:
            return _retract(session, runtime, principal, connected, [link])
        return {"skipped": True}
    if link is None:
        link = LabelStudioAnnotation(project_id=principal.project_id,
                                     schema_id=connected.schema.id, ls_project_id=project,
                                     ls_annotation_id=annotation["id"], item_id=item.id)
        session.add(link)
    link.labels, link.annotator = labels, _annotator(annotation)
    link.annotated_at, link.retracted_at = _when(annotation), None
    session.flush()
    _record(session, runtime, principal, connected, item, link)
    return {"item_id": item.external_id, "labels": labels, "reviewer": link.annotator}


def _retract(session: Session, runtime: Runtime, principal: Principal, connected: Connected,
             links: list[LabelStudioAnnotation]) -> dict[str, Any]:
    """Retract these annotations' reviews; where another annotation of the same task still
    stands, it becomes the item's review again."""
    now = utcnow()
    for link in links:
        link.retracted_at = now
    session.flush()
    items = {link.item_id for link in links}
    for item_id in items:
        item = session.get(Item, item_id)
        assert item is not None  # the link's foreign key cascades
        other = repository.latest_live_for_item(session, connected.schema.id, item_id)
        if other is not None:
            _record(session, runtime, principal, connected, item, other)
        else:
            undo.retract_review(session, connected.schema, item)
    return {"retracted": len(links)}


def handle_webhook(session: Session, runtime: Runtime, principal: Principal, schema_name: str,
                   body: WebhookIn, strategy: Strategy | None = None) -> dict[str, Any] | None:
    """Apply one Label Studio event; None if it is not one this backend learns from."""
    if body.action not in (*ANNOTATION_SAVED, *ANNOTATION_DELETED, TRAINING):
        return None
    project_doc = body.project or {}
    config_xml = project_doc.get("label_config")
    if not isinstance(config_xml, str) or not config_xml:
        raise InvalidInput(f"{body.action} needs `project.label_config` (send the payload: "
                           "the webhook's 'send payload' option)")
    connected = connect(session, principal, schema_name, config_xml)
    project = ls_project_id(project_doc.get("id"))
    if body.action in ANNOTATION_SAVED:
        return _annotation_saved(session, runtime, principal, connected, project, body)
    if body.action in ANNOTATION_DELETED:
        deleted = body.annotations if body.annotations is not None else [body.annotation or {}]
        raw = [a.get("id") for a in deleted if isinstance(a, dict)]
        ids = [i for i in raw if _is_id(i)]
        if not ids or len(ids) != len(deleted):
            raise InvalidInput(f"{body.action} needs the deleted annotations' integer ids")
        links = repository.live_by_ids(session, connected.schema.id, project, ids)
        return _retract(session, runtime, principal, connected, links)
    fitted = calibration.refit_if_due(session, runtime, connected.schema)
    current = calibration.current(session, connected.schema.id)
    return {"calibrator_version": current.version, "refitted": fitted is not None,
            "model_version": model_version(session, runtime, connected, strategy)}
