"""Calibration learnt from reviews, and cutoffs from a target precision (both databases)."""

from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy import select

from app.labelling.models import Annotation
from app.rac.scorer import CROSS_FOLDS
from app.scorer import repository as scorers_repository
from app.scorer.models import ScorerVersion
from tests.helpers import bearer, demo_schema, new_key, seed_labelled_items


@pytest.fixture(autouse=True)
def no_background_scorer_refits(monkeypatch):  # type: ignore[no-untyped-def]
    """Each new learnt scorer refits the calibrator on the refitter thread: tests here that read
    a calibrator version or cutoff twice would race it (tested on its own below)."""
    monkeypatch.setattr("app.scorer.service.due", lambda session: [])


def seed_and_review(client, factory, n: int, schema: str = "support"):  # type: ignore[no-untyped-def]
    """n model decisions with P(yes) spread over 0.05-0.95; a person agrees with the model
    exactly when P(yes) > 0.5, so P(yes) is informative but not calibrated."""
    rows = []
    for i in range(n):
        p = 0.05 + 0.9 * i / max(1, n - 1)
        rows.append((f"r{i}", f"text {i}", "label_0", p, "needs_review"))
    seed_labelled_items(factory, "acme", demo_schema(name=schema), rows)
    reviewer = bearer(new_key(factory, "acme", "admin"))
    for i, (_, _, _, p, _) in enumerate(rows):
        label = "label_0" if p > 0.5 else "label_1"
        r = client.post(f"/v1/items/r{i}/review", json={"label": label}, headers=reviewer)
        assert r.status_code == 200, r.text
    return reviewer


def test_no_calibrator_until_fitted(client, session_factory):
    seed_labelled_items(session_factory, "acme", demo_schema(), [("a", "t", "label_0", 0.9,
                                                                 "accepted")])
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    body = client.get("/v1/schemas/support/calibration", headers=viewer).json()
    assert body["version"] == 0 and body["fitted"] is False


