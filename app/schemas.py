"""Pydantic base classes shared by every feature's schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from fastapi import Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    model_validator,
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20000)]


def reject_nul(value: str, *, field: str) -> str:
    """A text value without NUL characters (PostgreSQL cannot store them; SQLite would)."""
    if "\x00" in value:
        raise ValueError(
            f"{field} contains a NUL character (\\u0000), which no text field may hold; "
            "remove it (it often comes from copying binary data)"
        )
    return value


def _reject_nul_anywhere(data: Any, path: str = "body") -> None:
    if isinstance(data, str):
        reject_nul(data, field=path)
    elif isinstance(data, dict):
        for key, value in data.items():
            reject_nul(str(key), field=path)
            _reject_nul_anywhere(value, f"{path}.{key}")
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            _reject_nul_anywhere(value, f"{path}[{i}]")


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped; NaN and infinity
    are refused in every number, NUL characters in every text."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        _reject_nul_anywhere(data, cls.__name__)
        return data


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


#: Dates a study can have: from the first BLI studies to well beyond any study running now.
EARLIEST, LATEST = date(1990, 1, 1), date(2100, 12, 31)


def _plausible_date(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must lie between {EARLIEST} and {LATEST}, got {value}")
    return value


def _plausible_datetime(value: datetime) -> datetime:
    _plausible_date(value.date())
    return value


StudyDate = Annotated[date, AfterValidator(_plausible_date)]
StudyDateTime = Annotated[AwareDatetime, AfterValidator(_plausible_datetime)]

# Days since injection in queries: a century either way is more than any study.
DayQuery = Annotated[int | None, Query(ge=-36500, le=36500)]
