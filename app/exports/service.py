"""Study exports as jobs: submitted keyed by their options, built one committed file per
step, assembled into ONE ZIP with a manifest, downloaded once the job has succeeded.

Where the bytes live: every file is put in the blob store (content-addressed, a ``blob`` row
committed in the same step as the job's progress) as soon as it is made, so a runner killed
mid-export resumes on any machine after its last committed file, nothing made twice; the
last step reads them back into one ZIP, itself a blob. Being blobs with rows, the parts and
the ZIP are checked by ``osteolux fsck`` like raw files and never count as orphans (a runner
killed between moving a file in and committing leaves the same orphan a killed upload does,
removed by ``fsck --remove-orphans``); the staging files they pass through are leased, so
``osteolux clean-staging`` never takes one in use.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zipfile
from datetime import datetime
from types import MappingProxyType
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Select, delete, exists, func, select, true, union_all
from sqlalchemy.orm import Session

from app import __version__, audit
from app.analysis.service import software_versions
from app.audit.service import STUDY_READERS
from app.auth import Principal
from app.blobs import keep_blob
from app.config import Settings
from app.errors import Conflict, NotFound, OsteoluxError, Unprocessable
from app.exports import parts
from app.exports.schemas import ExportCreate
from app.jobs import repository as job_queries
from app.jobs import service as jobs
from app.jobs.runner import JobContext
from app.jobs.schemas import PLAN
from app.models import (
    AcquisitionFile,
    AuditEvent,
    Blob,
    Job,
    JobState,
    Measurement,
    utc_now,
)
from app.models.jobs import ACTIVE_STATES
from app.pagination import PageParams, paginate
from app.storage import BlobStore, StagingWriter
from app.studies.service import get_study

EXPORT_JOB = "export"
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = "osteolux-study-export/1"
ZIP_STEP = '{"path": "export.zip"}'
ZIP_MEDIA_TYPE = "application/zip"
MAX_FILE_BYTES = 64 * 1024**3  # a guard on one staged file, far above any real export
_CHUNK = 1024**2
# already compressed: stored as is in the ZIP
_STORED = frozenset({parts.PNG, parts.XLSX})


class ExportNotReady(Conflict):
    title, slug = "Export still running", "export-in-progress"
    headers = MappingProxyType({"Retry-After": "5"})


def submit_export(
    session: Session,
    principal: Principal,
    settings: Settings,
    study_id: uuid.UUID,
    data: ExportCreate,
) -> Job:
    """Queue a study export (checked first: something to export, the sites, the images)."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    parts.check_options(session, study, data)
    return jobs.submit(
        session,
        principal,
        settings,
        kind=EXPORT_JOB,
        inputs={"study_id": str(study.id), "options": data.model_dump(mode="json")},
        lock=f"study:{study.id}",  # not while the study is requantified (one consistent view)
    )


def run_export_job(job: JobContext) -> None:
    """The export job: one committed step per file, then the ZIP (progress = files done of
    files planned, the ZIP included). The files are planned, and the overlays' colour range
    chosen, once, when the job first starts; a resumed job keeps them."""
    study_id = uuid.UUID(job.params["study_id"])
    options = ExportCreate.model_validate(job.params["options"])
    planned: list[parts.Part] = []
    first: dict[str, Any] = {}
    if PLAN not in job.params:  # plan in a read transaction: no write lock while images load
        with job.read_factory() as session:
            study = get_study(session, job.principal, study_id)
            planned, colour_range = parts.plan(session, job.store, job.settings, study, options)
            colours = None
            if colour_range is not None:
                vmin, vmax = colour_range
                colours = {"scale": options.overlay_scale, "vmin": vmin, "vmax": vmax}
            first = {
                "study": {"id": str(study.id), "name": study.name},
                "exported_at": utc_now().isoformat(),
                "colour_range": colours,
                "files": [],
                "skipped": [],
            }
    steps = job.plan(
        lambda session: [json.dumps(p, sort_keys=True) for p in planned] + [ZIP_STEP],
        result=first,
    )
    for number, step in enumerate(steps[:-1]):
        if job.done <= number:
            _make_file(job, study_id, number, json.loads(step))
    if job.done < len(steps):
        _make_zip(job, len(steps) - 1)
    job.result_url = f"/studies/{study_id}/exports/{job.job_id}"


