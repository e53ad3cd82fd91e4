"""The Label Studio ML backend endpoints with Label Studio's own payload shapes (both databases,
the bundled embedder and judge). The same flow against a real Label Studio is
tests/label_studio/test_label_studio_e2e.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.helpers import bearer, new_key

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="intent" toName="text" choice="single">
    <Choice value="card_lost" hint="The customer lost their card or it was stolen."/>
    <Choice value="refund" hint="The customer wants money back for a purchase."/>
    <Choice value="password_reset"/>
  </Choices>
</View>"""
MULTI = CONFIG.replace('choice="single"', 'choice="multiple"')
# Retrieval only (the bundled embedder and the real label index, no LLM): what these tests check
# (protocol, storage, reviews changing predictions) does not depend on the judge, and the
# judge's path is one test below.
URL = "/label-studio/intents/strategy/retrieval"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    # Two candidates per item keep the bundled judge's questions (~1 s each here) few.
    with TestClient(create_app(settings.model_copy(update={
            "engine": settings.engine.model_copy(update={"top_k": 2})}))) as c:
        yield c


def basic(key: str, user: str = "label-studio") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def task(task_id: int, text: str, **data: object) -> dict:
    return {"id": task_id, "data": {"text": text, **data}, "project": 7}


def predict_body(tasks: list[dict], config: str = CONFIG) -> dict:
    return {"tasks": tasks, "model_version": "", "project": "7.1700000000",
            "label_config": config, "params": {"login": None, "password": None,
                                               "context": None}}


def annotation_event(action: str, annotation_id: int, task_id: int, text: str,
                     choices: list[str], config: str = CONFIG, user: int = 3) -> dict:
    """What Label Studio 1.23 posts: AnnotationWebhookSerializer fields, the task and project."""
    return {
        "action": action,
        "annotation": {
            "id": annotation_id, "task": task_id, "project": 7, "completed_by": user,
            "result": [{"id": "r1", "from_name": "intent", "to_name": "text",
                        "type": "choices", "origin": "manual",
                        "value": {"choices": choices}}],
            "was_cancelled": False, "ground_truth": False, "lead_time": 4.2,
            "created_at": "2026-11-30T10:00:00.123456Z",
            "updated_at": "2026-11-30T10:05:00.123456Z",
        },
        "task": {"id": task_id, "data": {"text": text}, "project": 7,
                 "created_at": "2026-11-30T09:00:00Z"},
        "project": {"id": 7, "title": "Intents", "label_config": config},
    }


def test_health_is_public_and_names_the_model_class(client):
    for path in (f"{URL}/health", f"{URL}/"):
        r = client.get(path)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "UP", "model_class": "RACLabeller"}


def test_backend_needs_an_editor_key(client, session_factory):
    body = {"project": "7.1700000000", "schema": CONFIG}
    r = client.post(f"{URL}/setup", json=body)
    assert r.status_code == 401 and r.json()["error"] == "Unauthorized"
    r = client.post(f"{URL}/setup", json=body, headers=basic("rac_nope_nope"))
    assert r.status_code == 401
    r = client.post(f"{URL}/setup", json=body, headers=basic(new_key(session_factory, "acme",
                                                                      "viewer")))
    assert r.status_code == 403 and "editor" in r.json()["detail"]
    r = client.post(f"{URL}/setup", json=body, headers={"Authorization": "Basic !!"})
    assert r.status_code == 401 and "base64" in r.json()["detail"]


def test_setup_turns_the_labeling_config_into_a_schema(client, session_factory):
    key = new_key(session_factory, "acme", "editor")
    r = client.post(f"{URL}/setup", headers=basic(key),
                    json={"project": "7.1700000000", "schema": CONFIG,
                          "hostname": "http://localhost:8080", "access_token": "t",
                          "extra_params": None})
    assert r.status_code == 200, r.text
    version = r.json()["model_version"]
    assert version.startswith("intents-v1/") and version.endswith(":retrieval/calibrator-v0")
    schema = client.get("/v1/schemas/intents", headers=bearer(key)).json()
    labels = {x["name"]: x["description"] for x in schema["labels"]}
    assert labels == {"card_lost": "The customer lost their card or it was stolen.",
                      "refund": "The customer wants money back for a purchase.",
                      "password_reset": "password_reset"}
    assert schema["multi_label"] is False
    # The same config again changes nothing; `choice="multiple"` is a new, multi-label version.
    again = client.post(f"{URL}/setup", headers={"Authorization": f"Bearer {key}"},
                        json={"project": "7.1700000000", "schema": CONFIG})
    assert again.json()["model_version"] == version
    multi = client.post(f"{URL}/setup", headers=basic(key),
                        json={"project": "7.1700000000", "schema": MULTI})
    assert multi.json()["model_version"].startswith("intents-v2/")
    assert client.get("/v1/schemas/intents", headers=bearer(key)).json()["multi_label"] is True


