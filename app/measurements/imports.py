"""Measurements brought in from CSV files (tidy or Living Image exports): the file is kept
unchanged as a raw blob, every row placed on an animal, a day and a site, all or nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app import audit, idempotency
from app.acquisitions import repository
from app.acquisitions.repository import IMPORT_ROLE
from app.auth import Principal
from app.blobs import keep_blob
from app.errors import Conflict, Unprocessable
from app.measurements.living_image import to_tidy_rows
from app.measurements.repository import current, of_study
from app.measurements.schemas import (
    ImportFormat,
    ImportResult,
)
from app.measurements.tidy_csv import TidyRow, read_tidy_csv
from app.models import (
    Acquisition,
    AcquisitionFile,
    Animal,
    ImagingSession,
    Measurement,
    Roi,
    RoiSource,
    Site,
    Study,
    View,
    utc_now,
)
from app.storage import BlobStore, StagedFile
from app.studies.service import get_study, lock_study
from app.uploads import Readable, staged_upload
from imaging import ImagingError, read_living_image_measurements
from imaging.clickinfo import decode_text

MAX_IMPORT_BYTES = 64 * 1024**2
BACKGROUND_SUBTRACTED = "background_subtracted"


def _decode(content: bytes, filename: str) -> str:
    try:
        return decode_text(content, source=filename)
    except ImagingError as exc:
        raise Unprocessable(f"{exc}; export it as CSV.") from exc


@dataclass(frozen=True)
class _Resolved:
    row: TidyRow
    animal: Animal
    site: Site
    on: date
    view: View


def _resolve(
    study: Study, animals: dict[str, Animal], rows: list[TidyRow], filename: str
) -> list[_Resolved]:
    unknown = sorted({r.animal for r in rows if r.animal not in animals})
    if unknown:
        shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
        raise Unprocessable(
            f"{filename}: {len(unknown)} animal(s) are not in this study: {shown}. "
            f"Add them (POST /studies/{study.id}/animals) or correct the identifiers."
        )
    sites = {s.value for s in Site} - {Site.background.value}
    views = {v.value for v in View}
    resolved = []
    for r in rows:
        if r.site not in sites:
            raise Unprocessable(
                f"{filename}, line {r.line}: site {r.site!r} is not known; use one of "
                f"{', '.join(sorted(sites))}."
            )
        if r.view is not None and r.view not in views:
            raise Unprocessable(
                f"{filename}, line {r.line}: view {r.view!r} is not one of "
                f"{', '.join(sorted(views))}."
            )
        on = r.on if r.on is not None else study.day0 + timedelta(days=r.day or 0)
        if r.on is not None and r.day is not None and (r.on - study.day0).days != r.day:
            raise Unprocessable(
                f"{filename}, line {r.line}: date {r.on} is day {(r.on - study.day0).days} of the "
                f"study (day 0 = {study.day0}), but the day column says {r.day}."
            )
        if on < study.day0:
            raise Unprocessable(
                f"{filename}, line {r.line}: {on} is before the study's day 0 ({study.day0})."
            )
        negative = [v for v in (r.total_flux_ps, r.radiance_mean) if v is not None and v < 0]
        if negative and BACKGROUND_SUBTRACTED not in r.flags:
            raise Unprocessable(
                f"{filename}, line {r.line}: a negative flux ({negative[0]:g}) is only possible "
                "after a background was subtracted; if so, add the flag "
                f"{BACKGROUND_SUBTRACTED} to the row's flags column, otherwise correct it."
            )
        animal = animals[r.animal]
        if animal.end_date is not None and on > animal.end_date:
            raise Unprocessable(
                f"{filename}, line {r.line}: animal {r.animal} ended on {animal.end_date} "
                f"({animal.end_reason}) but has a value on {on}; correct the row or the end record."
            )
        resolved.append(_Resolved(r, animal, Site(r.site), on, View(r.view or View.other)))
    return resolved


def import_measurements(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study_id: uuid.UUID,
    upload: Readable,
    *,
    filename: str,
    file_format: ImportFormat,
    replace: bool = False,
    idempotency_key: str | None = None,
) -> ImportResult:
    """Import a tidy or Living Image measurement CSV; the file itself is kept as raw data."""
    principal.require_write(allow_instrument=True)
    with staged_upload(store, upload, max_bytes=MAX_IMPORT_BYTES, filename=filename) as staged:
        # The body is staged before the first query, so no transaction (on SQLite: no
        # write lock) is held while it streams in.
        study = get_study(session, principal, study_id)
        if staged.size_bytes == 0:
            raise Unprocessable(f"{filename} is empty.")
        return idempotency.run_once(
            session,
            principal,
            idempotency_key,
            idempotency.fingerprint("import", study.id, staged.sha256, file_format, replace),
            ImportResult,
            lambda: _import_staged(
                session, principal, store, study, staged, filename, file_format, replace=replace
            ),
        )


def _import_staged(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study: Study,
    staged: StagedFile,
    filename: str,
    file_format: ImportFormat,
    *,
    replace: bool,
) -> ImportResult:
    animals = {
        a.identifier: a for a in session.scalars(select(Animal).where(Animal.study_id == study.id))
    }
    rows = _parse(staged, filename=filename, file_format=file_format, animals=set(animals))
    resolved = _resolve(study, animals, rows, filename)
    lock_study(session, study.id)  # concurrent imports of one file: the second sees the first
    if repository.by_file(session, study.id, staged.sha256, roles=(IMPORT_ROLE,)) is not None:
        return ImportResult(
            filename=filename,
            sha256=staged.sha256,
            format=file_format,
            already_imported=True,
            rows=0,
            animals=0,
            days=[],
            sessions_created=0,
            measurements_created=0,
            measurements_superseded=0,
        )
    superseded = _supersede(session, study, resolved, filename, replace=replace)
    keep_blob(session, store, staged, media_type="text/csv")
    return _store(
        session, principal, study, resolved, staged, filename, file_format, superseded=superseded
    )


def _supersede(
    session: Session, study: Study, resolved: list[_Resolved], filename: str, *, replace: bool
) -> int:
    """Current values for the same animal, day, site and view: refused (409, naming each line
    and what is stored) unless ``replace``, which makes them history. Returns how many."""
    wanted = {(r.animal.id, r.on, r.site, r.view): r for r in resolved}
    query = current(
        of_study(
            study.id,
            Measurement,
            Roi,
            ImagingSession.acquired_on,
            Acquisition.view,
            Acquisition.click_number,
        ).where(Roi.animal_id.in_({r.animal.id for r in resolved}))
    )
    clashes = [
        (wanted[key], measurement, roi, click_number)
        for measurement, roi, acquired_on, view, click_number in session.execute(query)
        if (key := (roi.animal_id, acquired_on, roi.site, view)) in wanted
    ]
    if not clashes:
        return 0
    if not replace:
        clashes.sort(key=lambda clash: clash[0].row.line)
        lines = "; ".join(
            f"line {item.row.line}: {item.animal.identifier} {item.site.value} on day "
            f"{(item.on - study.day0).days} ({item.view.value}) already has "
            f"{m.total_flux_ps:.4g} p/s from {click or roi.label}"
            for item, m, roi, click in clashes[:10]
        )
        more = f" and {len(clashes) - 10} more" if len(clashes) > 10 else ""
        raise Conflict(
            f"{filename}: {len(clashes)} row(s) give a value for an animal, day, site and view "
            f"that already has one — {lines}{more}. Nothing was imported. To supersede the "
            "stored values (they stay as history), import again with replace=true; otherwise "
            "remove those rows."
        )
    for _, measurement, roi, _ in clashes:
        measurement.is_current = False
        roi.is_current = False
    session.flush()
    return len(clashes)


def _parse(
    staged: StagedFile, *, filename: str, file_format: ImportFormat, animals: set[str]
) -> list[TidyRow]:
    if file_format == "tidy":
        return read_tidy_csv(_decode(staged.path.read_bytes(), filename), filename=filename)
    try:
        rows = read_living_image_measurements(staged.path, name=filename)
    except ImagingError as exc:
        raise Unprocessable(str(exc)) from exc
    return to_tidy_rows(rows, filename=filename, known_animals=animals)


def _store(
    session: Session,
    principal: Principal,
    study: Study,
    resolved: list[_Resolved],
    staged: StagedFile,
    filename: str,
    file_format: ImportFormat,
    *,
    superseded: int,
) -> ImportResult:
    now = utc_now()
    sessions: dict[date, uuid.UUID] = {}
    acquisitions: dict[tuple[date, View], uuid.UUID] = {}
    for item in resolved:
        if item.on not in sessions:
            sessions[item.on] = uuid.uuid4()
        acquisitions.setdefault((item.on, item.view), uuid.uuid4())
    session.execute(
        insert(ImagingSession),
        [
            {
                "id": sid,
                "study_id": study.id,
                "acquired_at": datetime.combine(on, time(12), tzinfo=UTC),
                "acquired_on": on,
                "received_at": now,
                "notes": f"Imported from {filename}; the time of day is not known.",
                "created_at": now,
                "updated_at": now,
            }
            for on, sid in sessions.items()
        ],
    )
    session.execute(
        insert(Acquisition),
        [
            {
                "id": aid,
                "session_id": sessions[on],
                "view": view,
                "units": "p/s",
                "camera_metadata": {
                    "source": IMPORT_ROLE,
                    "format": file_format,
                    "filename": filename,
                },
                "created_at": now,
            }
            for (on, view), aid in acquisitions.items()
        ],
    )
    session.execute(
        insert(AcquisitionFile),
        [
            {
                "acquisition_id": aid,
                "role": IMPORT_ROLE,
                "blob_sha256": staged.sha256,
                "filename": filename[:255],
            }
            for aid in acquisitions.values()
        ],
    )
    roi_rows, measurement_rows = [], []
    for item in resolved:
        roi_id = uuid.uuid4()
        roi_rows.append(
            {
                "id": roi_id,
                "acquisition_id": acquisitions[(item.on, item.view)],
                "animal_id": item.animal.id,
                "site": item.site,
                "label": f"{filename}:{item.row.line}",
                "shape": "none",
                "geometry": {},
                "source": RoiSource.imported,
                "is_current": True,
                "created_by_key_id": principal.key_id,
                "created_at": now,
            }
        )
        measurement_rows.append(
            {
                "id": uuid.uuid4(),
                "roi_id": roi_id,
                "total_flux_ps": item.row.total_flux_ps,
                "radiance_mean": item.row.radiance_mean,
                "saturated_pixels": 0,
                "units": "p/s",
                "flags": list(item.row.flags),
                "method": f"imported:{file_format}",
                "parameters": {
                    "filename": filename,
                    "line": item.row.line,
                    "sha256": staged.sha256,
                },
                "imaging_version": "none",
                "is_current": True,
                "created_at": now,
            }
        )
    session.execute(insert(Roi), roi_rows)
    session.execute(insert(Measurement), measurement_rows)
    days = sorted({(on - study.day0).days for on in sessions})
    audit.record(
        session,
        principal,
        action="import",
        object_type="study",
        object_id=study.id,
        changes={
            "filename": filename,
            "sha256": staged.sha256,
            "rows": len(resolved),
            "superseded": superseded,
        },
    )
    return ImportResult(
        filename=filename,
        sha256=staged.sha256,
        format=file_format,
        already_imported=False,
        rows=len(resolved),
        animals=len({i.animal.id for i in resolved}),
        days=days,
        sessions_created=len(sessions),
        measurements_created=len(measurement_rows),
        unassigned_sites=sum(item.site == Site.unassigned for item in resolved),
        measurements_superseded=superseded,
    )
