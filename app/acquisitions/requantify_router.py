"""HTTP route to measure a study's images again from their raw files."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.acquisitions import rois
from app.deps import BlobStoreDep, PrincipalDep, ReasonHeader, SessionDep, SettingsDep
from app.responses import PROBLEM_RESPONSES

router = APIRouter(prefix="/studies/{study_id}", tags=["acquisitions"], responses=PROBLEM_RESPONSES)


@router.post("/requantify", summary="Measure again from the raw files")
def requantify(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    session_id: Annotated[uuid.UUID | None, Query(description="Only this imaging session")] = None,
    reason: ReasonHeader = None,
) -> rois.RequantifyResult:
    """Calibrate and quantify every current ROI of the study (or of one session) again,
    e.g. after a software update; the previous measurements are kept as history."""
    return rois.requantify(
        session, principal, store, settings, study_id, session_id=session_id, reason=reason
    )
