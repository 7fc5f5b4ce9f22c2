"""HTTP routes that change what is measured: draw, correct or retire an ROI on an acquisition
(``/studies/{study_id}/sessions/{session_id}/acquisitions/{acquisition_id}/rois…``), and
measure a whole study again from its raw files (``/studies/{study_id}/requantify``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.acquisitions.schemas import AcquisitionRead
from app.deps import BlobStoreDep, PrincipalDep, ReasonHeader, SessionDep, SettingsDep
from app.errors import Conflict
from app.jobs.schemas import JobRead
from app.jobs.service import accepted
from app.responses import PROBLEM_RESPONSES, problem_responses
from app.rois import service
from app.rois.schemas import RoiCreate, RoiRetire, RoiUpdate

router = APIRouter(tags=["acquisitions"], responses=PROBLEM_RESPONSES)

_ONE_ROI_PER_SITE = problem_responses(
    (
        "The image already has a current ROI for that animal and site",
        Conflict(
            "This image already has a current spine ROI for that animal (ROI 0c9e…); correct "
            "it with PATCH, retire it first, or use site 'custom' for an extra region."
        ),
    )
)

_ROIS = "/studies/{study_id}/sessions/{session_id}/acquisitions/{acquisition_id}/rois"


@router.post(
    _ROIS,
    status_code=status.HTTP_201_CREATED,
    summary="Draw an ROI",
    responses=_ONE_ROI_PER_SITE,
)
def add_roi(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    body: RoiCreate,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> AcquisitionRead:
    """Add an ROI (animal, site, shape in sensor pixels) and measure it at once."""
    return service.add_roi(
        session, principal, store, settings, study_id, session_id, acquisition_id, body
    )


@router.patch(_ROIS + "/{roi_id}", summary="Correct an ROI", responses=_ONE_ROI_PER_SITE)
def edit_roi(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    roi_id: uuid.UUID,
    body: RoiUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> AcquisitionRead:
    """Move, resize or reassign an ROI: a new version is measured; the old ROI and its
    measurement stay as history with who changed it, when and why."""
    return service.edit_roi(
        session, principal, store, settings, study_id, session_id, acquisition_id, roi_id, body
    )


@router.post(_ROIS + "/{roi_id}/retire", summary="Retire an ROI")
def retire_roi(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    roi_id: uuid.UUID,
    body: RoiRetire,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> AcquisitionRead:
    """Stop counting an ROI (e.g. drawn on the wrong mouse); it stays as history. Retiring
    the background ROI measures the others again: their detection limit came from it."""
    return service.retire_roi(
        session,
        principal,
        study_id,
        session_id,
        acquisition_id,
        roi_id,
        reason=body.reason,
        store=store,
        settings=settings,
    )


@router.post(
    "/studies/{study_id}/requantify",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Measure again from the raw files (a job)",
)
def requantify(
    study_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    session_id: Annotated[uuid.UUID | None, Query(description="Only this imaging session")] = None,
    reason: ReasonHeader = None,
) -> JobRead:
    """Queue a job that calibrates and quantifies every current ROI of the study (or of one
    session) again, e.g. after a software update; the previous measurements are kept as
    history. Answers 202 with ``Location: /jobs/{id}``: poll it for progress (clicks done of
    all) and the counts (acquisitions, measurements, changed). The same study and session
    while a job for them is queued or running answer that job."""
    job = service.submit_requantify(
        session, principal, settings, study_id, session_id=session_id, reason=reason
    )
    return accepted(response, job)


@router.post(
    "/requantify",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Measure every study of the lab again (a job)",
)
def requantify_lab(
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    reason: ReasonHeader = None,
) -> JobRead:
    """After a calibration or template change: queue one requantify job per study of the lab
    (they run in parallel, one study at a time each). Answers 202 with this job, whose
    result lists the study jobs (``/jobs?kind=requantify``)."""
    job = service.submit_requantify_lab(session, principal, settings, reason=reason)
    return accepted(response, job)
