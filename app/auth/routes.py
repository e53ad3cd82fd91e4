from __future__ import annotations

from fastapi import APIRouter

from app.auth import service
from app.auth.api import KeyCreatedOut, KeyIn, KeyListOut, KeyOut, WhoAmIOut
from app.auth.models import ApiKey
from app.deps import Admin, SessionDep, Viewer

router = APIRouter(prefix="/v1", tags=["keys"])


def _out(key: ApiKey) -> KeyOut:
    return KeyOut(prefix=key.prefix, name=key.name, role=key.role, created_at=key.created_at,
                  revoked_at=key.revoked_at)


@router.get("/whoami", response_model=WhoAmIOut)
def whoami(principal: Viewer) -> WhoAmIOut:
    """The calling key: its project, role and name."""
    return WhoAmIOut(project=principal.project_name, key_name=principal.key_name,
                     role=principal.role)


@router.post("/keys", status_code=201, response_model=KeyCreatedOut)
def create_key(body: KeyIn, principal: Admin, session: SessionDep) -> KeyCreatedOut:
    """A new key for the caller's project. The key is in this response only."""
    stored, key = service.create_key(session, principal.project_name, body.role, body.name)
    return KeyCreatedOut(**_out(stored).model_dump(), key=key)


@router.get("/keys", response_model=KeyListOut)
def list_keys(principal: Admin, session: SessionDep) -> KeyListOut:
    """List the project's API keys (prefixes and roles; a key itself is shown only once)."""
    return KeyListOut(items=[_out(k) for k in service.list_keys(session, principal.project_id)])


@router.delete("/keys/{prefix}", response_model=KeyOut)
def revoke_key(prefix: str, principal: Admin, session: SessionDep) -> KeyOut:
    """Revoke a key by its prefix; requests with it get 401 from now on."""
    return _out(service.revoke_key(session, principal.project_id, prefix))
