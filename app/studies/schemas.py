"""Request and response bodies for studies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from pydantic import ConfigDict, Field, JsonValue

from app.models import ImageCombination, InjectionModel
from app.schemas import InputModel, LongText, Name, OutputModel, ShortText, StudyDate, UpdateModel

_EXAMPLE: dict[str, JsonValue] = {
    "name": "BM-2026-07 anti-TGF-β in MDA-MB-231 bone metastasis",
    "cell_line": "MDA-MB-231-luc (bone-seeking subclone 1833)",
    "injection_model": "intracardiac",
    "day0": "2026-07-01",
    "iacuc_number": "IACUC-2025-0412",
    "description": "1D11 10 mg/kg i.p. 3×/week vs isotype IgG1 13C4; weekly BLI.",
}


COMBINATION_DOC = (
    "How several images of one animal on one day become its one value in series, summaries, "
    "comparisons, exports and plots: mean (of every image, any view), sum_of_views (per view "
    "the mean of its images, then dorsal + ventral), dorsal or ventral (that view only), peak "
    "(the largest value of the day, e.g. of a kinetic sequence). Recorded in every output."
)


class StudyCreate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    name: Name
    cell_line: Name
    injection_model: InjectionModel
    day0: StudyDate
    iacuc_number: ShortText | None = None
    description: LongText | None = None
    image_combination: ImageCombination = Field(
        default=ImageCombination.mean, description=COMBINATION_DOC
    )


class StudyUpdate(UpdateModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"iacuc_number": "IACUC-2025-0413"}]})
    not_nullable: ClassVar[frozenset[str]] = frozenset(
        {"name", "cell_line", "injection_model", "day0", "image_combination"}
    )

    name: Name | None = None
    cell_line: Name | None = None
    injection_model: InjectionModel | None = None
    day0: StudyDate | None = None
    iacuc_number: ShortText | None = None
    description: LongText | None = None
    image_combination: ImageCombination | None = Field(default=None, description=COMBINATION_DOC)


class StudyRead(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE,
                    "id": "3f1c7a52-3a0e-4b8e-9f7e-2a4c1f0b9d11",
                    "image_combination": "mean",
                    "archived_at": None,
                    "created_at": "2026-06-20T09:12:00Z",
                    "updated_at": "2026-06-20T09:12:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    name: str
    cell_line: str
    injection_model: InjectionModel
    day0: date
    iacuc_number: str | None
    description: str | None
    image_combination: ImageCombination = Field(description=COMBINATION_DOC)
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
