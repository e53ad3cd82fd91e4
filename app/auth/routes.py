from __future__ import annotations

from fastapi import APIRouter

from app.auth import service
from app.auth.api import KeyCreate, KeyCreated, KeyListOut, KeyOut, WhoAmI
from app.auth.models import ApiKey
from app.deps import Admin, SessionDep, Viewer

router = APIRouter(prefix="/v1", tags=["keys"])


def _out(key: ApiKey) -> KeyOut:
    return KeyOut(prefix=key.prefix, name=key.name, role=key.role, created_at=key.created_at,
                  revoked_at=key.revoked_at)


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: Viewer) -> WhoAmI:
    """The calling key: its project, role and name."""
    return WhoAmI(project=principal.project_name, key_name=principal.key_name, role=principal.role)


@router.post("/keys", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, principal: Admin, session: SessionDep) -> KeyCreated:
    """A new key for the caller's project. The key is in this response only."""
    stored, key = service.create_key(session, principal.project_name, body.role, body.name)
    return KeyCreated(**_out(stored).model_dump(), key=key)


@router.get("/keys", response_model=KeyListOut)
def list_keys(principal: Admin, session: SessionDep) -> KeyListOut:
    """List the project's API keys (prefixes and roles; a key itself is shown only once)."""
    return KeyListOut(items=[_out(k) for k in service.list_keys(session, principal.project_id)])


@router.delete("/keys/{prefix}", response_model=KeyOut)
def revoke_key(prefix: str, principal: Admin, session: SessionDep) -> KeyOut:
    """Revoke a key by its prefix; requests with it get 401 from now on."""
    return _out(service.revoke_key(session, principal.project_id, prefix))
