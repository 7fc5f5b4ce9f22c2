"""Idempotency-Key: a retried request returns the original response instead of acting twice.

The key is claimed inside the request's own transaction, so the claim, the work and the
remembered response commit together or not at all. A concurrent duplicate waits on the
key's unique index and then replays the first response; the same key with a different
request is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Header, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import Principal
from app.errors import Conflict, RequestInProgress, Unprocessable
from app.models import IdempotencyRecord

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Any unique string per logical upload (e.g. a UUID); a retry with the same "
        "key returns the original response and stores nothing twice.",
    ),
]


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def _find(session: Session, principal: Principal, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == principal.key_id, IdempotencyRecord.key == key
        )
    )


def _replay(record: IdempotencyRecord, request_fingerprint: str, key: str) -> dict[str, Any]:
    if record.request_fingerprint != request_fingerprint:
        raise Unprocessable(
            f"Idempotency-Key {key!r} was already used for a different request; use a new key "
            "for a new upload."
        )
    if record.response is None:
        raise RequestInProgress(
            f"A request with Idempotency-Key {key!r} is still running; retry shortly."
        )
    return record.response


def claim(
    session: Session, principal: Principal, key: str | None, request_fingerprint: str
) -> dict[str, Any] | None:
    """The remembered response for this key, or None after claiming the key for this request."""
    if key is None:
        return None
    record = _find(session, principal, key)
    if record is not None:
        return _replay(record, request_fingerprint, key)
    try:
        with session.begin_nested():
            session.add(
                IdempotencyRecord(
                    api_key_id=principal.key_id, key=key, request_fingerprint=request_fingerprint
                )
            )
    except IntegrityError:  # a concurrent request with this key committed first
        record = _find(session, principal, key)
        if record is None:
            raise
        return _replay(record, request_fingerprint, key)
    return None


def remember(
    session: Session, principal: Principal, key: str | None, response: dict[str, Any]
) -> None:
    """Store the response for the claimed key (in the same transaction as the work)."""
    if key is None:
        return
    record = _find(session, principal, key)
    if record is not None:
        record.response = response
        session.flush()


_REPLAYED = "osteolux_idempotency_replayed"
REPLAY_HEADER = "Idempotency-Replayed"


def mark_replay(session: Session, response: Response) -> None:
    """Say so when this request's answer is the replay of an earlier one with the same
    Idempotency-Key (same status and body as the first time, nothing done again)."""
    if session.info.get(_REPLAYED):
        response.headers[REPLAY_HEADER] = "true"


Model = TypeVar("Model", bound=BaseModel)


def run_once(
    session: Session,
    principal: Principal,
    key: str | None,
    request_fingerprint: str,
    response_type: type[Model],
    work: Callable[[], Model],
) -> Model:
    """``work()``'s response, or the one remembered for this key (see the module docstring)."""
    replay = claim(session, principal, key, request_fingerprint)
    if replay is not None:
        try:
            remembered = response_type.model_validate(replay)
        except ValidationError:  # remembered by an older version with another response shape
            raise Conflict(
                f"Idempotency-Key {key!r} belongs to a request an earlier version of osteolux "
                "carried out; its answer no longer fits this version. Find the result (e.g. "
                "GET the list) instead of sending the request again."
            ) from None
        session.info[_REPLAYED] = True
        return remembered
    response = work()
    remember(session, principal, key, response.model_dump(mode="json"))
    return response
