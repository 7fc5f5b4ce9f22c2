"""HTTP routes to read acquisitions back (list, one, the overlay image and the original file)
and to move one to another imaging session.

Uploads (POST/PUT on the same prefix) are in ``app/ingest/router.py``; ROI edits
(``…/{acquisition_id}/rois``) and ``/studies/{id}/requantify`` in ``app/rois/router.py``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, BinaryIO, Literal, TypedDict, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.acquisitions import figures, kinetics, service
from app.acquisitions.schemas import AcquisitionMove, AcquisitionRead, SessionKinetics
from app.deps import BlobStoreDep, PrincipalDep, SessionDep, SettingsDep
from app.models import View
from app.pagination import PageParams
from app.responses import PROBLEM_RESPONSES, attachment_headers

router = APIRouter(
    prefix="/studies/{study_id}/sessions/{session_id}/acquisitions",
    tags=["acquisitions"],
    responses=PROBLEM_RESPONSES,
)


@router.get(
    "",
    summary="List the acquisitions of a session",
    responses={
        200: {
            "headers": {
                "X-Total-Count": {"description": "How many acquisitions the session has."},
                "Link": {"description": 'The next page, rel="next", when there is one.'},
            }
        }
    },
)
def list_acquisitions(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page (1–500).")] = 500,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")] = 0,
) -> list[AcquisitionRead]:
    """The acquisitions of an imaging session in upload order, with their animals and current
    measurements, a page at a time (a plain list, as before; ``X-Total-Count`` gives the
    number and ``Link: <…>; rel="next"`` the next page when there is more)."""
    items, total = service.list_acquisitions(
        session, principal, study_id, session_id, PageParams(limit=limit, offset=offset)
    )
    response.headers["X-Total-Count"] = str(total)
    if offset + len(items) < total:
        following = request.url.include_query_params(limit=limit, offset=offset + len(items))
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return items


@router.get("/kinetics", summary="Kinetic curves of the session's repeated clicks")
def session_kinetics(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    max_gap_min: Annotated[
        float,
        Query(gt=0, le=720, description="Largest gap between two clicks of one sequence, min."),
    ] = 30.0,
) -> SessionKinetics:
    """Clicks of the same view of the same mice, each within max_gap_min of the previous one,
    are one kinetic sequence (one injection imaged repeatedly): per animal and site, its
    total flux at each click and the peak, flagged when the peak is at the first or last
    click (the true peak may lie outside the sequence)."""
    return kinetics.session_kinetics(
        session,
        principal,
        study_id,
        session_id,
        max_gap_min=max_gap_min,
        failed_injection_factor=settings.failed_injection_factor,
    )


@router.get("/{acquisition_id}", summary="Get an acquisition")
def get_acquisition(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
) -> AcquisitionRead:
    """One acquisition: camera settings, calibration steps, animals and measurements."""
    acquisition = service.get_acquisition(session, principal, study_id, session_id, acquisition_id)
    return service.acquisition_read(session, acquisition, already_stored=True)


@router.post("/{acquisition_id}/move", summary="Move an acquisition to another session")
def move_acquisition(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    data: AcquisitionMove,
    session: SessionDep,
    principal: PrincipalDep,
) -> AcquisitionRead:
    """Uploaded into the wrong imaging session: put it in the right one of the same study (its
    day follows; ROIs and measurements stay). Audited with who, when and the reason."""
    return service.move_acquisition(session, principal, study_id, session_id, acquisition_id, data)


VminQuery = Annotated[
    float | None,
    Query(
        description="Lower end of the colour range, in the image's units (p/s/cm²/sr); with "
        "vmax, e.g. one range for every image of a time course. Default: the image's own."
    ),
]
VmaxQuery = Annotated[float | None, Query(description="Upper end of the colour range.")]
DpiQuery = Annotated[int, Query(ge=50, le=600, description="Resolution; 300 for print.")]


IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}, "image/svg+xml": {}},
        "description": "PNG (format=png, default; shows in Swagger UI) or SVG (format=svg: text "
        "and outlines as vectors, for a paper's figure).",
    }
}
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
FigureFormat = Literal["png", "svg"]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Response])


class FigureDrawing(TypedDict):
    scale: Literal["log", "linear"]
    vmin: float | None
    vmax: float | None
    dpi: int
    format: FigureFormat


class FigureOptions:
    """How a figure is drawn: the query the overlay and the image sequence share (``format``
    is the path's suffix in their .png/.svg alias)."""

    def __init__(
        self,
        scale: Literal["log", "linear"] = "log",
        vmin: VminQuery = None,
        vmax: VmaxQuery = None,
        dpi: DpiQuery = 100,
        format: FigureFormat = "png",
    ) -> None:
        self.drawing = FigureDrawing(scale=scale, vmin=vmin, vmax=vmax, dpi=dpi, format=format)

    def response(self, content: bytes) -> Response:
        return Response(content, media_type=MEDIA_TYPES[self.drawing["format"]])


FigureOptionsDep = Annotated[FigureOptions, Depends()]


def figure_route(on: APIRouter, path: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    """A figure at ``path?format=png|svg`` and, as its documented alias, at ``path.png`` and
    ``path.svg`` (the endpoint's ``format`` parameter is then taken from the suffix)."""

    def register(endpoint: Endpoint) -> Endpoint:
        common: dict[str, Any] = {"response_class": Response, "responses": IMAGE_RESPONSES}
        on.get(path, summary=summary, **common)(endpoint)
        name = path.rsplit("/", 1)[-1]
        on.get(
            f"{path}.{{format}}",
            summary=f"{summary} (alias: {name}.png, {name}.svg)",
            description="Alias of the route without the file suffix, the format taken from "
            "the suffix.",
            **common,
        )(endpoint)
        return endpoint

    return register


@figure_route(router, "/{acquisition_id}/overlay", "Overlay image")
def overlay(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    options: FigureOptionsDep,
) -> Response:
    """The luminescence (radiance, log or linear colour scale with a colour bar) on the
    photograph, with every ROI outlined, labelled with ear tag and site and its total flux
    written next to it; format=png (default) or svg."""
    content = service.overlay_png(
        session,
        principal,
        store,
        settings,
        study_id,
        session_id,
        acquisition_id,
        **options.drawing,
    )
    return options.response(content)


@router.get(
    "/{acquisition_id}/original",
    summary="Download the original upload",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The file as uploaded"}},
)
def original(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
) -> StreamingResponse:
    """The uploaded file, byte for byte (its SHA-256 is in the acquisition)."""
    handle, filename, media_type = service.original_file(
        session, principal, store, study_id, session_id, acquisition_id
    )
    return StreamingResponse(
        _chunks(handle), media_type=media_type, headers=attachment_headers(filename)
    )


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(1024**2):
            yield chunk


#: Study-level figures (included by ``app.main`` beside ``router``).
study_router = APIRouter(
    prefix="/studies/{study_id}", tags=["acquisitions"], responses=PROBLEM_RESPONSES
)


AnimalQuery = Annotated[
    str | None, Query(max_length=100, description="The animal's ear tag (or arm_id).")
]
ArmQuery = Annotated[uuid.UUID | None, Query(description="An arm: all its animals (or animal).")]


@figure_route(study_router, "/sequence", "Image sequence of one animal or one arm")
def sequence(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    options: FigureOptionsDep,
    animal: AnimalQuery = None,
    arm_id: ArmQuery = None,
    view: View = View.dorsal,
) -> Response:
    """Living Image's image-sequence layout: every image of this view showing the animal (or
    the arm's animals), in order of day, on one colour scale with one colour bar (the caller's
    vmin/vmax, else one range over all panels); their ROIs labelled with ear tag, site and
    total flux; format=png (default) or svg."""
    content = figures.sequence_figure(
        session,
        principal,
        store,
        settings,
        study_id,
        animal=animal,
        arm_id=arm_id,
        view=view,
        **options.drawing,
    )
    return options.response(content)
