"""HTTP routes for the workspace's image viewer: an acquisition's layers and ROI versions.

The radiance layer is sent as raw float32 so the browser colours it at any scale the user
picks without another request; the photograph as a grey PNG; ROIs with their geometry in
sensor pixels, as ``POST …/rois`` takes them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from app.deps import BlobStoreDep, PrincipalDep, SessionDep, SettingsDep
from app.pagination import PlainPageDep, plain_page_responses, set_page_headers
from app.responses import PROBLEM_RESPONSES
from app.viewer import service
from app.viewer.schemas import ImageRead, RoiVersion

router = APIRouter(
    prefix="/studies/{study_id}/sessions/{session_id}/acquisitions/{acquisition_id}",
    tags=["acquisitions"],
    responses=PROBLEM_RESPONSES,
)

# A stored acquisition's raw file never changes, so its layers can be cached by the browser
# (privately: they are behind the API key).
_CACHE = {"Cache-Control": "private, max-age=3600"}


@router.get("/image", summary="Image geometry, colour ranges and current ROIs")
def image_info(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> ImageRead:
    """The luminescent image's size, binning and units, the overlay's default colour ranges,
    the photograph's size, and every current ROI with its geometry in sensor pixels."""
    return service.image_info(
        session, principal, store, settings, study_id, session_id, acquisition_id
    )


@router.get(
    "/image/radiance",
    summary="Radiance as float32",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "rows × cols little-endian float32, row-major (X-Image-Rows/-Cols)",
        }
    },
)
def radiance(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> Response:
    """The calibrated image, pixel for pixel, in the units `GET …/image` states."""
    data, rows, cols = service.radiance_f32(
        session, principal, store, settings, study_id, session_id, acquisition_id
    )
    headers = _CACHE | {"X-Image-Rows": str(rows), "X-Image-Cols": str(cols)}
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get(
    "/image/photograph.png",
    summary="Photograph (grey PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "PNG"}},
)
def photograph(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
) -> Response:
    """The click's photograph at its own binning, grey levels stretched to 8 bits."""
    png = service.photograph_png(
        session, principal, store, settings, study_id, session_id, acquisition_id
    )
    return Response(png, media_type="image/png", headers=_CACHE)


@router.get(
    "/roi-history",
    summary="Every version of the acquisition's ROIs",
    responses=plain_page_responses("How many ROI versions the acquisition has."),
)
def roi_history(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
    response: Response,
    page: PlainPageDep,
) -> list[RoiVersion]:
    """Current, corrected and retired ROI versions, oldest first, each with its reason, a
    page at a time (a plain list, as before; ``X-Total-Count`` gives the number and
    ``Link: <…>; rel="next"`` the next page when there is more)."""
    versions, total = service.roi_history(
        session, principal, study_id, session_id, acquisition_id, page
    )
    set_page_headers(request, response, page, len(versions), total)
    return versions
