"""Request and response bodies for labs and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from app.models import ApiKeyRole
from app.schemas import InputModel, Name, OutputModel


class ApiKeyCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "IVIS Spectrum PC, room 2.14", "role": "instrument"}]
        }
    )

    name: Name = Field(description="Who or what uses the key, so it can be recognised later.")
    role: ApiKeyRole


class ApiKeyRead(OutputModel):
    id: uuid.UUID
    name: str
    role: ApiKeyRole
    key_prefix: str = Field(description="The first characters of the key, to recognise it.")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret key. It is shown only now; store it safely.")


class WhoAmI(OutputModel):
    lab_id: uuid.UUID
    lab_name: str
    key_id: uuid.UUID
    role: ApiKeyRole
