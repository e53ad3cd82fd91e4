"""Plain helper functions that create test data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import Role
from app.auth.service import create_key

REPO = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO / "schemas"


@dataclass
class Database:
    backend: str
    url: str
    engine: Engine


def new_key(factory: sessionmaker[Session], project: str, role: str = "admin") -> str:
    with factory() as session:
        _, key = create_key(session, project, Role(role))
        session.commit()
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def page_csrf(client: Any) -> str:
    """The CSRF token of the review page's sign-in form, as a browser would get it."""
    import re

    page = client.get("/review/sign-in", follow_redirects=False)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def page_sign_in(client: Any, key: str) -> Any:
    """Sign in to the review page as its form does (the key and the form's CSRF token)."""
    return client.post("/review/sign-in", data={"key": key, "csrf": page_csrf(client)},
                       follow_redirects=False)


def demo_schema(name: str = "support", n_labels: int = 3, **overrides: object) -> dict:
    doc: dict = {
        "name": name,
        "description": "Customer messages.",
        "labels": [
            {"name": f"label_{i}", "description": f"Description of label {i}.",
             "examples": [f"example {i}a", f"example {i}b"]}
            for i in range(n_labels)
        ],
    }
    doc.update(overrides)
    return doc


def seed_labelled_items(factory: sessionmaker[Session], project: str, schema_doc: dict,
                        rows: list[tuple[str, str, str | None, float, str]]) -> None:
    """Store a schema, items and model decisions (id, text, label, confidence, status) directly,
    so review tests do not depend on what the real judge answers."""
    from app.auth.service import get_or_create_project
    from app.items.models import Item
    from app.items.service import text_hash
    from app.label_schemas.format import validate_schema_document
    from app.label_schemas.service import push_schema
    from app.labelling.service import record_decisions
    from app.rac.decision import Decision, TraceStep

    with factory() as session:
        proj = get_or_create_project(session, project)
        pushed = push_schema(session, proj.id, validate_schema_document(schema_doc))
        names = [x["name"] for x in schema_doc["labels"]]
        items, decisions = [], []
        for external_id, text, label, confidence, status in rows:
            item = Item(project_id=proj.id, external_id=external_id, text=text,
                        text_hash=text_hash(text), meta={})
            session.add(item)
            items.append(item)
            trace = [TraceStep(name, rank, 0.9 - 0.1 * rank, p_yes=0.1 if name != label
                               else confidence, accepted=name == label)
                     for rank, name in enumerate(names[:3])]
            decisions.append(Decision(label, confidence, status, trace,  # type: ignore[arg-type]
                                      [label] if label else [], model_id="test-model",
                                      prompt_version="test"))
        session.flush()
        record_decisions(session, pushed.schema, pushed.version, items, decisions)
        session.commit()


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll until `predicate()` returns something truthy; fail the test after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def job_annotation_counts(factory: sessionmaker[Session], job_external_id: str
                          ) -> tuple[int, int, int]:
    """(total items of the job, annotations written by it, distinct items among them)."""
    from sqlalchemy import distinct, func, select

    from app.jobs.models import Job
    from app.labelling.models import Annotation

    with factory() as session:
        job = session.scalars(select(Job).where(Job.external_id == job_external_id)).one()
        written, distinct_items = session.execute(
            select(func.count(), func.count(distinct(Annotation.item_id)))
            .where(Annotation.job_id == job.id)).one()
        return job.total, written, distinct_items


@contextmanager
def live_server(app: Any, start_timeout: float = 120) -> Iterator[str]:
    """`app` under uvicorn on a free 127.0.0.1 port, in a thread of the test process; yields its
    base URL. Real sockets and real concurrency, unlike the in-process test client."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound here and handed over: no race for the port
    port = sock.getsockname()[1]
    # A graceful shutdown waits for open responses; a page still following a job's event stream
    # kept it waiting past the join below, so the app's lifespan never ended and its scorer
    # refit thread outlived the test (and its database). After 5 s open responses are cut.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout  # the first start loads the bundled models
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the live server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        if thread.is_alive():
            raise AssertionError("the live server did not stop within 30 s")


def build_wheel(out: Path) -> Path:
    """The package as users get it: a wheel built from the checkout (no build isolation: the
    test's environment has setuptools, and nothing is downloaded)."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(REPO)], check=True, timeout=300,
                   capture_output=True)
    return next(out.glob("rac_labeller-*.whl"))


def install_wheel(wheel: Path, target: Path) -> Path:
    """Install `wheel` (non-editable, without dependencies: the test's environment has them)
    into the folder `target`, outside the checkout; put it first on PYTHONPATH to use it.
    Its `rac` command is `target/bin/rac`."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300, capture_output=True)
    return target
