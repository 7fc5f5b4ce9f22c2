"""FastAPI dependencies and their ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal, authenticate
from app.config import Settings
from app.db import session_scope
from app.storage import BlobStore

# The dependencies that only read the app's state are ``async def``: FastAPI runs a plain
# ``def`` dependency on a worker thread, a hop to another thread and back for each of them on
# every request.


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """The request's one transaction: committed when the handler returns, else rolled back.

    It is a function-scoped dependency (``SessionDep``): the commit runs after the handler has
    built its response and *before* a byte of it is sent, so a 2xx only ever reports committed
    data, and a commit that fails answers with an error instead. Reads (GET, HEAD) run in a
    read-only transaction that takes no write lock.
    """
    state = request.app.state
    read_only = request.method in READ_METHODS
    factory = state.read_session_factory if read_only else state.session_factory
    yield from session_scope(factory, reason=change_reason(request))


def change_reason(request: Request) -> str | None:
    """The X-Change-Reason header, kept for the audit trail of every write of the request."""
    reason = request.headers.get("X-Change-Reason", "").strip()
    return reason[:2000] or None


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_blob_store(request: Request) -> BlobStore:
    return request.app.state.blob_store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
BlobStoreDep = Annotated[BlobStore, Depends(get_blob_store)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_read_session_factory(request: Request) -> sessionmaker[Session]:
    """Sessions whose transactions only read (no write lock on SQLite, READ ONLY on PostgreSQL):
    for the key lookup, and for loading a computation's inputs before its write transaction."""
    return request.app.state.read_session_factory


ReadSessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_read_session_factory)]


def get_principal(
    factory: ReadSessionFactoryDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    # A short read-only transaction of its own: the request's transaction (and, on SQLite,
    # the database write lock) starts only when the work does, not while a body streams in.
    with factory() as session:
        return authenticate(session, bearer.credentials if bearer else _bare_key(api_key))


def _bare_key(value: str | None) -> str | None:
    """The key itself, also when 'Bearer <key>' was pasted into X-API-Key."""
    if value is None:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


PrincipalDep = Annotated[Principal, Depends(get_principal)]
NOT_PREFILLED: dict[str, object] = {"example": ""}
"""``json_schema_extra`` of form fields that change what is stored or computed (animals, view,
metadata). Swagger UI fills a form field with its schema's example, or an enum's first value,
and sends it: a ventral click was stored as dorsal with mice in the example's order. An empty
example leaves the field empty, so the documented default (e.g. the click's own label) applies.
Describe such fields in words instead."""

ReasonHeader = Annotated[
    str | None,
    Header(
        alias="X-Change-Reason",
        max_length=2000,
        description="Why this change is made; kept in the audit trail.",
    ),
]
