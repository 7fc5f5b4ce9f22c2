"""HTTP route to correct the animals of an acquisition's field (order, a missing mouse)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.acquisitions.schemas import AcquisitionRead
from app.deps import BlobStoreDep, PrincipalDep, SessionDep, SettingsDep
from app.field import service
from app.field.schemas import FieldCorrection, TemplateApplication
from app.responses import PROBLEM_RESPONSES

router = APIRouter(
    prefix="/studies/{study_id}/sessions/{session_id}/acquisitions/{acquisition_id}",
    tags=["acquisitions"],
    responses=PROBLEM_RESPONSES,
)


@router.put("/field", summary="Correct the animals in the field")
def correct_field(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    data: FieldCorrection,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> AcquisitionRead:
    """Name the animals left to right (e.g. two mice swapped on the stage, or the click's
    'Animal Number' was wrong): each mouse's ROIs get a new version belonging to the animal
    now at its position, measured again; old versions stay as history; audited."""
    return service.correct_field(
        session, principal, store, settings, study_id, session_id, acquisition_id, data
    )


@router.post("/template-rois", summary="Place the study's site template on one mouse")
def apply_template(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    data: TemplateApplication,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> AcquisitionRead:
    """The mouse is found again on the photograph and the study's ROI template placed on it:
    each template site replaces that mouse's current ROI of the same site (a new version, the
    old one kept as history) or is added; all measured at once."""
    return service.apply_template(
        session, principal, store, settings, study_id, session_id, acquisition_id, data
    )