def _made_by(part: parts.Part) -> dict[str, Any]:
    return {"route": f"GET {part['route']}", "parameters": part["parameters"]}


def _make_file(job: JobContext, study_id: uuid.UUID, number: int, part: parts.Part) -> None:
    """Make one file (in a read transaction), then keep it as a blob and note it in the
    result in one committed step. A file its route would refuse (e.g. a summary the data
    cannot give) is noted as skipped, with the route's reason."""
    try:
        with job.read_factory() as session:
            content = parts.produce(session, job.principal, job.store, job.settings, study_id, part)
    except OsteoluxError as exc:
        if exc.status not in (404, 422):
            raise
        skipped = {"path": part["path"], "reason": exc.detail, "produced_by": _made_by(part)}

        def note(session: Session, result: dict[str, Any]) -> None:
            result["skipped"] = [*result["skipped"], skipped]

        job.step(number, note)
        return
    with job.store.staging(max_bytes=MAX_FILE_BYTES, name=part["path"]) as writer:
        writer.write(content)
        staged = writer.finish()
        entry = {
            "path": part["path"],
            "sha256": staged.sha256,
            "size_bytes": staged.size_bytes,
            "media_type": part["media_type"],
            "produced_by": _made_by(part),
            "produced_at": utc_now().isoformat(),
            "osteolux": __version__,
        }

        def keep(session: Session, result: dict[str, Any]) -> None:
            keep_blob(session, job.store, staged, media_type=part["media_type"])
            result["files"] = [*result["files"], entry]

        job.step(number, keep)


def manifest(job: JobContext) -> dict[str, Any]:
    """What the ZIP holds: every file with its SHA-256 and what produced it (route,
    parameters, osteolux version), the files skipped and why, and the export's options."""
    result = job.result
    return {
        "format": MANIFEST_FORMAT,
        "study": result["study"],
        "export": {
            "job_id": str(job.job_id),
            "options": job.params["options"],
            "exported_at": result["exported_at"],
            "overlay_colour_range": result["colour_range"],
        },
        "osteolux": __version__,
        "software": software_versions(),
        "files": result["files"],
        "skipped": result["skipped"],
    }