def test_setup_keeps_what_a_pushed_schema_knows_of_each_label(client, session_factory):
    key = new_key(session_factory, "acme", "admin")
    pushed = {"name": "intents", "description": "Bank messages.", "labels": [
        {"name": "refund", "description": "Money back.", "examples": ["refund my order"]},
        {"name": "gone", "description": "Not in the config."}]}
    assert client.post("/v1/schemas", json=pushed, headers=bearer(key)).status_code in (200, 201)
    config = CONFIG.replace(' hint="The customer wants money back for a purchase."', "")
    r = client.post(f"{URL}/setup", headers=basic(key),
                    json={"project": "7.1", "schema": config})
    assert r.status_code == 200, r.text
    schema = client.get("/v1/schemas/intents", headers=bearer(key)).json()
    refund = next(x for x in schema["labels"] if x["name"] == "refund")
    assert refund["description"] == "Money back." and refund["examples"] == ["refund my order"]
    assert [x["name"] for x in schema["labels"]] == ["card_lost", "refund", "password_reset"]
    assert schema["description"] == "Bank messages."


@pytest.mark.parametrize("config, needle", [
    ("<View><Text name='text' value='$text'/></View>", "no <Choices>"),
    ("<View><Choices name='c' toName='text'>", "not valid XML"),
    ("<View><Text name='text' value='$text'/><Choices name='c' toName='text'/></View>",
     "at least one"),
    ("<View><Choices name='c' toName='nowhere'><Choice value='a'/></Choices></View>",
     "must point at"),
])
def test_unusable_labeling_configs_are_422(client, session_factory, config, needle):
    key = new_key(session_factory, "acme", "editor")
    r = client.post(f"{URL}/setup", headers=basic(key), json={"project": "7.1", "schema": config})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_predict_answers_every_task_in_order_and_stores_them(client, session_factory):
    key = new_key(session_factory, "acme", "editor")
    tasks = [task(11, "I lost my card yesterday, please block it", channel="app"),
             task(12, "I want a refund for this purchase"),
             task(13, "How do I reset my password?")]
    r = client.post(f"{URL}/predict", headers=basic(key), json=predict_body(tasks))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 3
    setup = client.post(f"{URL}/setup", headers=basic(key),
                        json={"project": "7.1700000000", "schema": CONFIG}).json()
    for result in results:
        assert result["model_version"] == setup["model_version"]
        assert 0.0 <= result["score"] <= 1.0
        for region in result["result"]:
            assert (region["from_name"], region["to_name"], region["type"]) == \
                ("intent", "text", "choices")
            assert len(region["value"]["choices"]) == 1
            assert region["value"]["choices"][0] in {"card_lost", "refund", "password_reset"}
    stored = client.get("/v1/items/label-studio-7-11", headers=bearer(key)).json()
    assert stored["text"].startswith("I lost my card")
    assert stored["metadata"] == {"channel": "app", "label_studio": {"project": 7, "task": 11}}
    # The stored decision is what Label Studio was told.
    current = stored["labels"][0]
    assert current["source"] == "model" and current["confidence"] == results[0]["score"]
    assert current["labels"] == (results[0]["result"][0]["value"]["choices"]
                                 if results[0]["result"] else [])


def test_predict_names_the_judge_and_asks_it_on_the_judge_strategies(client, session_factory):
    key = new_key(session_factory, "acme", "editor")
    # The default (cascade) asks the judge only where it can change the decision, so the
    # version names the judge even when this item needed no question.
    r = client.post("/label-studio/intents/predict", headers=basic(key),
                    json=predict_body([task(15, "I want a refund for this purchase")]))
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert "llama.cpp:" in result["model_version"]
    # sequential (the paper's procedure) always asks: the stored decision carries the judge.
    r = client.post("/label-studio/intents/strategy/sequential/predict", headers=basic(key),
                    json=predict_body([task(16, "I want a refund for this purchase")]))
    assert r.status_code == 200, r.text
    stored = client.get("/v1/items/label-studio-7-16", headers=bearer(key)).json()
    assert stored["labels"][0]["model_id"].startswith("llama.cpp:")


