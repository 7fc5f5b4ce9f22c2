"""Reading the audit trail: one event, and the filters a reader may apply."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AwareDatetime, BaseModel, Field

from app.schemas import OutputModel


class AuditEventRead(OutputModel):
    id: uuid.UUID
    at: datetime = Field(description="When the change was committed (UTC).")
    api_key_id: uuid.UUID | None = Field(
        description="The key that made the change; null for a command run on the server."
    )
    api_key_name: str | None = Field(description="That key's name, to recognise who it is.")
    action: str = Field(description="create, update, archive, revoke, import, upload, …")
    object_type: str = Field(description="study, arm, animal, imaging_session, acquisition, …")
    object_id: uuid.UUID
    changes: dict[str, Any] = Field(
        description="Field → new value, or field → [old, new] for a correction."
    )
    reason: str | None = Field(description="The X-Change-Reason sent with the change.")


class AuditFilters(BaseModel):
    """Which events to return (all given filters apply)."""

    object_type: str | None = None
    object_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    order: Literal["asc", "desc"] = "asc"


def audit_filters(
    object_type: Annotated[
        str | None, Query(max_length=50, description="Only events about this kind of object")
    ] = None,
    object_id: Annotated[
        uuid.UUID | None, Query(description="Only events about this object")
    ] = None,
    api_key_id: Annotated[
        uuid.UUID | None, Query(description="Only changes made with this API key")
    ] = None,
    action: Annotated[str | None, Query(max_length=50, description="e.g. update")] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="From this time on, with its UTC offset")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="Before this time, with its UTC offset")
    ] = None,
    order: Annotated[
        Literal["asc", "desc"], Query(description="asc: oldest first (default); desc: newest")
    ] = "asc",
) -> AuditFilters:
    return AuditFilters(
        object_type=object_type,
        object_id=object_id,
        api_key_id=api_key_id,
        action=action,
        since=since,
        until=until,
        order=order,
    )
