"""A job's cutoff, read once from its own items before its first chunk is labelled.

A job asked for a target precision (the schema's, by default) and decided by the schema's prior
would accept at the cutoff the prior reads from the schema's own examples, which are easier
than real items: on Banking77 test that accepted 46.7% at a precision of 0.971 for a target of
0.95. Read from the confidences of the job's own items (a sample of up to `SAMPLE` of them,
retrieval only, no judge, no gold label) the same rule accepted 53.3% at 0.960
(docs/results.md). The cutoff is fixed in the job's params, so every chunk and every worker
decides alike; a job with a given cutoff, or one created after reviews (its cutoff is measured
on them at creation), is left as it is, and so is a job too small for a stable reading.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from app.items import repository as items
from app.jobs import repository
from app.jobs.models import Job
from app.label_schemas import repository as schemas
from app.label_schemas.models import LabelSchema
from app.labelling import service as labelling
from app.rac.calibration import ITEMS_REFERENCE_MIN, ITEMS_REFERENCE_SAMPLE
from app.rac.decision import ClassifyParams
from app.runtime import Runtime

log = logging.getLogger(__name__)

MIN_ITEMS = ITEMS_REFERENCE_MIN
"""Fewer items give a noisy cutoff: such a job keeps the calibrator's cutoff (the prior's, or
the schema's own labelled items', app/labelling/service.py)."""
SAMPLE = ITEMS_REFERENCE_SAMPLE
"""Items read at most; spread evenly over the job, so a sorted selection reads like the whole."""
STRATEGIES = {"cascade", "retrieval"}
"""Strategies whose confidence before any judge question is retrieval's calibrated one (the
sequential and window strategies' confidence is the judge's answer)."""


def pending(params: dict) -> bool:
    """Whether the job still has to read its cutoff from its items."""
    return (params.get("target_precision") is not None and params.get("cutoff_from") is None
            and params.get("strategy") in STRATEGIES)


def fix_cutoff(factory: sessionmaker[Session], runtime: Runtime, job_id: int) -> None:
    """Read the job's cutoff from its items and fix it in its params (once: a second worker
    that computed it at the same time keeps the first one's)."""
    with factory() as session:
        job = session.get(Job, job_id)
        if job is None or not pending(job.params):
            return
        target = float(job.params["target_precision"])
        ids = repository.job_item_ids(session, job_id)
        cutoff = None
        if len(ids) >= MIN_ITEMS:
            step = max(1, len(ids) / SAMPLE)
            sample = sorted({ids[int(i * step)] for i in range(min(len(ids), SAMPLE))})
            schema = session.get(LabelSchema, job.schema_id)
            assert schema is not None
            version = schemas.get_version(session, schema, job.schema_version)
            params = ClassifyParams(**{k: v for k, v in job.params.items()
                                       if k in ClassifyParams.__dataclass_fields__},
                                    multi_label=version.multi_label)
            texts = [item.text for item in items.items_by_ids(session, sample)]
            session.commit()  # no transaction held while the items are embedded
            cutoff = labelling.cutoff_from_items(session, runtime, schema, version, texts,
                                                 params, target)
            session.commit()
        _store(session, job_id, target, cutoff, len(ids))


def _store(session: Session, job_id: int, target: float, cutoff: float | None,
           n_items: int) -> None:
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or not pending(job.params):
        session.rollback()
        return
    if cutoff is None:  # keep the prior's cutoff for the target; do not try again
        job.params = {**job.params, "cutoff_from": "calibrator"}
    else:  # a fixed cutoff: the target no longer moves it
        job.params = {**job.params, "cutoff": cutoff, "target_precision": None,
                      "requested_target_precision":
                          job.params.get("requested_target_precision", target),
                      "cutoff_from": "items", "cutoff_items": min(n_items, SAMPLE)}
    session.commit()
    log.info("job %s: cutoff %s for target precision %s, from %s", job.external_id,
             "-" if cutoff is None else f"{cutoff:.3f}", target, job.params["cutoff_from"])
