"""HTTP routes to upload acquisitions: an IVIS click as a zip (POST, multipart), the same as a
raw body for instrument PCs (PUT, checked against Content-Digest), or a TIFF with metadata.

Reading them back (GET on the same prefix) is in ``app/acquisitions/router.py``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import queue
import re
import uuid
from contextlib import suppress
from typing import Annotated

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
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app import idempotency
from app.acquisitions.schemas import AcquisitionRead
from app.deps import (
    NOT_PREFILLED,
    BlobStoreDep,
    PrincipalDep,
    ReadSessionFactoryDep,
    SessionDep,
    SettingsDep,
)
from app.errors import BadRequest, Conflict, Unprocessable
from app.idempotency import IdempotencyKey
from app.ingest import service
from app.ingest.schemas import TiffMetadata
from app.models import View
from app.responses import PROBLEM_RESPONSES, problem_responses

router = APIRouter(
    prefix="/studies/{study_id}/sessions/{session_id}/acquisitions",
    tags=["acquisitions"],
    responses=PROBLEM_RESPONSES,
)

_CLICK_CONFLICT = problem_responses(
    (
        "A click of this name is stored with other content",
        Conflict(
            "Click DG20220105114235 is already stored in this study (acquisition 5b1e…) "
            "with different content; a click's raw files never change."
        ),
    )
)

_ANIMALS = Form(
    description="Animals in the field left to right, comma separated; default: the click's "
    "'Animal Number' (e.g. 3466,3467,3468,3469,3470). The count must match the mice found.",
    json_schema_extra=NOT_PREFILLED,
)


def _created_or_found(
    session: Session, result: AcquisitionRead, response: Response
) -> AcquisitionRead:
    """201 for a new acquisition, 200 when these bytes were stored before; a replayed
    Idempotency-Key says so (Idempotency-Replayed: true)."""
    if result.already_stored:
        response.status_code = status.HTTP_200_OK
    idempotency.mark_replay(session, response)
    return result


def _animal_list(animals: str | None) -> list[str] | None:
    if animals is None or not animals.strip():
        return None
    if "\x00" in animals:
        raise Unprocessable("animals contains a NUL character (\\u0000); remove it.")
    return [a.strip() for a in animals.split(",") if a.strip()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload an IVIS click (zip)",
    responses={
        200: {"description": "This exact click was uploaded before; nothing changed."},
        **_CLICK_CONFLICT,
    },
)
def upload_click(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    file: Annotated[
        UploadFile, File(description="A Living Image folder of one acquisition, zipped")
    ],
    session: SessionDep,
    reader: ReadSessionFactoryDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    response: Response,
    view: Annotated[
        View | None,
        Form(description="Default: the click's 'View' label", json_schema_extra=NOT_PREFILLED),
    ] = None,
    animals: Annotated[str | None, _ANIMALS] = None,
    idempotency_key: IdempotencyKey = None,
) -> AcquisitionRead:
    """Store a zipped Living Image export unchanged, calibrate it to radiance, place ROIs on
    each mouse (Living Image's own ROIs, or a whole-body ROI and the site template on every
    mouse found on the photograph) and quantify them. All of it is kept, or none of it."""
    result = service.ingest_click(
        session,
        reader,
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
    return _created_or_found(session, result, response)


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
            "(left to right) and ROIs; see the TiffMetadata schema",
            json_schema_extra=NOT_PREFILLED,
        ),
    ],
    session: SessionDep,
    reader: ReadSessionFactoryDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> AcquisitionRead:
    """For instruments without Living Image: the TIFF is kept unchanged, read in the units
    the metadata states (counts are calibrated to radiance only with c_ccd, exposure and
    bias; otherwise measurements are flagged uncalibrated) and measured in the given ROIs."""
    result = service.ingest_tiff(
        session,
        reader,
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
    return _created_or_found(session, result, response)


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
    """The request body as a blocking file-like object for the sync service. A task on the
    event loop receives the body into a queue the service's thread reads without going back
    to the event loop (one hop per read cost ~0.6 ms on a busy loop); at most ``max_chunks``
    server chunks (up to :data:`app.serving.READ_BYTES` each) wait in it (the task waits for
    room), so receiving and staging overlap and the body streams to the staging file, never
    to memory beyond the queue."""

    def __init__(self, request: Request, *, max_chunks: int = 8) -> None:
        self._stream = request.stream()
        self._chunks: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()
        self._room = asyncio.Semaphore(max_chunks)
        self._loop = asyncio.get_running_loop()
        self._done = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _RequestBody:
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()  # the service stopped early (refused, too large): stop reading
            with suppress(asyncio.CancelledError):
                await self._task

    async def _pump(self) -> None:
        end: BaseException | None = None  # None: the whole body came
        try:
            async for chunk in self._stream:
                if chunk:
                    await self._room.acquire()
                    self._chunks.put(chunk)
        except Exception as exc:  # a disconnect or a too slow body: raised in the reader
            end = exc
        except BaseException:  # cancelled (the server stops): the reader must not wait for ever
            end = ConnectionAbortedError("the server stopped receiving this upload")
            raise
        finally:
            self._chunks.put(end)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._pump())

    def read(self, _size: int = -1, /) -> bytes:
        """The next chunk as the server received it (never joined: on this machine a copy of
        a 17 MB body costs ~6 ms)."""
        if self._done:
            return b""
        if self._task is None:  # from the first read: a refused request reads nothing
            anyio.from_thread.run_sync(self._start)
        item = self._chunks.get()
        if item is None:
            self._done = True
            return b""
        if isinstance(item, BaseException):
            self._done = True
            raise item
        self._loop.call_soon_threadsafe(self._room.release)
        return item


@router.put(
    "/{click_number}",
    summary="Push an IVIS click (raw zip body)",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Already stored; nothing changed."}, **_CLICK_CONFLICT},
)
async def put_click(
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    click_number: Annotated[str, Path(max_length=100, description="Living Image click name")],
    request: Request,
    session: SessionDep,
    reader: ReadSessionFactoryDep,
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
    async with _RequestBody(request) as body:
        result = await run_in_threadpool(
            service.ingest_click,
            session,
            reader,
            principal,
            store,
            settings,
            study_id,
            session_id,
            body,
            filename=f"{click_number}.zip",
            view=view,
            animals=_animal_list(animals),
            expected_sha256=expected,
            expected_click=click_number,
        )
    return _created_or_found(session, result, response)
