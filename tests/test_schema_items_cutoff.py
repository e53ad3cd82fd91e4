"""Before any review, a schema with enough labelled items reads its cutoff from their
confidences, as a job reads its own (both databases, the real bundled embedder and the prior)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.labelling import service as labelling
from app.labelling.models import Annotation, ItemState
from app.rac.calibration import Calibrator, with_items_reference
from tests import test_job_items_cutoff as job_tests
from tests.helpers import bearer, new_key, wait_for
from tests.test_job_items_cutoff import N_ITEMS, TEXTS, run_job
from tests.test_schema_prior import priors, small_schema

TARGET = 0.9
jobs = job_tests.jobs  # the service with a job worker, as a fixture of this module too


@pytest.fixture
def labelled(jobs, session_factory, monkeypatch):  # type: ignore[no-untyped-def]
    """The schema's stored prior, then N_ITEMS items labelled by a job at its cutoff."""
    monkeypatch.setattr(labelling, "ITEMS_REFERENCE_MIN", 40)
    labelling._items_references.clear()
    headers = bearer(new_key(session_factory, "acme", "admin"))
    assert jobs.post("/v1/schemas", json=small_schema(), headers=headers).status_code == 201
    stored = wait_for(lambda: priors(session_factory), 120, what="the prior fitted after the push")
    items = [{"id": f"it-{i}", "text": f"{TEXTS[i % len(TEXTS)]} ({i})"} for i in range(N_ITEMS)]
    assert jobs.post("/v1/items", json=items, headers=headers).status_code == 201
    return headers, Calibrator.from_json(stored[0].params)


def classify(client, headers, text):  # type: ignore[no-untyped-def]
    r = client.post("/v1/classify", json={"schema": "cards", "text": text,
                                          "target_precision": TARGET}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_single_decisions_read_the_cutoff_from_the_schemas_labelled_items(jobs, labelled,
                                                                        session_factory):
    headers, prior = labelled
    text = "My new card still has not come in the post, where is it?"
    before = classify(jobs, headers, text)
    assert before["cutoff"] == prior.cutoff_for_precision(TARGET)  # one decision: the probes'
    run_job(jobs, headers, strategy="retrieval", target_precision=TARGET)
    labelling._items_references.clear()  # as after ITEMS_REFERENCE_SECONDS
    after = classify(jobs, headers, text)
    with session_factory() as session:
        rows = session.execute(select(Annotation.trace, ItemState.model_label).join(
            ItemState, ItemState.model_annotation_id == Annotation.id)).all()
    stored = [prior.confidence_for(trace, label) for trace, label in rows if label is not None]
    assert len(stored) >= N_ITEMS  # the job's items (and the single decision before it)
    want = with_items_reference(prior, stored).cutoff_for_precision(TARGET)
    assert want != before["cutoff"] and after["cutoff"] == pytest.approx(want)
    assert after["status"] == ("accepted" if after["confidence"] >= want else "needs_review")
    # the schema page shows the same cutoff for the target
    page = jobs.get("/v1/schemas/cards", headers=headers).json()
    assert page["cutoff"] == pytest.approx(with_items_reference(prior, stored)
                                           .cutoff_for_precision(page["target_precision"]))


def test_below_the_minimum_the_probes_cutoff_stays(jobs, labelled, monkeypatch):
    headers, prior = labelled
    monkeypatch.setattr(labelling, "ITEMS_REFERENCE_MIN", N_ITEMS + 10)
    run_job(jobs, headers, strategy="retrieval", target_precision=TARGET)
    labelling._items_references.clear()
    decision = classify(jobs, headers, "where is the card you sent me")
    assert decision["cutoff"] == prior.cutoff_for_precision(TARGET)


def test_a_sample_of_the_decisions_is_drawn_from_all_of_them(jobs, labelled, session_factory):
    from app.calibration.repository import sample_model_decisions
    from app.label_schemas.models import LabelSchema

    headers, _ = labelled
    run_job(jobs, headers, strategy="retrieval", target_precision=TARGET)
    with session_factory() as session:
        schema_id = session.scalar(select(LabelSchema.id).where(LabelSchema.name == "cards"))
        every = {repr((trace, label)) for trace, label in session.execute(
            select(Annotation.trace, ItemState.model_label).join(
                ItemState, ItemState.model_annotation_id == Annotation.id))}
        samples = [[repr(tuple(row)) for row in sample_model_decisions(session, schema_id, 10)]
                   for _ in range(4)]
    assert len(every) >= N_ITEMS
    assert all(len(sample) == len(set(sample)) == 10 and set(sample) <= every
               for sample in samples)
    assert len({tuple(sorted(sample)) for sample in samples}) > 1  # random, not the first ten
