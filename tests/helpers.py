"""Plain helper functions that create test data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
