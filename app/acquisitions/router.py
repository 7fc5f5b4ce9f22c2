"""HTTP routes to upload acquisitions (IVIS clicks) and read them back."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterator
from typing import Annotated, BinaryIO, Literal

import anyio.from_thread
from fastapi import (
    APIRouter,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.acquisitions import images, rois, service, tiff_ingest
from app.acquisitions.roi_schemas import RoiCreate, RoiRetire, RoiUpdate
from app.acquisitions.schemas import AcquisitionRead
from app.acquisitions.tiff_schemas import TiffMetadata
from app.deps import BlobStoreDep, PrincipalDep, SessionDep, SettingsDep
from app.errors import BadRequest, Unprocessable
from app.idempotency import IdempotencyKey
from app.models import View
from app.responses import PROBLEM_RESPONSES, attachment_headers

router = APIRouter(
    prefix="/studies/{study_id}/sessions/{session_id}/acquisitions",
    tags=["acquisitions"],
    responses=PROBLEM_RESPONSES,
)

_ANIMALS = Form(
    description="Animals in the field left to right, comma separated; default: the click's "
    "'Animal Number'.",
    examples=["3466,3467,3468,3469,3470"],
)


def _animal_list(animals: str | None) -> list[str] | None:
    if animals is None or not animals.strip():
        return None
    return [a.strip() for a in animals.split(",") if a.strip()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload an IVIS click (zip)",
    responses={200: {"description": "This exact click was uploaded before; nothing changed."}},
)
def upload_click(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    file: Annotated[
        UploadFile, File(description="A Living Image folder of one acquisition, zipped")
    ],
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    response: Response,
    view: Annotated[View | None, Form(description="Default: the click's 'View' label")] = None,
    animals: Annotated[str | None, _ANIMALS] = None,
    idempotency_key: IdempotencyKey = None,
) -> AcquisitionRead:
    """Store a zipped Living Image export unchanged, calibrate it to radiance, place ROIs on
    each mouse (Living Image's own ROIs, or a whole-body ROI and the site template on every
    mouse found on the photograph) and quantify them. All of it is kept, or none of it."""
    result = service.ingest_click(
        session,
        principal,
        store,
        settings,
        study_id,
        session_id,
        file.file,
        filename=file.filename or "click.zip",
        view=view,
        animals=_animal_list(animals),
        idempotency_key=idempotency_key,
    )
    if result.already_stored:
        response.status_code = status.HTTP_200_OK
    return result


@router.post(
    "/tiff",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a TIFF with metadata (other instruments)",
    responses={200: {"description": "This exact TIFF was uploaded before; nothing changed."}},
)
def upload_tiff(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="One luminescent image as a TIFF")],
    metadata: Annotated[
        str,
        Form(
            description="JSON: units, binning, pixel size, calibration constants, animals "
            "(left to right) and ROIs; see the TiffMetadata schema"
        ),
    ],
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> AcquisitionRead:
    """For instruments without Living Image: the TIFF is kept unchanged, read in the units
    the metadata states (counts are calibrated to radiance only with c_ccd, exposure and
    bias; otherwise measurements are flagged uncalibrated) and measured in the given ROIs."""
    result = tiff_ingest.ingest_tiff(
        session,
        principal,
        store,
        settings,
        study_id,
        session_id,
        file.file,
        filename=file.filename or "image.tif",
        metadata=parse_tiff_metadata(metadata),
        idempotency_key=idempotency_key,
    )
    if result.already_stored:
        response.status_code = status.HTTP_200_OK
    return result


def parse_tiff_metadata(text: str) -> TiffMetadata:
    try:
        return TiffMetadata.model_validate_json(text)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(["metadata", *map(str, e["loc"])]), "message": e["msg"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Unprocessable(f"The metadata JSON is invalid: {summary}", errors=errors) from None


_DIGEST = re.compile(r"sha-256=:([A-Za-z0-9+/=]+):")


def _sha256_from_digest(header: str) -> str:
    match = _DIGEST.search(header)
    if match is None:
        raise BadRequest(
            "Content-Digest must carry a SHA-256 of the body, as 'sha-256=:<base64>:' (RFC 9530)."
        )
    try:
        digest = base64.b64decode(match[1], validate=True)
    except binascii.Error:
        raise BadRequest("The sha-256 value in Content-Digest is not valid base64.") from None
    if len(digest) != 32:
        raise BadRequest("The sha-256 value in Content-Digest is not 32 bytes long.")
    return digest.hex()


class _RequestBody:
    """The request body as a blocking file-like object for the sync service, pulling chunks
    from the event loop as it reads: the body streams to the staging file, never to memory."""

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream().__aiter__()

    def read(self, _size: int = -1) -> bytes:
        while True:
            try:
                chunk = anyio.from_thread.run(self._chunks.__anext__)
            except StopAsyncIteration:
                return b""
            if chunk:
                return chunk


@router.put(
    "/{click_number}",
    summary="Push an IVIS click (raw zip body)",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Already stored; nothing changed."}},
)
async def put_click(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    click_number: Annotated[str, Path(max_length=100, description="Living Image click name")],
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    response: Response,
    content_digest: Annotated[
        str, Header(description="sha-256=:<base64 SHA-256 of the body>: (RFC 9530)")
    ],
    view: View | None = None,
    animals: Annotated[
        str | None, Query(description="Animals left to right, comma separated")
    ] = None,
) -> AcquisitionRead:
    """For instrument PCs: the zipped click as the request body with its SHA-256 in
    Content-Digest, which is checked (a mismatch keeps nothing). Repeating it is harmless."""
    expected = _sha256_from_digest(content_digest)
    result = await run_in_threadpool(
        service.ingest_click,
        session,
        principal,
        store,
        settings,
        study_id,
        session_id,
        _RequestBody(request),
        filename=f"{click_number}.zip",
        view=view,
        animals=_animal_list(animals),
        expected_sha256=expected,
        expected_click=click_number,
    )
    if result.already_stored:
        response.status_code = status.HTTP_200_OK
    return result


@router.get("", summary="List the acquisitions of a session")
def list_acquisitions(
    study_id: uuid.UUID, session_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[AcquisitionRead]:
    """Every acquisition of an imaging session, with its animals and current measurements."""
    return service.list_acquisitions(session, principal, study_id, session_id)


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


@router.get(
    "/{acquisition_id}/overlay.png",
    summary="Overlay image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "PNG"}},
)
def overlay(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    scale: Literal["log", "linear"] = "log",
) -> Response:
    """The luminescence (radiance, log or linear colour scale with a colour bar) on the
    photograph, with every ROI outlined, labelled and its total flux written next to it."""
    png = images.overlay_png(
        session, principal, store, settings, study_id, session_id, acquisition_id, scale=scale
    )
    return Response(png, media_type="image/png")


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


@router.post("/{acquisition_id}/rois", status_code=status.HTTP_201_CREATED, summary="Draw an ROI")
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
    return rois.add_roi(
        session, principal, store, settings, study_id, session_id, acquisition_id, body
    )


@router.patch("/{acquisition_id}/rois/{roi_id}", summary="Correct an ROI")
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
    return rois.edit_roi(
        session, principal, store, settings, study_id, session_id, acquisition_id, roi_id, body
    )


@router.post("/{acquisition_id}/rois/{roi_id}/retire", summary="Retire an ROI")
def retire_roi(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    roi_id: uuid.UUID,
    body: RoiRetire,
    session: SessionDep,
    principal: PrincipalDep,
) -> AcquisitionRead:
    """Stop counting an ROI (e.g. drawn on the wrong mouse); it stays as history."""
    return rois.retire_roi(
        session, principal, study_id, session_id, acquisition_id, roi_id, reason=body.reason
    )
