"""Measurements brought in from CSV exports, and per-animal series read back."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import BinaryIO

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app import audit, idempotency
from app.acquisitions import repository
from app.acquisitions.repository import IMPORT_ROLE
from app.auth import Principal
from app.blobs import keep_blob
from app.csv_cells import safe_cell
from app.errors import Unprocessable
from app.measurements import repository as measurement_queries
from app.measurements.living_image import to_tidy_rows
from app.measurements.schemas import (
    ImportFormat,
    ImportResult,
    MeasurementRead,
    Metric,
    Series,
    SeriesPoint,
)
from app.measurements.tidy_csv import TidyRow, read_tidy_csv
from app.models import (
    Acquisition,
    AcquisitionFile,
    Animal,
    Arm,
    ImagingSession,
    Measurement,
    Roi,
    RoiSource,
    Site,
    Study,
    View,
    utc_now,
)
from app.pagination import PageParams
from app.storage import BlobStore, StagedFile
from app.studies.service import get_study, lock_study
from app.uploads import staged_upload
from imaging import ImagingError, read_living_image_measurements

MAX_IMPORT_BYTES = 64 * 1024**2
UNITS = {"total_flux_ps": "p/s", "radiance_mean": "p/s/cm²/sr"}


def _decode(content: bytes, filename: str) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Unprocessable(f"{filename} is not text (UTF-8 or Windows-1252); export it as CSV.")


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
    upload: BinaryIO,
    *,
    filename: str,
    file_format: ImportFormat,
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
            idempotency.fingerprint("import", study.id, staged.sha256, file_format),
            ImportResult,
            lambda: _import_staged(session, principal, store, study, staged, filename, file_format),
        )


def _import_staged(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study: Study,
    staged: StagedFile,
    filename: str,
    file_format: ImportFormat,
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
        )
    keep_blob(session, store, staged, media_type="text/csv")
    return _store(session, principal, study, resolved, staged, filename, file_format)


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
        changes={"filename": filename, "sha256": staged.sha256, "rows": len(resolved)},
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
    )


def load_points(
    session: Session,
    study: Study,
    *,
    site: Site,
    metric: Metric,
    arm_ids: Sequence[uuid.UUID] | None = None,
    measurement_ids: Sequence[uuid.UUID] | None = None,
) -> list[SeriesPoint]:
    """Points of one site and metric in day order: the current measurements, or exactly the
    given ones (superseded measurements stay in the database, so old analyses can be redrawn)."""
    query = (
        measurement_queries.of_study(
            study.id,
            Measurement.id,
            Animal.id,
            Animal.identifier,
            Arm.id,
            Arm.name,
            ImagingSession.acquired_on,
            getattr(Measurement, metric),
            Measurement.flags,
        )
        .join(Animal, Animal.id == Roi.animal_id)
        .join(Arm, Arm.id == Animal.arm_id)
        .where(Roi.site == site)
        .order_by(ImagingSession.acquired_on, Arm.name, Animal.identifier)
    )
    if measurement_ids is not None:
        query = query.where(Measurement.id.in_(measurement_ids))
    else:
        query = measurement_queries.current(query).where(Animal.archived_at.is_(None))
    if arm_ids:
        query = query.where(Arm.id.in_(arm_ids))
    return [
        SeriesPoint(
            measurement_id=mid,
            animal_id=aid,
            animal=ident,
            arm_id=arm_id,
            arm=arm_name,
            day=(on - study.day0).days,
            site=site.value,
            value=val,
            flags=list(flags or []),
        )
        for mid, aid, ident, arm_id, arm_name, on, val, flags in session.execute(query)
    ]


def series(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    *,
    site: Site,
    metric: Metric,
    arm_ids: list[uuid.UUID] | None = None,
) -> Series:
    """Current measurements of one site and metric, one point per animal image, in day order."""
    study = get_study(session, principal, study_id)
    points = load_points(session, study, site=site, metric=metric, arm_ids=arm_ids)
    return Series(
        study_id=study.id, site=site.value, metric=metric, unit=UNITS[metric], points=points
    )


def series_csv(series: Series) -> str:
    """The series as a tidy CSV, one row per point, the unit in the value column's name."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "animal",
            "arm",
            "day",
            "site",
            f"{series.metric} [{series.unit}]",
            "flags",
            "measurement_id",
        ]
    )
    for p in series.points:
        writer.writerow(
            [
                safe_cell(p.animal),
                safe_cell(p.arm),
                p.day,
                p.site,
                "" if p.value is None else repr(p.value),
                safe_cell(";".join(p.flags)),
                p.measurement_id,
            ]
        )
    return buffer.getvalue()


LIVING_IMAGE_COLUMNS = (
    "Image Number",
    "ROI",
    "Total Flux [p/s]",
    "Avg Radiance [p/s/cm²/sr]",
    "Stdev Radiance",
    "Min Radiance",
    "Max Radiance",
    "Animal Number",
    "Arm",
    "Site",
    "Day",
    "View",
    "Flags",
    "Method",
    "Measurement ID",
)


def list_measurements(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    params: PageParams | None,
    *,
    arm_id: uuid.UUID | None = None,
    animal_id: uuid.UUID | None = None,
    site: Site | None = None,
    day_from: int | None = None,
    day_to: int | None = None,
    flag: str | None = None,
    include_history: bool = False,
) -> tuple[list[MeasurementRead], int]:
    """Measurements of a study, filtered; superseded ones only with ``include_history``."""
    study = get_study(session, principal, study_id)
    query = (
        measurement_queries.readable()
        .where(ImagingSession.study_id == study.id)
        .order_by(ImagingSession.acquired_on, Animal.identifier, Roi.site, Measurement.created_at)
    )
    if not include_history:
        query = measurement_queries.current(query)
    if arm_id is not None:
        query = query.where(Animal.arm_id == arm_id)
    if animal_id is not None:
        query = query.where(Roi.animal_id == animal_id)
    if site is not None:
        query = query.where(Roi.site == site)
    if day_from is not None:
        query = query.where(ImagingSession.acquired_on >= study.day0 + timedelta(days=day_from))
    if day_to is not None:
        query = query.where(ImagingSession.acquired_on <= study.day0 + timedelta(days=day_to))
    if flag is not None:  # flags are a JSON list: filtered portably in Python
        rows = [r for r in session.execute(query).all() if flag in (r[0].flags or [])]
        total = len(rows)
        if params is not None:
            rows = rows[params.offset : params.offset + params.limit]
    elif params is not None:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = session.execute(query.limit(params.limit).offset(params.offset)).all()
    else:
        rows = session.execute(query).all()
        total = len(rows)
    return [measurement_queries.to_read(r) for r in rows], total


def measurements_csv(rows: Sequence[MeasurementRead]) -> str:
    """Living Image's ROI-measurement export columns, then osteolux's own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(LIVING_IMAGE_COLUMNS)

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.6e}"

    for r in rows:
        writer.writerow(
            [
                safe_cell(r.click_number),
                safe_cell(r.label),
                number(r.total_flux_ps),
                number(r.radiance_mean),
                number(r.radiance_std),
                number(r.radiance_min),
                number(r.radiance_max),
                safe_cell(r.animal),
                safe_cell(r.arm),
                r.site,
                r.day,
                r.view,
                safe_cell(";".join(r.flags)),
                r.method,
                r.measurement_id,
            ]
        )
    return buffer.getvalue()
