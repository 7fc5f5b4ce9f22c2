"""HTTP routes for study exports: submit one (a job, 202), download its ZIP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from fastapi import APIRouter, Response, status
from fastapi.responses import StreamingResponse

from app.deps import BlobStoreDep, PrincipalDep, SessionDep, SettingsDep
from app.errors import Conflict
from app.exports import service
from app.exports.schemas import ExportCreate
from app.jobs.schemas import JobRead
from app.jobs.service import accepted
from app.responses import PROBLEM_RESPONSES, attachment_headers, problem_responses

router = APIRouter(prefix="/studies/{study_id}", tags=["exports"], responses=PROBLEM_RESPONSES)

_CHUNK = 1024**2
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {}}, "description": "The export's ZIP"},
    **problem_responses(
        ("Not built yet, or the job failed", Conflict("Export 6b0e… is still running."))
    ),
}


@router.post(
    "/exports",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Export a study (measurements, summaries, Prism, comparisons, overlays) as a job",
)
def create_export(
    study_id: uuid.UUID,
    body: ExportCreate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JobRead:
    """202 with the job (`Location: /jobs/{id}`) that builds ONE ZIP: the measurements CSV,
    per site a per-arm summary and a Prism table, each stored comparison's tables, workbook
    and growth plot, overlays on one study-wide colour range (when asked), the audit trail,
    and MANIFEST.json (each file's SHA-256 and the route and parameters that answer the same
    bytes). Progress counts files; the same options while one runs return that job; its
    `result_url` downloads the ZIP. Editors and admins."""
    job = service.submit_export(session, principal, settings, study_id, body)
    return accepted(response, job)


@router.get(
    "/exports/{job_id}",
    summary="Download a study export (ZIP)",
    response_class=StreamingResponse,
    responses=DOWNLOAD_RESPONSES,
)
def download_export(
    study_id: uuid.UUID,
    job_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
) -> StreamingResponse:
    """The ZIP an export job built, named after the study and the export's date; 409 while
    the job is queued or running (with `Retry-After`) or when it failed."""
    handle, filename, size = service.export_file(session, principal, store, study_id, job_id)
    headers = attachment_headers(filename) | {"Content-Length": str(size)}
    return StreamingResponse(_chunks(handle), media_type="application/zip", headers=headers)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk
