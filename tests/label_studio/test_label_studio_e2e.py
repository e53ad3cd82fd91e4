"""End to end with a real Label Studio (the `label-studio` package from PyPI, in its own
virtualenv, SQLite, a free local port, no network): a project with a `<Choices>` config gets
predictions from `rac serve` as its ML backend, and an annotation made in Label Studio arrives
here as a review that changes the next prediction for a similar text.

Label Studio pins Django, pydantic and more that conflict with the service, and installing it
takes minutes, so this test runs only when asked: `scripts/test-label-studio.sh` (which sets
RAC_TEST_LABEL_STUDIO=1 and creates `.venv-label-studio` with scripts/label-studio-venv.sh).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, bearer, wait_for
from tests.rac.llama_server import free_port

pytestmark = [
    pytest.mark.label_studio,
    pytest.mark.skipif(os.environ.get("RAC_TEST_LABEL_STUDIO") != "1",
                       reason="needs Label Studio: run scripts/test-label-studio.sh"),
]

LABEL_STUDIO = REPO / os.environ.get("LABEL_STUDIO_VENV", ".venv-label-studio") / "bin" / \
    "label-studio"
CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="intent" toName="text" choice="single">
    <Choice value="card_lost" hint="The customer lost their card or it was stolen."/>
    <Choice value="refund" hint="The customer wants money back for a purchase."/>
    <Choice value="password_reset" hint="The customer cannot log in and needs a new password."/>
  </Choices>
</View>"""
LABELS = ("card_lost", "refund", "password_reset")
# Label Studio's offline settings: no analytics, no version check, no error reporting, and ML
# backends and webhooks on 127.0.0.1 allowed (it blocks local addresses by default).
OFFLINE = {"COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false", "SENTRY_DSN": "",
           "FRONTEND_SENTRY_DSN": "", "ML_BLOCK_LOCAL_IP": "false",
           "SSRF_PROTECTION_ENABLED": "false", "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "DJANGO_DB": "sqlite", "REDIS_ENABLED": "false"}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _start(command: list[str], env: dict[str, str], url: str, health: str, log: Path,
           timeout: float) -> Server:
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    server = Server(url, process, log)

    def up() -> bool:
        try:
            return httpx.get(url + health, timeout=5).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None  # stop waiting if it died
    try:
        wait_for(up, timeout, what=f"{command[0]} to start")
    except AssertionError as exc:
        _stop(server)
        raise AssertionError(f"{exc}\n{server.tail()}") from None
    assert process.poll() is None, server.tail()
    return server


def _stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    subprocess.run(["bash", str(REPO / "scripts" / "label-studio-venv.sh")], check=True)
    data = tmp_path_factory.mktemp("label-studio")
    port, token = free_port(), secrets.token_hex(20)
    env = {**os.environ, **OFFLINE, "LABEL_STUDIO_BASE_DATA_DIR": str(data),
           "LABEL_STUDIO_USERNAME": "annotator@example.com",
           "LABEL_STUDIO_PASSWORD": secrets.token_hex(8), "LABEL_STUDIO_USER_TOKEN": token}
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    # The first start migrates its SQLite database: 3 minutes on 2 cores at load 8, over 10 at
    # load 18.
    server = _start([str(LABEL_STUDIO), "start", "--no-browser", "--host", "127.0.0.1",
                     "--port", str(port), "--internal-host", "127.0.0.1"], env,
                    f"http://127.0.0.1:{port}", "/health", data / "label-studio.log",
                    float(os.environ.get("LABEL_STUDIO_START_TIMEOUT", "1200")))
    print(f"Label Studio started in {time.perf_counter() - started:.0f} s")
    try:
        yield server, token
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def rac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    data = tmp_path_factory.mktemp("rac")
    env = {**os.environ, "RAC_DATA_DIR": str(data), "PYTHONPATH": str(REPO),
           "RAC_DATABASE_URL": f"sqlite:///{data / 'rac.db'}"}
    port = free_port()
    server = _start([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env,
                    f"http://127.0.0.1:{port}", "/healthz", data / "server.log", 180)
    key = subprocess.run([sys.executable, "-m", "app.cli", "keys", "create", "--project",
                          "labelling-team", "--role", "editor"], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    try:
        yield server, key
    finally:
        _stop(server)


def _predictions(ls: httpx.Client, project: int) -> dict[int, dict]:
    """Ask Label Studio to fetch predictions for every task (its data manager's "Retrieve
    predictions" action), then read them back: task id -> its latest prediction."""
    r = ls.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions",
                                           "project": project},
                json={"selectedItems": {"all": True, "excluded": []}}, timeout=300)
    assert r.status_code == 200, r.text
    r = ls.get("/api/predictions", params={"project": project})
    assert r.status_code == 200, r.text
    latest: dict[int, dict] = {}
    for p in sorted(r.json(), key=lambda p: p["id"]):
        latest[p["task"]] = p
    return latest


