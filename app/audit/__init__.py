"""Writing the append-only audit trail."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.auth import Principal
from app.db import REQUEST_REASON
from app.models import AuditEvent, utc_now


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID | dt.date | dt.datetime):
        return str(value)
    return value


def record(
    session: Session,
    principal: Principal,
    *,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Append one event; ``changes`` maps field → new value (or ``[old, new]`` on update)."""
    _append(
        session,
        lab_id=principal.lab_id,
        api_key_id=principal.key_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        changes=changes,
        reason=reason,
    )


def record_by_server(
    session: Session,
    *,
    lab_id: uuid.UUID,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Append one event done on the server itself (an ``osteolux`` command), not by a key."""
    _append(
        session,
        lab_id=lab_id,
        api_key_id=None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        changes=changes,
        reason=reason,
    )


def _append(
    session: Session,
    *,
    lab_id: uuid.UUID,
    api_key_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    changes: dict[str, Any] | None,
    reason: str | None,
) -> None:
    session.add(
        AuditEvent(
            lab_id=lab_id,
            api_key_id=api_key_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            changes={
                k: [_jsonable(x) for x in v] if isinstance(v, tuple) else _jsonable(v)
                for k, v in (changes or {}).items()
            },
            # The request's X-Change-Reason when the service has no reason of its own (a
            # body's reason, as on ROI edits, wins): every write records why, if told.
            reason=reason if reason is not None else session.info.get(REQUEST_REASON),
        )
    )


def apply_changes(
    session: Session,
    principal: Principal,
    obj: Any,
    changes: dict[str, Any],
    *,
    object_type: str,
    reason: str | None,
) -> None:
    """Set the changed fields and audit them as ``field: [old, new]``."""
    diff = {k: (getattr(obj, k), v) for k, v in changes.items() if getattr(obj, k) != v}
    for key, (_, new) in diff.items():
        setattr(obj, key, new)
    session.flush()
    if diff:
        record(
            session,
            principal,
            action="update",
            object_type=object_type,
            object_id=obj.id,
            changes=diff,
            reason=reason,
        )


def archive(
    session: Session, principal: Principal, obj: Any, *, object_type: str, reason: str | None
) -> None:
    """Mark an object archived (hidden from default listings, never deleted) and audit it."""
    if obj.archived_at is None:
        obj.archived_at = utc_now()
        session.flush()
        record(
            session,
            principal,
            action="archive",
            object_type=object_type,
            object_id=obj.id,
            reason=reason,
        )