def test_predict_refuses_tasks_without_the_configured_text(client, session_factory):
    key = new_key(session_factory, "acme", "editor")
    r = client.post(f"{URL}/predict", headers=basic(key),
                    json=predict_body([task(1, "fine"), {"id": 2, "data": {"body": "x"}}]))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("tasks[1].data.text")
    r = client.post(f"{URL}/predict", headers=basic(key), json={"tasks": []})
    assert r.status_code == 422 and "label_config" in r.text


def test_an_annotation_becomes_a_review_that_changes_the_next_prediction(client,
                                                                         session_factory):
    key = new_key(session_factory, "acme", "editor")
    auth = basic(key)
    # Texts none of the label descriptions is about: only the review can decide them.
    text = "the thing with the blue widget happened again"
    similar = "the thing with the blue widget happened again today"
    before = client.post(f"{URL}/predict", headers=auth,
                         json=predict_body([task(21, text), task(22, similar)])).json()
    predicted = [r["value"]["choices"][0] for r in before["results"][1]["result"]]
    chosen = next(x for x in ("password_reset", "refund", "card_lost") if x not in predicted)
    r = client.post(f"{URL}/webhook", headers=auth,
                    json=annotation_event("ANNOTATION_CREATED", 501, 21, text, [chosen]))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "ok"
    assert r.json()["result"]["reviewer"] == "label-studio:user-3"
    item = client.get("/v1/items/label-studio-7-21", params={"history": "true"},
                      headers=bearer(key)).json()
    assert item["labels"][0]["label"] == chosen
    assert item["labels"][0]["status"] == "reviewed"
    reviewed = [h for h in item["history"] if h["status"] == "reviewed"]
    assert reviewed[0]["source"] == "label-studio:user-3"
    assert reviewed[0]["annotated_at"].startswith("2026-11-30T10:05:00")
    after = client.post(f"{URL}/predict", headers=auth,
                        json=predict_body([task(22, similar)])).json()["results"][0]
    assert after["result"][0]["value"]["choices"] == [chosen]

    # Updating it changes the review; deleting it retracts it (the model's label is back).
    other = next(x for x in ("password_reset", "refund", "card_lost") if x != chosen)
    r = client.post(f"{URL}/webhook", headers=auth,
                    json=annotation_event("ANNOTATION_UPDATED", 501, 21, text, [other]))
    assert r.status_code == 201, r.text
    item = client.get("/v1/items/label-studio-7-21", headers=bearer(key)).json()
    assert item["labels"][0]["label"] == other
    r = client.post(f"{URL}/webhook", headers=auth, json={
        "action": "ANNOTATIONS_DELETED", "annotations": [{"id": 501}],
        "project": {"id": 7, "label_config": CONFIG}})
    assert r.status_code == 201 and r.json()["result"] == {"retracted": 1}
    item = client.get("/v1/items/label-studio-7-21", headers=bearer(key)).json()
    assert item["labels"][0]["status"] != "reviewed"
    model = before["results"][0]["result"]
    assert item["labels"][0]["label"] == (model[0]["value"]["choices"][0] if model else None)


def test_a_second_annotator_stands_when_the_first_is_deleted(client, session_factory):
    key = new_key(session_factory, "acme", "editor")
    auth = basic(key)
    for annotation_id, user, choice in ((601, 3, "refund"), (602, 4, "card_lost")):
        r = client.post(f"{URL}/webhook", headers=auth, json=annotation_event(
            "ANNOTATION_CREATED", annotation_id, 31, "money back please", [choice], user=user))
        assert r.status_code == 201, r.text
    r = client.post(f"{URL}/webhook", headers=auth, json={
        "action": "ANNOTATION_DELETED", "annotation": {"id": 602},
        "project": {"id": 7, "label_config": CONFIG}})
    assert r.status_code == 201, r.text
    item = client.get("/v1/items/label-studio-7-31", headers=bearer(key)).json()
    assert (item["labels"][0]["label"], item["labels"][0]["status"]) == ("refund", "reviewed")
    # Deleting the last one: the model never labelled the task, so it has no label any more.
    client.post(f"{URL}/webhook", headers=auth, json={
        "action": "ANNOTATIONS_DELETED", "annotations": [{"id": 601}],
        "project": {"id": 7, "label_config": CONFIG}})
    assert client.get("/v1/items/label-studio-7-31", headers=bearer(key)).json()["labels"] == []


