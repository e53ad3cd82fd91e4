"""The review queue as the API and the review page show it: leased items with their candidates'
descriptions, the cutoff each was held to, and the queue's counts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.jobs import repository as jobs
from app.label_schemas import repository as schemas
from app.label_schemas.models import LabelSchema
from app.review import service
from app.review.api import CandidateOut, ReviewItemOut, ReviewQueueOut


def queue_out(session: Session, label_schema: LabelSchema,
              leased: list[service.Leased], default_cutoff: float) -> ReviewQueueOut:
    """Leased items with their candidates' descriptions, the cutoff each was held to, and the
    queue's counts (the review page answers with the same model)."""
    versions = {}
    job_params: dict[int, dict] = {}
    out = []
    for row in leased:
        job_id = row.annotation.job_id
        if job_id is not None and job_id not in job_params:
            job = jobs.job_by_id(session, job_id)
            job_params[job_id] = job.params if job is not None else {}
        params = job_params.get(job_id, {}) if job_id is not None else {}
        number = row.state.schema_version
        if number not in versions:
            versions[number] = schemas.get_version(session, label_schema, number)
        candidates = service.candidates_with_descriptions(row.annotation, versions[number])
        out.append(ReviewItemOut(
            id=row.item.external_id, text=row.item.text, metadata=row.item.meta or {},
            schema_name=label_schema.name, schema_version=number, status=row.state.status,
            label=row.state.label,
            labels=list(row.annotation.labels or ([row.state.label] if row.state.label else [])),
            confidence=row.state.confidence, cutoff=params.get("cutoff") or default_cutoff,
            target_precision=params.get("target_precision"),
            candidates=[CandidateOut(**c) for c in candidates],
            lease_expires_at=row.state.lease_expires_at))
    remaining, reviewed = service.queue_counts(session, label_schema)
    return ReviewQueueOut(items=out, remaining=remaining, reviewed=reviewed)
