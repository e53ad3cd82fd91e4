"""Every ORM model, imported once so `Base.metadata` is complete (for Alembic and tests)."""

from app.auth.models import ApiKey, Project
from app.db import Base
from app.label_schemas.models import LabelSchema, SchemaVersion

__all__ = ["ApiKey", "Base", "LabelSchema", "Project", "SchemaVersion"]
