"""The study's ROI template: site ROIs in body coordinates, placed on every mouse found, so
every session of a study is measured with the same regions."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

import imaging
from app import audit
from app.auth import Principal
from app.models import Site, Study
from app.schemas import InputModel, ShortText
from app.studies.service import get_study

BodyUnits = Annotated[float, Field(ge=-2, le=2)]

# imaging's default template names → our anatomical sites (both scapulae: one site).
DEFAULT_SITES = {
    "skull": Site.skull_mandible,
    "thorax": Site.thorax,
    "spine": Site.spine,
    "left scapula": Site.forelimbs_scapula,
    "right scapula": Site.forelimbs_scapula,
    "left hindlimb": Site.left_hindlimb,
    "right hindlimb": Site.right_hindlimb,
}


class TemplateSite(InputModel):
    """One region in body coordinates: ``u`` along the body (−1 head … +1 tail, in semi-major
    axes), ``v`` across it (− = image left in a dorsal view, in semi-minor axes)."""

    name: ShortText = Field(min_length=1, examples=["left hindlimb"])
    site: Site
    shape: Literal["circle", "rectangle"]
    u: BodyUnits
    v: BodyUnits
    size_u: float = Field(gt=0, le=2)
    size_v: float = Field(gt=0, le=2, description="A circle's radius, across the body.")


class RoiTemplate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sites": [
                        {
                            "name": "spine",
                            "site": "spine",
                            "shape": "rectangle",
                            "u": 0.0,
                            "v": 0.0,
                            "size_u": 1.1,
                            "size_v": 0.35,
                        },
                        {
                            "name": "left hindlimb",
                            "site": "left_hindlimb",
                            "shape": "circle",
                            "u": 0.6,
                            "v": -0.6,
                            "size_u": 0.35,
                            "size_v": 0.35,
                        },
                    ]
                }
            ]
        }
    )

    sites: list[TemplateSite] = Field(max_length=50)


class RoiTemplateRead(BaseModel):
    sites: list[TemplateSite]
    is_default: bool = Field(description="True while the study uses osteolux's default.")


def default_template() -> list[TemplateSite]:
    return [
        TemplateSite(
            name=t.name,
            site=DEFAULT_SITES[t.name],
            shape=t.shape,
            u=t.u,
            v=t.v,
            size_u=t.size_u,
            size_v=t.size_v,
        )
        for t in imaging.DEFAULT_SITE_TEMPLATE
    ]


def study_template(study: Study) -> list[TemplateSite]:
    if study.roi_template is None:
        return default_template()
    return [TemplateSite.model_validate(entry) for entry in study.roi_template]


def get_roi_template(
    session: Session, principal: Principal, study_id: uuid.UUID
) -> RoiTemplateRead:
    """The site ROIs placed on every mouse found in this study's images."""
    study = get_study(session, principal, study_id)
    return RoiTemplateRead(sites=study_template(study), is_default=study.roi_template is None)


def set_roi_template(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    data: RoiTemplate,
    *,
    reason: str | None,
) -> RoiTemplateRead:
    """Replace the study's template; images already measured keep their ROIs (requantify or
    edit them to apply the new template deliberately)."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    audit.apply_changes(
        session,
        principal,
        study,
        {"roi_template": [s.model_dump(mode="json") for s in data.sites]},
        object_type="study",
        reason=reason,
    )
    return RoiTemplateRead(sites=study_template(study), is_default=False)
