"""HTTP routes for API keys and the caller's identity."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.deps import PrincipalDep, ReasonHeader, SessionDep
from app.labs import service
from app.labs.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, WhoAmI
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES

router = APIRouter(tags=["lab and keys"], responses=PROBLEM_RESPONSES)


@router.get("/me", summary="Who am I")
def who_am_i(session: SessionDep, principal: PrincipalDep) -> WhoAmI:
    """The lab and role of the API key used for this request."""
    lab, who = service.who_am_i(session, principal)
    return WhoAmI(lab_id=lab.id, lab_name=lab.name, key_id=who.key_id, role=who.role)


@router.post("/keys", status_code=status.HTTP_201_CREATED, summary="Create an API key")
def create_key(
    body: ApiKeyCreate, session: SessionDep, principal: PrincipalDep, reason: ReasonHeader = None
) -> ApiKeyCreated:
    """Issue a key for a person or an instrument PC of your lab (admin keys only). The secret
    is in the response once and is stored only as a hash."""
    key, secret = service.create_key(session, principal, body.name, body.role, reason=reason)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


@router.get("/keys", summary="List API keys")
def list_keys(session: SessionDep, principal: PrincipalDep, page: PageDep) -> Page[ApiKeyRead]:
    """Keys of your lab, oldest first, with their role and whether they are revoked, a page
    at a time (admin keys only)."""
    keys, total = service.list_keys(session, principal, page)
    return Page[ApiKeyRead](
        items=[ApiKeyRead.model_validate(k) for k in keys],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/keys/{key_id}/revoke", summary="Revoke an API key")
def revoke_key(
    key_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, reason: ReasonHeader = None
) -> ApiKeyRead:
    """Revoke a key at once, e.g. when an instrument PC is retired (admin keys only). The
    lab's last admin key cannot be revoked (409): create another admin key first."""
    return ApiKeyRead.model_validate(service.revoke_key(session, principal, key_id, reason=reason))