def _choice(prediction: dict) -> str | None:
    result = prediction["result"]
    return result[0]["value"]["choices"][0] if result else None


def test_label_studio_uses_the_service_as_its_ml_backend(label_studio, rac):
    (ls_server, token), (rac_server, key) = label_studio, rac
    ls = httpx.Client(base_url=ls_server.url, headers={"Authorization": f"Token {token}"},
                      timeout=60)
    api = httpx.Client(base_url=rac_server.url, headers=bearer(key), timeout=60)

    r = ls.post("/api/projects", json={"title": "Support intents", "label_config": CONFIG})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    # Texts no label description is about, so only a review can decide them.
    texts = ["the thing with the blue widget happened again", "I lost my card at the station"]
    r = ls.post(f"/api/projects/{project}/import", json=[{"text": t} for t in texts])
    assert r.status_code == 201, r.text
    tasks = {t["data"]["text"]: t["id"] for t in
             ls.get("/api/tasks", params={"project": project}).json()["tasks"]}

    # Connect: Label Studio checks /health, posts /setup, and creates a webhook to /webhook.
    # Retrieval only: what the review changes is then the embedder's and index's doing alone.
    backend = f"{rac_server.url}/label-studio/support-intents/strategy/retrieval"
    r = ls.post("/api/ml", json={"url": backend, "project": project, "title": "RAC Labeller",
                                 "auth_method": "BASIC_AUTH", "basic_auth_user": "label-studio",
                                 "basic_auth_pass": key})
    assert r.status_code == 201, r.text
    ml = ls.get(f"/api/ml/{r.json()['id']}").json()
    assert ml["state"] == "CO", (ml, rac_server.tail())
    assert ml["model_version"].startswith("support-intents-v1/")
    # Label Studio sends webhooks without the backend's Basic Auth: give it the key as a header.
    hooks = [h for h in ls.get("/api/webhooks", params={"project": project}).json()
             if h["url"] == backend + "/webhook"]
    assert len(hooks) == 1, hooks
    r = ls.patch(f"/api/webhooks/{hooks[0]['id']}",
                 json={"headers": {"Authorization": f"Bearer {key}"}})
    assert r.status_code == 200, r.text

    schema = api.get("/v1/schemas/support-intents").json()
    assert [x["name"] for x in schema["labels"]] == list(LABELS)

    before = _predictions(ls, project)
    assert set(before) == set(tasks.values()), (before, ls_server.tail(), rac_server.tail())
    for prediction in before.values():
        assert prediction["model_version"] == ml["model_version"]
        assert _choice(prediction) in LABELS and 0 <= prediction["score"] <= 1
    widget = tasks[texts[0]]
    predicted = _choice(before[widget])
    stored = api.get(f"/v1/items/label-studio-{project}-{widget}").json()
    assert stored["labels"][0]["labels"] == [predicted]

    # A person labels the widget task in Label Studio, with a label the model did not give.
    chosen = next(x for x in LABELS if x != predicted)
    r = ls.post(f"/api/tasks/{widget}/annotations", json={"result": [
        {"from_name": "intent", "to_name": "text", "type": "choices",
         "value": {"choices": [chosen]}}]})
    assert r.status_code == 201, r.text
    annotation = r.json()

    def reviewed() -> bool:
        item = api.get(f"/v1/items/label-studio-{project}-{widget}").json()
        return item["labels"][0]["status"] == "reviewed"
    wait_for(reviewed, 30, what="the annotation to arrive as a review")
    item = api.get(f"/v1/items/label-studio-{project}-{widget}",
                   params={"history": "true"}).json()
    assert item["labels"][0]["labels"] == [chosen]
    assert item["labels"][0]["source"] == f"label-studio:user-{annotation['completed_by']}"

    # The next similar text gets the reviewed label.
    similar = "the thing with the blue widget happened again today"
    r = ls.post(f"/api/projects/{project}/import", json=[{"text": similar}])
    assert r.status_code == 201, r.text
    after = _predictions(ls, project)
    new = [t for t in after if t not in before]
    assert len(new) == 1
    assert _choice(after[new[0]]) == chosen != predicted

    # Deleting the annotation in Label Studio retracts the review.
    assert ls.delete(f"/api/annotations/{annotation['id']}").status_code == 204

    def retracted() -> bool:
        item = api.get(f"/v1/items/label-studio-{project}-{widget}").json()
        return item["labels"][0]["status"] != "reviewed"
    wait_for(retracted, 30, what="the deletion to retract the review")
    assert api.get(f"/v1/items/label-studio-{project}-{widget}").json()[
        "labels"][0]["labels"] == [predicted]
