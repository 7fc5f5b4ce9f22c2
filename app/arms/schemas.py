"""Request and response bodies for treatment and control arms."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, JsonValue

from app.models import AgentClass, ArmRole
from app.schemas import InputModel, Name, OutputModel, ShortText, UpdateModel

_TREATMENT_EXAMPLE: dict[str, JsonValue] = {
    "name": "1D11 10 mg/kg",
    "role": "treatment",
    "agent_class": "neutralizing_antibody",
    "agent": "1D11",
    "target": "TGF-β1/2/3",
    "dose": 10,
    "dose_unit": "mg/kg",
    "route": "i.p.",
    "schedule": "3×/week from day 3",
    "control_arm_id": "9b2d0c1e-5f4a-4c3b-8e7d-6a5b4c3d2e1f",
}
_CONTROL_EXAMPLE: dict[str, JsonValue] = {
    "name": "Isotype IgG1",
    "role": "control",
    "agent_class": "isotype_control",
    "agent": "13C4",
    "dose": 10,
    "dose_unit": "mg/kg",
    "route": "i.p.",
    "schedule": "3×/week from day 3",
}

Dose = Annotated[float, Field(ge=0, description="Dose amount; give dose_unit with it.")]


class ArmCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_CONTROL_EXAMPLE, _TREATMENT_EXAMPLE]}
    )

    name: Name
    role: ArmRole
    agent_class: AgentClass = Field(
        description="control arms: vehicle, isotype_control or other; "
        "treatment arms: inhibitor, neutralizing_antibody or other"
    )
    agent: ShortText | None = None
    target: ShortText | None = None
    dose: Dose | None = None
    dose_unit: ShortText | None = None
    route: ShortText | None = None
    schedule: ShortText | None = None
    control_arm_id: uuid.UUID | None = Field(
        default=None,
        description="Required for a treatment arm: the control arm of the same study it is "
        "compared with. Must be empty for a control arm.",
    )


class ArmUpdate(UpdateModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"schedule": "daily p.o."}]})
    not_nullable: ClassVar[frozenset[str]] = frozenset({"name", "role", "agent_class"})

    name: Name | None = None
    role: ArmRole | None = None
    agent_class: AgentClass | None = None
    agent: ShortText | None = None
    target: ShortText | None = None
    dose: Dose | None = None
    dose_unit: ShortText | None = None
    route: ShortText | None = None
    schedule: ShortText | None = None
    control_arm_id: uuid.UUID | None = None


class ArmRead(OutputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_TREATMENT_EXAMPLE,
                    "id": "1c2b3a4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "study_id": "3f1c7a52-3a0e-4b8e-9f7e-2a4c1f0b9d11",
                    "archived_at": None,
                    "created_at": "2026-06-20T09:15:00Z",
                    "updated_at": "2026-06-20T09:15:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    study_id: uuid.UUID
    name: str
    role: ArmRole
    agent_class: AgentClass
    agent: str | None
    target: str | None
    dose: float | None
    dose_unit: str | None
    route: str | None
    schedule: str | None
    control_arm_id: uuid.UUID | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
