"""The schema prior in the service (both databases, the real bundled embedder): fitted in the
background after a push, stored, and read by every later request and process; a request never
asks the judge to fit one."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from app.calibration.models import SchemaPrior
from app.cli.files import load_schema
from app.config import EngineSettings, Settings
from app.labelling import prior_fitter
from app.rac.calibration import Calibrator
from app.rac.engine import Engine
from app.rac.index_store import IndexStore
from app.runtime import Runtime, make_embedder
from tests.helpers import bearer, new_key, wait_for
from tests.rac.fakes import ScriptedJudge

BANKING77 = Path(__file__).parents[1] / "schemas" / "banking77.yaml"


def small_schema() -> dict:
    """Eight Banking77 labels with their two examples each: 16 examples, 32 probes."""
    _, _, labels, _ = load_schema(BANKING77)
    return {"name": "cards", "labels": [{"name": x.name, "description": x.description,
                                         "examples": list(x.examples)} for x in labels[:8]]}


def priors(factory) -> list[SchemaPrior]:  # type: ignore[no-untyped-def]
    with factory() as session:
        return list(session.scalars(select(SchemaPrior).order_by(SchemaPrior.id)))


def classify(client, headers, text):  # type: ignore[no-untyped-def]
    r = client.post("/v1/classify", json={"schema": "cards", "text": text}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_prior_is_fitted_after_a_push_stored_and_reused(client, session_factory):
    headers = bearer(new_key(session_factory, "acme", "admin"))
    assert client.post("/v1/schemas", json=small_schema(), headers=headers).status_code == 201
    stored = wait_for(lambda: priors(session_factory), 120, what="the prior fitted after the push")
    assert len(stored) == 1
    row = stored[0]
    assert row.top_k == 5 and row.judge_key != "none"  # fitted for the default judge
    prior = Calibrator.from_json(row.params)
    assert prior.source == "schema" and not prior.is_identity
    assert prior.meta["schema_examples"] == 16
    text = "My new card still has not come in the post, where is it?"
    first = classify(client, headers, text)
    assert first["calibrator_version"] == 0
    assert abs(first["confidence"] - prior.confidence_for(first["trace"], first["label"])) < 1e-9
    assert first["cutoff"] == prior.cutoff_for_precision(0.95)
    # Another process (a fresh runtime, as after a restart) reads the stored prior: made
    # recognisable here, it is what the next decision uses, and nothing is fitted again.
    marked = Calibrator.from_json({**row.params, "bias": row.params["bias"] + 5.0})
    with session_factory.begin() as session:
        session.execute(update(SchemaPrior).where(SchemaPrior.id == row.id)
                        .values(params=marked.to_json()))
    client.app.state.runtime.priors = type(client.app.state.runtime.priors)()
    again = classify(client, headers, text)
    assert abs(again["confidence"] - marked.confidence_for(again["trace"], again["label"])) < 1e-9
    assert again["confidence"] > first["confidence"]
    assert len(priors(session_factory)) == 1


def test_the_judge_is_asked_in_the_background_fit_never_in_a_request(settings: Settings,
                                                                       client, session_factory):
    headers = bearer(new_key(session_factory, "acme", "admin"))
    client.app.state.prior_fitter.stop()  # this test runs the fitter itself
    assert client.post("/v1/schemas", json=small_schema(), headers=headers).status_code == 201
    embedder = make_embedder(settings.embedder)
    judge = ScriptedJudge({}, default=0.3)
    runtime = Runtime(settings.model_copy(update={"engine": EngineSettings(
        prior_judge_questions=12)}), embedder, judge, Engine(embedder, judge),
        IndexStore(settings.index_dir, embedder))
    client.app.state.runtime = runtime
    # Before the fit: a request is answered with the prior fitted without the judge.
    before = classify(client, headers, "How do I link my card to the app?")
    assert before["calibrator_version"] == 0 and judge.history == []
    assert priors(session_factory) == []
    with session_factory() as session:
        assert prior_fitter.due(session, runtime) == [priors_schema_id(session_factory)]
    assert prior_fitter.PriorFitter(session_factory, runtime).run_once() == 1
    asked = sum(len(batch) for batch in judge.history)
    assert asked == 12  # the unsure probes it was asked about, in the background
    (row,) = priors(session_factory)
    assert row.judge_key == "scripted|" + judge.prompt_version
    assert row.params["meta"]["judge_questions"] == 12
    with session_factory() as session:
        assert prior_fitter.due(session, runtime) == []
    judge.history.clear()
    classify(client, headers, "How do I link my card to the app?")
    # A constant judge carries no information: no weight, so no question in the request either.
    assert judge.history == []


def priors_schema_id(factory) -> int:  # type: ignore[no-untyped-def]
    from app.label_schemas.models import LabelSchema

    with factory() as session:
        return session.scalars(select(LabelSchema.id)).one()


def test_target_precision_is_stored_with_the_schema_and_shown_with_its_cutoff(client,
                                                                               session_factory):
    headers = bearer(new_key(session_factory, "acme", "admin"))
    doc = {**small_schema(), "target_precision": 0.8}
    assert client.post("/v1/schemas", json=doc, headers=headers).status_code == 201
    wait_for(lambda: priors(session_factory), 120, what="the prior fitted after the push")
    view = client.get("/v1/schemas/cards", headers=headers).json()
    prior = Calibrator.from_json(priors(session_factory)[0].params)
    assert view["target_precision"] == 0.8 and view["calibrator_version"] == 0
    assert view["cutoff"] == prior.cutoff_for_precision(0.8)
    assert view["cutoff"] < prior.cutoff_for_precision(0.95)  # a lower target: a lower cutoff
    decision = classify(client, headers, "How do I link my card to the app?")
    assert decision["target_precision"] == 0.8 and decision["cutoff"] == view["cutoff"]
    asked = client.post("/v1/classify", json={"schema": "cards", "target_precision": 0.95,
                                              "text": "How do I link my card to the app?"},
                        headers=headers).json()  # a request's own target wins
    assert asked["target_precision"] == 0.95
    assert asked["cutoff"] == prior.cutoff_for_precision(0.95)
    # Without the field the server's default applies, and the old content hash is kept.
    plain = client.post("/v1/schemas", json=small_schema(), headers=headers).json()
    assert plain["version"] == 2
    assert client.get("/v1/schemas/cards", headers=headers).json()["target_precision"] == 0.95
    from app.label_schemas.format import LabelSchemaDoc

    assert plain["content_hash"] == LabelSchemaDoc.model_validate(small_schema()).content_hash()
    assert '"target_precision"' not in LabelSchemaDoc.model_validate(
        small_schema()).canonical_json()


def test_a_target_precision_out_of_range_is_a_422_naming_it(client, session_factory):
    headers = bearer(new_key(session_factory, "acme", "admin"))
    r = client.post("/v1/schemas", json={**small_schema(), "target_precision": 1.5},
                    headers=headers)
    assert r.status_code == 422 and "target_precision" in r.text
