"""Request body of a field correction."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from app.schemas import InputModel, LongText, ShortText


class FieldCorrection(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "animals": ["3467", "3466", "3468", "3469", "3470"],
                    "reason": "mice 1 and 2 were swapped on the stage",
                }
            ]
        }
    )

    animals: list[ShortText] = Field(
        min_length=1,
        max_length=50,
        description="Ear tags of the study's animals in the field, left to right as the image "
        "shows them (Living Image's numbering). Each mouse's ROIs follow its position.",
    )
    reason: LongText = Field(min_length=3, description="Why the field changes (audited).")

    @field_validator("animals")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        value = [v.strip() for v in value]
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"each animal may stand at one position only: {', '.join(repeated)}")
        return value


class TemplateApplication(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"animal": "3467", "reason": "Living Image ROIs missed the femurs"}]
        }
    )

    animal: ShortText = Field(min_length=1, description="Ear tag of a mouse in the field.")
    reason: LongText = Field(min_length=3, description="Why (kept with each new ROI version).")