class _Sink:
    """A staging file as the write-only stream ``zipfile`` accepts (it writes data
    descriptors when it cannot seek)."""

    def __init__(self, writer: StagingWriter) -> None:
        self._writer = writer
        self._position = 0

    def write(self, data: bytes) -> int:
        self._writer.write(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # the staging file is closed by its owner


def _make_zip(job: JobContext, number: int) -> None:
    """Read every kept file back (checking its SHA-256) into one ZIP with the manifest,
    and keep the ZIP as a blob: the export's result."""
    result = job.result
    exported_at = datetime.fromisoformat(result["exported_at"])
    stamp = exported_at.timetuple()[:6]
    name = f"{result['study']['name'][:60]}-export-{exported_at.date().isoformat()}.zip"
    body = json.dumps(manifest(job), indent=2, ensure_ascii=False).encode() + b"\n"
    with job.store.staging(max_bytes=MAX_FILE_BYTES, name=name) as writer:
        with zipfile.ZipFile(_Sink(writer), "w") as archive:
            for entry in result["files"]:
                _copy_in(job.store, archive, entry, stamp)
            info = zipfile.ZipInfo(MANIFEST, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, body)
        staged = writer.finish()

        def keep(session: Session, result: dict[str, Any]) -> None:
            keep_blob(session, job.store, staged, media_type=ZIP_MEDIA_TYPE)
            result["zip"] = {
                "filename": name.replace('"', ""),
                "sha256": staged.sha256,
                "size_bytes": staged.size_bytes,
                "files": len(result["files"]) + 1,
            }

        job.step(number, keep)


def _copy_in(
    store: BlobStore, archive: zipfile.ZipFile, entry: dict[str, Any], stamp: tuple[int, ...]
) -> None:
    info = zipfile.ZipInfo(entry["path"], date_time=stamp)  # type: ignore[arg-type]
    info.compress_type = (
        zipfile.ZIP_STORED if entry["media_type"] in _STORED else zipfile.ZIP_DEFLATED
    )
    info.file_size = entry["size_bytes"]
    digest = hashlib.sha256()
    with store.open(entry["sha256"]) as source, archive.open(info, "w") as target:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            target.write(chunk)
    if digest.hexdigest() != entry["sha256"]:
        raise OsteoluxError(
            f"The stored {entry['path']} no longer hashes to {entry['sha256']}; run "
            "osteolux fsck, then export again."
        )


def _export_job(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    job_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Job:
    principal.require_role(
        STUDY_READERS, to="download a study export (it holds the study's audit trail)"
    )
    study = get_study(session, principal, study_id)
    query = job_queries.of_lab(principal.lab_id).where(Job.id == job_id, Job.kind == EXPORT_JOB)
    job = session.scalar(query.with_for_update() if for_update else query)
    if job is None or job.params.get("study_id") != str(study.id):
        raise NotFound(f"No export with id {job_id} of study {study_id} in your lab.")
    return job


def export_file(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study_id: uuid.UUID,
    job_id: uuid.UUID,
) -> tuple[BinaryIO, str, int]:
    """The export's ZIP (an open stream), its file name and size; 409 until it is built."""
    job = _export_job(session, principal, study_id, job_id)
    if job.state in ACTIVE_STATES:
        total = job.progress_total
        raise ExportNotReady(
            f"Export {job_id} is still {job.state.value} ({job.progress_done} of "
            f"{total if total is not None else '?'} files done); follow GET /jobs/{job_id} "
            "and download once it has succeeded."
        )
    if job.state != JobState.succeeded:
        why = (job.error or {}).get("detail", "see GET /jobs/{id}")
        raise Conflict(f"Export {job_id} failed, so there is no file: {why}")
    made = (job.result or {})["zip"]
    try:
        return store.open(made["sha256"]), made["filename"], made["size_bytes"]
    except FileNotFoundError as exc:  # deleted by a DELETE committing at this moment
        raise NotFound(f"Export {job_id} was just deleted; nothing to download.") from exc


def list_exports(
    session: Session, principal: Principal, study_id: uuid.UUID, page: PageParams
) -> tuple[list[Job], int]:
    """The study's exports, newest first (a page of them and how many in all)."""
    study = get_study(session, principal, study_id)
    query = (
        job_queries.of_lab(principal.lab_id)
        .where(Job.kind == EXPORT_JOB, _of_study(study.id))
        .order_by(Job.created_at.desc(), Job.id)
    )
    return paginate(session, query, page)


def _of_study(study_id: uuid.UUID) -> ColumnElement[bool]:
    return Job.params["study_id"].as_string() == str(study_id)


DELETE_ACTION = "delete_export"


def delete_export(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study_id: uuid.UUID,
    job_id: uuid.UUID,
    *,
    reason: str | None,
) -> list[str]:
    """Remove an export: its job, and from the store each of its files (and its ZIP) that
    nothing else references; the SHA-256 of the files removed.

    The store is content-addressed without reference counts, so a file is removed only when
    no row anywhere points at its SHA-256 (:func:`unreferenced`: raw files of acquisitions
    and imports, imported measurements, the audit trail, other exports' files and ZIPs), all
    checked in one query.

    Concurrency. The export's job row is locked first, so the same export deleted twice at
    once is deleted once (the second finds no row: 404). An export still queued or running
    cannot be deleted (409), nor any export while another export of the study is being
    built (it may be about to record one of these files). Against any other writer storing
    the same bytes at the same moment this takes the lock that every writer's ``keep_blob``
    takes, the ``blob`` row: it locks the candidate rows (``SELECT … FOR UPDATE`` on
    PostgreSQL; on SQLite the request's ``BEGIN IMMEDIATE`` already serialises every writer)
    and only THEN checks the references, inside the transaction. A writer that read the row
    first (``keep_blob`` reads it ``FOR KEY SHARE``) makes this wait until it has committed,
    and its reference is then seen: the file stays. One that comes after waits for this
    transaction, finds no row, inserts one and puts the file again. Files are removed last,
    while the rows are still locked, after the audit event: only a failing commit in that
    instant could leave a row without its file, which ``osteolux fsck`` reports and the next
    store of the same bytes heals.
    """
    principal.require_write()
    # the job row locked first: a second deletion of it waits, then finds none (404)
    job = _export_job(session, principal, study_id, job_id, for_update=True)
    if not reason:
        raise Unprocessable(
            "Deleting an export removes its files; send an X-Change-Reason header saying why "
            "(kept in the audit trail)."
        )
    if job.state in ACTIVE_STATES:
        raise ExportNotReady(
            f"Export {job_id} is still {job.state.value}; it can be deleted once it has "
            f"finished (follow GET /jobs/{job_id})."
        )
    building = session.scalar(
        job_queries.of_lab(principal.lab_id)
        .where(Job.kind == EXPORT_JOB, _of_study(study_id), Job.state.in_(ACTIVE_STATES))
        .limit(1)
    )
    if building is not None:
        raise ExportNotReady(
            f"Another export of this study ({building.id}) is being built and may share "
            "files with this one; delete once it has finished."
        )
    made = job.result or {}
    zip_made = made.get("zip")
    candidates = {f["sha256"] for f in made.get("files", [])}
    if zip_made:
        candidates.add(zip_made["sha256"])
    locked = sorted(
        session.scalars(select(Blob.sha256).where(Blob.sha256.in_(candidates)).with_for_update())
    )
    session.delete(job)
    session.flush()
    free = unreferenced(session, locked)  # one query for every file, not one per file
    removed = [sha for sha in locked if sha in free]
    if removed:
        session.execute(delete(Blob).where(Blob.sha256.in_(removed)))
    audit.record(
        session,
        principal,
        action=DELETE_ACTION,
        object_type="study",
        object_id=uuid.UUID(job.params["study_id"]),
        changes={
            "export": str(job.id),
            "state": job.state.value,
            "options": job.params.get("options"),
            "created_at": job.created_at,
            "zip": zip_made,
            "files": len(made.get("files", [])),
            "files_removed": len(removed),
            "files_kept_shared": len(locked) - len(removed),
        },
        reason=reason,
    )
    session.flush()
    for sha in removed:
        store.remove(sha)
    return removed


def unreferenced(session: Session, candidates: list[str]) -> set[str]:
    """The candidates no row references, in one query over every place a SHA-256 of a
    stored file is written: an acquisition's raw files (clicks, TIFFs, imported measurement
    CSVs: ``acquisition_file``, a foreign key), an imported measurement's parameters, an
    audit event's changes (an import's kept file, e.g. readout CSVs, known only there; not
    the record of a deleted export) and every export job's files and ZIP. Each table is read
    once (an anti-join with their union), not once per candidate. A remembered idempotent answer
    is no reference: replaying it reads no file."""
    if not candidates:
        return set()
    referenced = union_all(
        select(AcquisitionFile.blob_sha256.label("sha256")),
        select(Measurement.parameters["sha256"].as_string()),
        select(AuditEvent.changes["sha256"].as_string()).where(AuditEvent.action != DELETE_ACTION),
        select(Job.result[("zip", "sha256")].as_string()).where(Job.kind == EXPORT_JOB),
        _export_files(session),
    ).subquery()
    named = exists().where(referenced.c.sha256 == Blob.sha256)  # an anti-join, spills to disk
    return set(session.scalars(select(Blob.sha256).where(Blob.sha256.in_(candidates), ~named)))


def _export_files(session: Session) -> Select[Any]:
    """The SHA-256 of each file an export job kept (its result's ``files``), one row per
    file: the JSON array expanded by the database's own function, joined to its job."""
    if session.get_bind().dialect.name == "postgresql":
        entry = func.json_array_elements(Job.result["files"]).table_valued("value")
        sha256: ColumnElement[str] = entry.c.value.op("->>")("sha256")
    else:
        entry = func.json_each(Job.result, "$.files").table_valued("value")
        sha256 = func.json_extract(entry.c.value, "$.sha256")
    return select(sha256).select_from(Job).join(entry, true()).where(Job.kind == EXPORT_JOB)
