"""Pydantic base classes shared by every feature's schemas."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20000)]


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped; NaN and infinity
    are refused in every number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class UpdateModel(InputModel):
    """PATCH bodies: only the fields sent change; required fields may not be set to null."""

    not_nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _reject_null_for_required(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k in cls.not_nullable if k in data and data[k] is None)
            if nulls:
                raise ValueError(f"{', '.join(nulls)} cannot be null; leave it out to keep it")
        return data

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Days since injection in queries: a century either way is more than any study.
DayQuery = Annotated[int | None, Query(ge=-36500, le=36500)]
