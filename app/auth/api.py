from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from app.auth.models import Role
from app.validation import NoNul


class KeyIn(BaseModel):
    role: Role
    name: Annotated[str, NoNul] | None = Field(None, min_length=1, max_length=100)


class KeyOut(BaseModel):
    prefix: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class KeyCreatedOut(KeyOut):
    key: str
    """The key itself: shown once, stored only as a hash."""


class KeyListOut(BaseModel):
    items: list[KeyOut]


class WhoAmIOut(BaseModel):
    project: str
    key_name: str
    role: Role
