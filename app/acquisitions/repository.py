"""Queries over acquisitions that several features share (ingest, ROI edits, requantification,
the read side, measurement imports).

An acquisition belongs to a study through its imaging session: ``join_session`` is the one
place that join is written, and ``of_study`` the one statement that scopes acquisitions to a
study (polar's ``get_readable_statement`` pattern). The caller has already checked that the
study is in its lab (``get_study``/``get_imaging_session``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

import imaging
from app.models import (
    Acquisition,
    AcquisitionAnimal,
    AcquisitionFile,
    Animal,
    Blob,
    ImagingSession,
    Roi,
)

# The role of an acquisition's raw file: an IVIS click (zip) or a TIFF are images that can be
# measured again; an imported table of measurements is not.
CLICK_ROLE = "ivis_zip"
TIFF_ROLE = "tiff"
IMAGE_ROLES = (CLICK_ROLE, TIFF_ROLE)
IMPORT_ROLE = "measurement_import"

_Query = TypeVar("_Query", bound=Select)  # any columns: Select[Any] would mean one


def join_session(query: _Query) -> _Query:
    """``query`` (which selects from Acquisition) joined to the acquisition's imaging session."""
    return query.join(ImagingSession, ImagingSession.id == Acquisition.session_id)


def of_study(study_id: uuid.UUID) -> Select[Any]:
    """Every acquisition of a study."""
    return join_session(select(Acquisition)).where(ImagingSession.study_id == study_id)


def series_settings(
    session: Session, study_id: uuid.UUID
) -> list[tuple[uuid.UUID, imaging.AcquisitionSettings]]:
    """Each acquisition of a study, oldest first, with its luminescent settings (what
    ``app.acquisitions.images.settings_of`` gives for its row): the filters are read inside
    the database from ``camera_metadata``'s ``settings``, so the rest of that JSON (a click's
    labels and calibration steps, a few kB each) is not loaded for every acquisition of the
    study on every upload."""
    recorded = Acquisition.camera_metadata["settings"]
    query = join_session(
        select(
            Acquisition.id,
            Acquisition.exposure_s,
            Acquisition.binning,
            Acquisition.f_number,
            Acquisition.fov_cm,
            recorded["emission_filter"].as_string(),
            recorded["excitation_filter"].as_string(),
        )
    ).where(ImagingSession.study_id == study_id)
    return [
        (
            id_,
            imaging.AcquisitionSettings(
                exposure_s=exposure_s,
                binning=binning,
                f_number=f_number,
                fov_cm=fov_cm,
                emission_filter=emission,
                excitation_filter=excitation,
            ),
        )
        for id_, exposure_s, binning, f_number, fov_cm, emission, excitation in session.execute(
            query.order_by(Acquisition.created_at)
        )
    ]


def by_file(
    session: Session, study_id: uuid.UUID, sha256: str, *, roles: Sequence[str] = IMAGE_ROLES
) -> Acquisition | None:
    """The acquisition of this study whose raw file (in one of ``roles``) has this SHA-256."""
    return session.scalar(
        of_study(study_id)
        .join(AcquisitionFile, AcquisitionFile.acquisition_id == Acquisition.id)
        .where(AcquisitionFile.blob_sha256 == sha256, AcquisitionFile.role.in_(roles))
        .limit(1)
    )


def by_click_number(session: Session, study_id: uuid.UUID, click_number: str) -> Acquisition | None:
    return session.scalar(
        of_study(study_id).where(Acquisition.click_number == click_number).limit(1)
    )


def with_image(
    session: Session, study_id: uuid.UUID, *, session_id: uuid.UUID | None = None
) -> list[Acquisition]:
    """The study's acquisitions that have an image to measure (not imported tables)."""
    query = (
        of_study(study_id)
        .join(AcquisitionFile, AcquisitionFile.acquisition_id == Acquisition.id)
        .where(AcquisitionFile.role.in_(IMAGE_ROLES))
        .order_by(Acquisition.created_at)
    )
    if session_id is not None:
        query = query.where(ImagingSession.id == session_id)
    return list(session.scalars(query))


def in_session(
    session: Session, session_id: uuid.UUID, *, acquisition_id: uuid.UUID | None = None
) -> list[Acquisition]:
    """An imaging session's acquisitions in upload order (or the one with this id)."""
    query = in_session_query(session_id)
    if acquisition_id is not None:
        query = query.where(Acquisition.id == acquisition_id)
    return list(session.scalars(query))


def in_session_query(session_id: uuid.UUID) -> Select[Any]:
    """An imaging session's acquisitions in upload order (id breaks ties: pages are stable)."""
    return (
        select(Acquisition)
        .where(Acquisition.session_id == session_id)
        .order_by(Acquisition.created_at, Acquisition.id)
    )


def image_file(session: Session, acquisition_id: uuid.UUID) -> AcquisitionFile | None:
    """The acquisition's raw image file (None for an imported table)."""
    return image_files(session, [acquisition_id]).get(acquisition_id)


def image_files(
    session: Session, acquisition_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, AcquisitionFile]:
    """The raw image file of each of these acquisitions that has one, in one query."""
    if not acquisition_ids:
        return {}
    files = session.scalars(
        select(AcquisitionFile).where(
            AcquisitionFile.acquisition_id.in_(acquisition_ids),
            AcquisitionFile.role.in_(IMAGE_ROLES),
        )
    )
    return {f.acquisition_id: f for f in files}


def original_file(
    session: Session, acquisition_id: uuid.UUID
) -> tuple[AcquisitionFile, Blob] | None:
    """The file the acquisition was made from, and its blob."""
    row = session.execute(
        select(AcquisitionFile, Blob)
        .join(Blob, Blob.sha256 == AcquisitionFile.blob_sha256)
        .where(AcquisitionFile.acquisition_id == acquisition_id)
        .order_by(AcquisitionFile.role)
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def field(session: Session, acquisition_id: uuid.UUID) -> list[tuple[int, uuid.UUID, str]]:
    """The animals in the field of view, left to right: (position, animal id, identifier)."""
    return fields(session, [acquisition_id])[acquisition_id]


def fields(
    session: Session, acquisition_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[int, uuid.UUID, str]]]:
    """:func:`field` of each of these acquisitions, in one query."""
    out: dict[uuid.UUID, list[tuple[int, uuid.UUID, str]]] = {i: [] for i in acquisition_ids}
    if not acquisition_ids:
        return out
    rows = session.execute(
        select(
            AcquisitionAnimal.acquisition_id,
            AcquisitionAnimal.position,
            Animal.id,
            Animal.identifier,
        )
        .join(Animal, Animal.id == AcquisitionAnimal.animal_id)
        .where(AcquisitionAnimal.acquisition_id.in_(acquisition_ids))
        .order_by(AcquisitionAnimal.acquisition_id, AcquisitionAnimal.position)
    )
    for acquisition_id, position, animal_id, identifier in rows:
        out[acquisition_id].append((position, animal_id, identifier))
    return out


def current_rois(session: Session, acquisition_id: uuid.UUID) -> list[Roi]:
    """The ROIs that count now (not superseded or retired), in drawing order."""
    return list(
        session.scalars(
            select(Roi)
            .where(Roi.acquisition_id == acquisition_id, Roi.is_current.is_(True))
            .order_by(Roi.created_at, Roi.label)
        )
    )