def test_multi_label_configs_predict_and_review_several_labels(client, session_factory):
    key = new_key(session_factory, "acme", "editor")
    auth = basic(key)
    r = client.post(f"{URL}/webhook", headers=auth, json=annotation_event(
        "ANNOTATION_CREATED", 701, 41, "lost card and want a refund", ["card_lost", "refund"],
        config=MULTI))
    assert r.status_code == 201, r.text
    item = client.get("/v1/items/label-studio-7-41", headers=bearer(key)).json()
    assert item["labels"][0]["labels"] == ["card_lost", "refund"]
    r = client.post(f"{URL}/predict", headers=auth,
                    json=predict_body([task(42, "lost card and want a refund")], MULTI))
    assert r.status_code == 200, r.text
    for region in r.json()["results"][0]["result"]:
        assert set(region["value"]["choices"]) <= {"card_lost", "refund", "password_reset"}


def test_other_events_and_training(client, session_factory):
    key = new_key(session_factory, "acme", "editor")
    r = client.post(f"{URL}/webhook", headers=basic(key),
                    json={"action": "PROJECT_UPDATED", "project": {"id": 7}})
    assert r.status_code == 200 and r.json() == {"status": "Unknown event"}
    r = client.post(f"{URL}/webhook", headers=basic(key), json={
        "action": "START_TRAINING", "project": {"id": 7, "label_config": CONFIG}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "ok" and body["result"]["refitted"] is False
    assert body["result"]["model_version"].startswith("intents-v1/")
    r = client.post(f"{URL}/webhook", headers=basic(key),
                    json={"action": "ANNOTATION_CREATED", "project": {"id": 7}})
    assert r.status_code == 422 and "label_config" in r.json()["detail"]


@pytest.mark.parametrize("event", [
    {"project": {"id": 2**64, "label_config": CONFIG}},
    {"annotation": {"id": 2**63, "task": 1, "result": []}},
    {"task": {"id": 31, "data": ["not", "an", "object"]}},
    {"annotation": {"id": 9, "task": 31, "result": [{"type": "choices", "from_name": "intent",
                                                   "value": ["x"]}]}},
])
def test_odd_webhook_payloads_are_4xx_or_ignored(client, session_factory, event):
    key = new_key(session_factory, "acme", "editor")
    body = annotation_event("ANNOTATION_CREATED", 9, 31, "money back please", ["refund"])
    for part, value in event.items():
        body[part] = {**body[part], **value} if part != "project" else value
    r = client.post(f"{URL}/webhook", headers=basic(key), json=body)
    assert r.status_code in (201, 422), r.text
    deleted = client.post(f"{URL}/webhook", headers=basic(key), json={
        "action": "ANNOTATIONS_DELETED", "annotations": [{"id": 2**63}],
        "project": {"id": 7, "label_config": CONFIG}})
    assert deleted.status_code == 422, deleted.text


def test_an_annotation_wakes_the_scorer_refitter_like_an_api_review(client, session_factory,
                                                                    monkeypatch):
    from sqlalchemy import select

    from app.scorer.models import ScorerVersion
    from tests.helpers import wait_for

    refitter = client.app.state.scorer_refitter
    woken: list[bool] = []
    real_wake = refitter.wake

    def spying_wake() -> None:
        woken.append(True)
        real_wake()

    monkeypatch.setattr(refitter, "wake", spying_wake)
    key = new_key(session_factory, "acme", "editor")
    r = client.post(f"{URL}/webhook", headers=basic(key),
                    json=annotation_event("ANNOTATION_CREATED", 601, 61, "money back please",
                                          ["refund"]))
    assert r.status_code == 201, r.text
    assert woken, "the webhook's review did not wake the refitter (only its 30 s poll would)"

    def fitted() -> list[ScorerVersion]:
        with session_factory() as session:
            return list(session.scalars(select(ScorerVersion).where(ScorerVersion.n_reviews == 1)))

    wait_for(fitted, 60, what="a scorer refit on the Label Studio review")
