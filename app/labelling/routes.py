from __future__ import annotations

from fastapi import APIRouter

from app.deps import Editor, RuntimeDep, SessionDep
from app.items import repository as items
from app.label_schemas import repository as schemas
from app.labelling import service
from app.labelling.api import ClassifyIn, DecisionOut, TraceStepOut

router = APIRouter(prefix="/v1", tags=["classify"])


@router.post("/classify", response_model=DecisionOut, response_model_by_alias=True)
def classify(body: ClassifyIn, principal: Editor, session: SessionDep,
             runtime: RuntimeDep) -> DecisionOut:
    """Label one text or stored item now: retrieve candidates, ask the judge one label at a
    time, decide. With `item_id` the decision is stored as the item's annotation."""
    schema = schemas.get_schema(session, principal.project_id, body.schema_name)
    version = schemas.get_version(session, schema, body.version)
    item = items.get_item(session, principal.project_id, body.item_id) if body.item_id else None
    text = item.text if item is not None else body.text
    assert text is not None
    params = runtime.params(multi_label=version.multi_label,
                            schema_target=version.content.get("target_precision"),
                            top_k=body.top_k,
                            cutoff=body.cutoff, target_precision=body.target_precision,
                            accept_threshold=body.accept_threshold,
                            strategy=body.strategy)
    decision = service.classify(session, runtime, schema, version, [text], params)[0]
    if item is not None:
        service.record_decisions(session, schema, version, [item], [decision])
    return DecisionOut(
        schema_name=schema.name, schema_version=version.version,
        item_id=item.external_id if item else None, label=decision.label,
        labels=decision.labels, confidence=decision.confidence, status=decision.status,
        judge_calls=decision.judge_calls, cutoff=decision.cutoff,
        target_precision=decision.target_precision,
        calibrator_version=decision.calibrator_version, model_id=decision.model_id or None,
        prompt_version=decision.prompt_version or None,
        trace=[TraceStepOut(**vars(step)) for step in decision.trace],
        scorer_version=decision.scorer_version)
