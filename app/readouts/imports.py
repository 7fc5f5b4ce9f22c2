"""Readout values brought in from a tidy CSV (animal, readout, value[, site, date, unit, note]):
all or nothing, every problem named by its line, the file kept unchanged as a raw blob."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.auth import Principal
from app.blobs import keep_blob
from app.db import REQUEST_REASON
from app.errors import Conflict, Unprocessable
from app.measurements.tidy_csv import number, read_table
from app.models import Animal, Readout, ReadoutValue, Study
from app.readouts.schemas import ReadoutImportResult
from app.readouts.service import value_problem
from app.storage import BlobStore, StagedFile
from app.studies.service import get_study, lock_study
from app.uploads import Readable, staged_upload
from imaging import ImagingError
from imaging.clickinfo import decode_text

MAX_IMPORT_BYTES = 16 * 1024**2
MAX_ROWS = 100_000
MAX_LISTED = 10

# Accepted spellings of each column, after lower-casing and removing units in brackets.
COLUMN_ALIASES = {
    "animal": {
        "animal",
        "animal_id",
        "animal id",
        "ear tag",
        "ear_tag",
        "eartag",
        "mouse",
        "mouse_id",
        "identifier",
        "id",
    },
    "readout": {"readout", "endpoint", "readout name", "name"},
    "value": {"value", "result"},
    "site": {"site", "readout site", "location"},
    "measured_on": {"measured_on", "date", "measured on"},
    "unit": {"unit", "units"},
    "note": {"note", "notes", "comment"},
}


@dataclass(frozen=True)
class _Row:
    line: int
    animal: str
    readout: str
    site: str | None
    value: float
    measured_on: date | None
    unit: str | None
    note: str | None


def _listed(problems: list[str]) -> str:
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return "; ".join(problems[:MAX_LISTED]) + more


def read_readout_csv(content: str, *, filename: str) -> list[_Row]:
    """Parse a comma-, semicolon- or tab-separated table with a header row."""
    table = read_table(content, filename=filename, aliases=COLUMN_ALIASES)
    missing = [c for c in ("animal", "readout", "value") if c not in table.columns]
    if missing:
        raise Unprocessable(
            f"{filename}: missing column(s) {', '.join(missing)}. Found: "
            f"{', '.join(table.header)}. Expected a header like: "
            "animal,readout,value[,site,date,unit,note]"
        )
    cell, decimal_comma = table.cell, table.decimal_comma
    rows: list[_Row] = []
    for line, row in table.rows(limit=MAX_ROWS):
        for key in ("animal", "readout", "value"):
            if not cell(row, key):
                raise Unprocessable(f"{filename}, line {line}: the {key} column is empty.")
        value = number(cell(row, "value"), line=line, column="value", decimal_comma=decimal_comma)
        if value is None:  # unreachable: the cell is not empty; for the type checker
            raise Unprocessable(f"{filename}, line {line}: the value column is empty.")
        measured_on = None
        if text := cell(row, "measured_on"):
            try:
                measured_on = date.fromisoformat(text)
            except ValueError:
                raise Unprocessable(
                    f"{filename}, line {line}: date {text!r} is not YYYY-MM-DD."
                ) from None
        site = cell(row, "site").lower().replace(" ", "_").replace("-", "_") or None
        rows.append(
            _Row(
                line=line,
                animal=cell(row, "animal"),
                readout=cell(row, "readout"),
                site=site,
                value=value,
                measured_on=measured_on,
                unit=cell(row, "unit") or None,
                note=cell(row, "note") or None,
            )
        )
    if not rows:
        raise Unprocessable(f"{filename} has a header but no data rows.")
    return rows


@dataclass(frozen=True)
class _Resolved:
    row: _Row
    readout: Readout
    animal: Animal


def _readout_for(row: _Row, readouts: list[Readout]) -> Readout | str:
    """The row's readout, or why it has none."""
    named = [r for r in readouts if r.name.casefold() == row.readout.casefold()]
    if not named:
        return f"readout {row.readout!r} is not defined in this study"
    if row.site is not None:
        at_site = [r for r in named if r.site == row.site]
        if not at_site:
            sites = ", ".join(r.site or "none" for r in named)
            return f"readout {row.readout!r} has no site {row.site!r} (its sites: {sites})"
        return at_site[0]
    if len(named) > 1:
        sites = ", ".join(r.site or "none" for r in named)
        return f"readout {row.readout!r} is defined at several sites ({sites}); give the site"
    return named[0]


