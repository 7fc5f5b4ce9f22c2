"""HTTP routes for study exports: submit one (a job, 202), list them, download its ZIP,
delete one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from fastapi import APIRouter, Response, status
from fastapi.responses import StreamingResponse

from app.deps import BlobStoreDep, PrincipalDep, ReasonHeader, SessionDep, SettingsDep
from app.errors import Conflict
from app.exports import service
from app.exports.schemas import ExportCreate, ExportRead
from app.jobs.schemas import JobRead
from app.jobs.service import accepted
from app.pagination import Page, PageDep
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


@router.get("/exports", summary="List a study's exports")
def list_exports(
    study_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[ExportRead]:
    """The study's exports, newest first: state, progress (files done of all), options,
    created/finished, and once built the ZIP's size, SHA-256 and download link."""
    jobs, total = service.list_exports(session, principal, study_id, page)
    items = [ExportRead.of(job) for job in jobs]
    return Page[ExportRead](items=items, total=total, limit=page.limit, offset=page.offset)


@router.delete(
    "/exports/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a study export and the files only it used",
)
def delete_export(
    study_id: uuid.UUID,
    job_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    reason: ReasonHeader = None,
) -> Response:
    """Removes the export and, from the file store, each of its files that nothing else
    uses (a file shared with raw data, another export or an import stays). Needs an
    X-Change-Reason, kept in the audit trail; 409 while it (or another export of the study)
    is being built. Editors and admins."""
    service.delete_export(session, principal, store, study_id, job_id, reason=reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