def test_too_few_reviews_is_said_plainly(client, session_factory):
    headers = seed_and_review(client, session_factory, 12)
    r = client.get("/v1/schemas/support/cutoff", params={"precision": 0.95}, headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["cutoff"] is None and body["promised"] is False
    assert "only 12 reviewed model decisions" in body["reason"]
    job = client.post("/v1/jobs", json={"schema": "support", "items": {},
                                        "target_precision": 0.95, "include_reviewed": True},
                      headers=headers)
    # too few reviews to measure it: the calibrator (the schema prior) turns it into a cutoff
    assert job.status_code == 202, job.text
    assert job.json()["params"]["target_precision"] == 0.95


def test_refit_and_cutoff_for_a_target_precision(client, session_factory):
    headers = seed_and_review(client, session_factory, 80)
    fitted = client.post("/v1/schemas/support/calibration", headers=headers)
    assert fitted.status_code == 200, fitted.text
    cal = fitted.json()
    assert cal["fitted"] and cal["n_reviews"] == 80 and cal["version"] >= 1
    assert cal["ece_after"] < cal["ece_before"]
    r = client.get("/v1/schemas/support/cutoff", params={"precision": 0.95}, headers=headers)
    body = r.json()
    assert body["cutoff"] is not None and body["precision"] >= 0.95
    assert body["support"] >= 30 and body["calibrator_version"] == cal["version"]
    low, high = body["precision_interval"]
    assert low <= body["precision"] <= high
    # half the decisions had P(yes) > 0.5 and were right: about half are covered
    assert 0.3 <= body["expected_coverage"] <= 0.6
    job = client.post("/v1/jobs", json={"schema": "support", "items": {"ids": ["r1"]},
                                        "include_reviewed": True, "target_precision": 0.95,
                                        "strategy": "retrieval"}, headers=headers)
    assert job.status_code == 202, job.text
    assert job.json()["params"]["cutoff"] == body["cutoff"]
    assert job.json()["params"]["target_precision"] is None  # measured on reviews: fixed
    assert job.json()["params"]["requested_target_precision"] == 0.95


def test_new_decisions_record_the_calibrator_version(client, session_factory):
    headers = seed_and_review(client, session_factory, 60)
    version = client.post("/v1/schemas/support/calibration", headers=headers).json()["version"]
    client.post("/v1/items", json={"id": "fresh", "text": "Description of label 0."},
                headers=headers)
    r = client.post("/v1/classify", json={"schema": "support", "item_id": "fresh",
                                          "strategy": "retrieval"}, headers=headers)
    assert r.status_code == 200, r.text
    with session_factory() as session:
        stored = session.scalars(select(Annotation).where(Annotation.source == "model")
                                 .order_by(Annotation.id.desc()).limit(1)).one()
    assert stored.calibrator_version == version


@pytest.mark.parametrize("precision", ["0.2", "1.5", "x"])
def test_bad_targets_are_422(client, session_factory, precision):
    seed_labelled_items(session_factory, "acme", demo_schema(), [("a", "t", "label_0", 0.9,
                                                                 "accepted")])
    viewer = bearer(new_key(session_factory, "acme", "viewer"))
    r = client.get("/v1/schemas/support/cutoff", params={"precision": precision},
                   headers=viewer)
    assert r.status_code == 422


def test_cli_calibrate_and_cutoff(client, session_factory, db, settings):
    import os
    import subprocess
    import sys

    seed_and_review(client, session_factory, 60)
    env = {**os.environ, "RAC_DATABASE_URL": db.url, "RAC_DATA_DIR": str(settings.data_dir)}

    def rac(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", "schemas", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    fitted = rac("calibrate", "support", "--project", "acme")
    assert fitted.returncode == 0, fitted.stderr
    assert "fitted on 60 reviewed decisions" in fitted.stdout
    cut = rac("cutoff", "support", "--project", "acme", "--precision", "0.95")
    assert cut.returncode == 0 and cut.stdout.startswith("cutoff "), cut.stdout + cut.stderr
    strict = rac("cutoff", "support", "--project", "acme", "--precision", "0.999")
    assert strict.returncode in (0, 1)
    missing = rac("cutoff", "support", "--project", "nobody", "--precision", "0.9")
    assert missing.returncode == 2 and "no project" in missing.stderr


def test_reviews_refit_the_calibrator_automatically(client, session_factory):
    headers = seed_and_review(client, session_factory, 45)  # crosses 30, then 30 + 10
    body = client.get("/v1/schemas/support/calibration", headers=headers).json()
    assert body["fitted"] and body["version"] == 2 and body["n_reviews"] == 40


def test_refit_decides_reviewed_items_again_against_the_index_without_them(
        client, session_factory, settings):
    """The calibrator is fitted on each reviewed item as the current index (every other review
    an exemplar) decides it, not on the features stored with the model's old decision: those
    were computed before the reviews joined the index and made it over-confident. With a learnt
    scorer each is ranked by the scorer's held-out head that never saw it; a scorer without
    held-out heads (stored before they existed) has seen them: then the stored features stay.
    Each new scorer refits the calibrator on the refitter's thread."""
    # no scorer refit until below (the module's autouse fixture)
    from app.calibration import service as calibration
    from app.calibration.models import CalibratorVersion
    from app.label_schemas.models import LabelSchema
    from app.rac.calibration import FEATURES
    from app.rac.decision import Decision, TraceStep

    templates = {"card_arrival": "Where is my new card? I ordered it {n} days ago",
                 "exchange_rate": "What exchange rate will I get for {n} euros?",
                 "cash_withdrawal": "I took {n} pounds out at the ATM, is there a charge?"}
    doc = {"name": "bank", "labels": [{"name": name, "description": text.format(n="some")}
                                      for name, text in templates.items()]}
    rows, reviewed = [], {}
    for k, (name, text) in enumerate(templates.items()):
        for n in range(12):
            rows.append((f"i{k}-{n}", text.format(n=n + 2), name))
            # a quarter reviewed as another label: retrieval is wrong about those
            reviewed[f"i{k}-{n}"] = list(templates)[(k + 1) % 3] if n % 4 == 0 else name
    # Stored decisions as the cascade made them before any review: retrieval's top label, no
    # judge question, a score far below any this index gives now.
    stale = [Decision(label, 0.5, "needs_review",
                      [TraceStep(label, 0, 0.05), TraceStep("other", 1, 0.04)], [label])
             for _, _, label in rows]
    _seed_decisions(session_factory, "acme", doc, rows, stale)
    reviewer = bearer(new_key(session_factory, "acme", "admin"))
    for item_id, label in reviewed.items():
        r = client.post(f"/v1/items/{item_id}/review", json={"label": label}, headers=reviewer)
        assert r.status_code == 200, r.text
    fitted = client.post("/v1/schemas/bank/calibration", headers=reviewer).json()
    assert fitted["fitted"] and fitted["n_reviews"] == 36
    score = FEATURES.index("retrieval_score")
    with session_factory() as session:
        params = session.scalars(select(CalibratorVersion.params)
                                 .order_by(CalibratorVersion.version.desc())).first()
        schema = session.scalars(select(LabelSchema).where(LabelSchema.name == "bank")).one()
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        x, y = calibration.reviewed_decisions(session, schema, runtime)
        x_stored, _ = calibration.reviewed_decisions(session, schema, None)
    assert params["mean"][score] > 0.3  # fitted on scores as the index gives them now
    assert all(row[score] > 0.3 for row in x) and all(row[score] == 0.05 for row in x_stored)
    # never right about an item reviewed as another label than its text is about, and right
    # about most of the others (rows come in the order the items were seeded)
    relabelled = [i for i, (item_id, _, label) in enumerate(rows) if reviewed[item_id] != label]
    assert len(y) == 36 and len(relabelled) == 9 and not any(y[i] for i in relabelled)
    assert sum(y) >= 18
    from app.scorer.worker import ScorerRefitter

    with session_factory() as session:
        before = calibration.current(session, schema.id).version
    refitter = ScorerRefitter(session_factory, runtime,
                              after_refit=partial(calibration.refit_for_new_scorer,
                                                  session_factory, runtime))
    refitter.work(schema.id)  # the scorer, then the calibrator on its held-out heads
    with session_factory() as session:
        x_scorer, y_scorer = calibration.reviewed_decisions(session, schema, runtime)
        versions = session.scalars(select(CalibratorVersion.version)
                                   .order_by(CalibratorVersion.version)).all()
        scorer_row = scorers_repository.latest(session, schema.id)
        stored_scorer = scorers_repository.current(session, schema.id)
        assert scorer_row is not None and stored_scorer is not None
        assert len(scorers_repository.with_held_out_heads(session, schema.id, stored_scorer)
                   .held_out) == CROSS_FOLDS
    assert versions[-1] == before + 1  # refitted after the new scorer, on the same 36 reviews
    assert len(y_scorer) == 36 and all(row[score] > 0.3 for row in x_scorer)
    assert x_scorer != x
    # A scorer without held-out heads (before they are stored, or stored before they existed)
    # has seen every review: the stored features stay.
    with session_factory() as session:
        row = session.get(ScorerVersion, scorer_row.id)
        assert row is not None
        row.held_out_params = None
        session.commit()
    with session_factory() as session:
        x_old, _ = calibration.reviewed_decisions(session, schema, runtime)
    assert x_old == x_stored


def _seed_decisions(factory, project, doc, rows, decisions):  # type: ignore[no-untyped-def]
    from app.auth.service import get_or_create_project
    from app.items.models import Item
    from app.items.service import text_hash
    from app.label_schemas.format import validate_schema_document
    from app.label_schemas.service import push_schema
    from app.labelling.service import record_decisions

    with factory() as session:
        proj = get_or_create_project(session, project)
        pushed = push_schema(session, proj.id, validate_schema_document(doc))
        items = [Item(project_id=proj.id, external_id=external_id, text=text,
                      text_hash=text_hash(text), meta={}) for external_id, text, _ in rows]
        session.add_all(items)
        session.flush()
        record_decisions(session, pushed.schema, pushed.version, items, decisions)
        session.commit()
