"""Request and response bodies for animals and their end records."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, ConfigDict, Field, JsonValue, model_validator

from app.models import EndReason, Sex
from app.schemas import (
    InputModel,
    LongText,
    OutputModel,
    ShortText,
    StudyDate,
    UpdateModel,
)


# No separators or control characters: identifiers travel in comma-separated lists
# (Living Image's Animal Number, the `animals` form field) and in CSV files.
def _plain_identifier(value: str) -> str:
    if any(c in ",;" or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain commas, semicolons or control characters")
    return value


Identifier = Annotated[ShortText, AfterValidator(_plain_identifier)]


class AnimalEnd(InputModel):
    """When and why an animal's series ends (it is censored there in survival analysis)."""

    date: StudyDate
    reason: EndReason
    note: LongText | None = None


_END_EXAMPLE: dict[str, JsonValue] = {
    "date": "2026-07-29",
    "reason": "humane_endpoint",
    "note": "hind-limb paralysis",
}
_EXAMPLE: dict[str, JsonValue] = {
    "identifier": "3466",
    "arm_id": "1c2b3a4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "cage": "C12",
    "sex": "female",
    "strain": "NSG",
    "date_of_birth": "2026-05-10",
    "end": None,
}


class AnimalCreate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    identifier: Identifier = Field(
        min_length=1, description="Ear tag / ID, unique within the study."
    )
    arm_id: uuid.UUID
    cage: ShortText | None = None
    sex: Sex = Sex.unknown
    strain: ShortText | None = None
    date_of_birth: StudyDate | None = None
    end: AnimalEnd | None = None


class AnimalUpdate(UpdateModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"end": _END_EXAMPLE}, {"cage": "C14"}]}
    )
    not_nullable: ClassVar[frozenset[str]] = frozenset({"identifier", "arm_id", "sex"})

    identifier: Identifier | None = Field(default=None, min_length=1)
    arm_id: uuid.UUID | None = None
    cage: ShortText | None = None
    sex: Sex | None = None
    strain: ShortText | None = None
    date_of_birth: StudyDate | None = None
    end: AnimalEnd | None = Field(
        default=None, description="Set to null to clear a mistaken end record."
    )


class AnimalEndRead(OutputModel):
    date: date
    reason: EndReason
    note: str | None


class AnimalRead(OutputModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE,
                    "end": _END_EXAMPLE,
                    "id": "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d",
                    "study_id": "3f1c7a52-3a0e-4b8e-9f7e-2a4c1f0b9d11",
                    "archived_at": None,
                    "created_at": "2026-06-20T09:20:00Z",
                    "updated_at": "2026-07-29T16:02:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    study_id: uuid.UUID
    identifier: str
    arm_id: uuid.UUID
    cage: str | None
    sex: Sex
    strain: str | None
    date_of_birth: date | None
    end: AnimalEndRead | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _end_from_columns(cls, data: Any) -> Any:
        if hasattr(data, "end_date"):
            end = (
                {"date": data.end_date, "reason": data.end_reason, "note": data.end_note}
                if data.end_date is not None
                else None
            )
            return {name: getattr(data, name) for name in cls.model_fields if name != "end"} | {
                "end": end
            }
        return data