def _resolve(session: Session, study: Study, rows: list[_Row], filename: str) -> list[_Resolved]:
    animals = {
        a.identifier: a for a in session.scalars(select(Animal).where(Animal.study_id == study.id))
    }
    readouts = list(
        session.scalars(
            select(Readout).where(Readout.study_id == study.id, Readout.archived_at.is_(None))
        )
    )
    problems: list[str] = []
    resolved: list[_Resolved] = []
    seen: dict[tuple[uuid.UUID, str], int] = {}
    for row in rows:
        animal = animals.get(row.animal)
        readout = _readout_for(row, readouts)
        if animal is None:
            problems.append(f"line {row.line}: animal {row.animal!r} is not in this study")
        if isinstance(readout, str):
            problems.append(f"line {row.line}: {readout}")
            continue
        if (problem := value_problem(readout.kind, row.value)) is not None:
            problems.append(f"line {row.line}: {problem}")
        if row.unit is not None and row.unit != (readout.unit or ""):
            problems.append(
                f"line {row.line}: unit {row.unit!r}, but '{readout.name}' is recorded in "
                f"{readout.unit or 'no unit'}; convert the value"
            )
        if row.measured_on is not None and row.measured_on < study.day0:
            problems.append(
                f"line {row.line}: date {row.measured_on} is before day 0 ({study.day0})"
            )
        key = (readout.id, row.animal)
        if key in seen:
            problems.append(
                f"lines {seen[key]} and {row.line} both give '{readout.name}' of animal "
                f"{row.animal}; keep one"
            )
        seen[key] = row.line
        if animal is not None:
            resolved.append(_Resolved(row, readout, animal))
    if problems:
        defined = ", ".join(sorted({r.name for r in readouts})) or "none yet"
        raise Unprocessable(
            f"{filename}: {len(problems)} problem(s), nothing was imported — "
            f"{_listed(problems)}. Animals must be in the study "
            f"(POST /studies/{study.id}/animals) and readouts defined "
            f"(POST /studies/{study.id}/readouts; defined: {defined})."
        )
    return resolved


def import_readout_values(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study_id: uuid.UUID,
    upload: Readable,
    *,
    filename: str,
    replace: bool = False,
) -> ReadoutImportResult:
    """Import readout values from a tidy CSV; the file itself is kept as raw data."""
    principal.require_write()
    with staged_upload(store, upload, max_bytes=MAX_IMPORT_BYTES, filename=filename) as staged:
        study = get_study(session, principal, study_id)
        if staged.size_bytes == 0:
            raise Unprocessable(f"{filename} is empty.")
        try:
            text = decode_text(staged.path.read_bytes(), source=filename)
        except ImagingError as exc:
            raise Unprocessable(f"{exc}; export it as CSV.") from exc
        resolved = _resolve(session, study, read_readout_csv(text, filename=filename), filename)
        lock_study(session, study.id)
        return _store(session, principal, store, study, staged, resolved, filename, replace)


def _store(
    session: Session,
    principal: Principal,
    store: BlobStore,
    study: Study,
    staged: StagedFile,
    resolved: list[_Resolved],
    filename: str,
    replace: bool,
) -> ReadoutImportResult:
    stored = {
        (v.readout_id, v.animal_id): v
        for v in session.scalars(
            select(ReadoutValue).where(
                ReadoutValue.readout_id.in_({r.readout.id for r in resolved})
            )
        )
    }
    new, changed, unchanged = [], [], 0
    for item in resolved:
        old = stored.get((item.readout.id, item.animal.id))
        if old is None:
            new.append(item)
        elif old.value == item.row.value and item.row.measured_on in (None, old.measured_on):
            unchanged += 1
        else:
            changed.append((item, old))
    if changed and not replace:
        lines = [
            f"line {item.row.line}: {item.animal.identifier} already has {old.value:g} for "
            f"'{item.readout.name}' (file: {item.row.value:g})"
            for item, old in changed
        ]
        raise Conflict(
            f"{filename}: {len(changed)} row(s) give a different value for an animal and "
            f"readout that already has one — {_listed(lines)}. Nothing was imported. To "
            "correct the stored values (the audit trail keeps the old ones), import again "
            "with replace=true; otherwise remove those rows."
        )
    keep_blob(session, store, staged, media_type="text/csv")
    reason = session.info.get(REQUEST_REASON) or f"replaced by {filename} (replace=true)"
    for item, old in changed:
        changes: dict[str, Any] = {"value": item.row.value}
        if item.row.measured_on is not None:
            changes["measured_on"] = item.row.measured_on
        old.updated_by_key_id = principal.key_id
        audit.apply_changes(
            session, principal, old, changes, object_type="readout_value", reason=reason
        )
    values = [
        ReadoutValue(
            readout_id=item.readout.id,
            animal_id=item.animal.id,
            value=item.row.value,
            measured_on=item.row.measured_on,
            note=item.row.note,
            created_by_key_id=principal.key_id,
        )
        for item in new
    ]
    session.add_all(values)
    session.flush()
    audit.record(
        session,
        principal,
        action="import",
        object_type="study",
        object_id=study.id,
        changes={
            "readout_values": filename,
            "sha256": staged.sha256,
            "created": len(values),
            "replaced": len(changed),
            "unchanged": unchanged,
        },
    )
    return ReadoutImportResult(
        filename=filename,
        sha256=staged.sha256,
        rows=len(resolved),
        created=len(values),
        replaced=len(changed),
        unchanged=unchanged,
        readouts=sorted({item.readout.name for item in resolved}),
    )
