"""Put the right animals at the right positions of an acquisition's field, and place the
study's site template on one mouse.

Every current ROI of the mouse at position *p* becomes a new version belonging to the animal
now named at *p* (same geometry, measured again from the raw file); the old versions and
their measurements stay as history, and the change is audited with its reason."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import imaging
from app import audit
from app.acquisitions import repository
from app.acquisitions.images import load_calibrated, measure_stored
from app.acquisitions.schemas import AcquisitionRead
from app.acquisitions.service import acquisition_read, editable_acquisition
from app.auth import Principal
from app.config import Settings
from app.errors import Unprocessable
from app.field.schemas import FieldCorrection, TemplateApplication
from app.models import (
    Acquisition,
    AcquisitionAnimal,
    Animal,
    ImagingSession,
    Roi,
    RoiSource,
    Site,
    View,
)
from app.rois.geometry import UnionRoi, to_json
from app.storage import BlobStore
from app.studies.roi_template import study_template
from app.studies.service import get_study


def correct_field(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    data: FieldCorrection,
) -> AcquisitionRead:
    """Correct the animals of the field left to right; their ROIs follow their positions."""
    acquisition = editable_acquisition(session, principal, study_id, session_id, acquisition_id)
    found = {
        a.identifier: a
        for a in session.scalars(
            select(Animal).where(Animal.study_id == study_id, Animal.identifier.in_(data.animals))
        )
    }
    unknown = [i for i in data.animals if i not in found]
    if unknown:
        raise Unprocessable(
            f"Not animals of this study: {', '.join(unknown)}. Add them first (POST …/animals)."
        )
    imaged_on = session.scalar(
        select(ImagingSession.acquired_on).where(ImagingSession.id == acquisition.session_id)
    )
    for animal in found.values():
        if animal.end_date is not None and imaged_on is not None and imaged_on > animal.end_date:
            raise Unprocessable(
                f"Animal {animal.identifier} ended on {animal.end_date} but this image was "
                f"taken on {imaged_on}."
            )
    old_field = repository.field(session, acquisition.id)
    old_ids = [ident for _, _, ident in old_field]
    if old_ids == data.animals:
        return acquisition_read(session, acquisition, already_stored=True)
    # keyed like Roi.animal_id (optional), so ROIs of no animal simply find no position
    at_position: dict[uuid.UUID | None, int] = {
        animal_id: position for position, animal_id, _ in old_field
    }
    new_animal = {p: found[ident] for p, ident in enumerate(data.animals)}

    rois = [r for r in repository.current_rois(session, acquisition.id) if r.animal_id]
    moving = [r for r in rois if new_animal.get(at_position.get(r.animal_id, -1)) is not None]
    moving = [r for r in moving if new_animal[at_position[r.animal_id]].id != r.animal_id]
    if any(r.source == RoiSource.imported for r in moving):
        raise Unprocessable(
            "Some ROIs of this image came from an imported table and cannot be re-measured; "
            "import a corrected file instead."
        )
    # ROIs of a mouse whose position is no longer in the field keep their animal (retire them
    # in the ROI editor if they should not count)
    session.execute(
        delete(AcquisitionAnimal).where(AcquisitionAnimal.acquisition_id == acquisition.id)
    )
    session.flush()
    session.add_all(
        AcquisitionAnimal(acquisition_id=acquisition.id, animal_id=a.id, position=p)
        for p, a in new_animal.items()
    )
    versions: list[Roi] = []
    for old in moving:
        before = next(ident for _, i, ident in old_field if i == old.animal_id)
        after = new_animal[at_position[old.animal_id]]
        label = old.label
        if label is not None and label.startswith(before):
            label = after.identifier + label[len(before) :]
        old.is_current = False
        versions.append(
            Roi(
                acquisition_id=acquisition.id,
                animal_id=after.id,
                site=old.site,
                label=label,
                shape=old.shape,
                geometry=old.geometry,
                source=old.source,
                supersedes_id=old.id,
                created_by_key_id=principal.key_id,
                change_reason=data.reason,
            )
        )
    _store_and_measure(session, store, settings, acquisition, versions)
    audit.record(
        session,
        principal,
        action="update",
        object_type="acquisition",
        object_id=acquisition.id,
        changes={
            "animals": [old_ids, data.animals],
            "rois": {str(v.supersedes_id): str(v.id) for v in versions},
        },
        reason=data.reason,
    )
    return acquisition_read(session, acquisition, already_stored=True)


def apply_template(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    session_id: uuid.UUID,
    acquisition_id: uuid.UUID,
    data: TemplateApplication,
) -> AcquisitionRead:
    """Place the study's site template on one mouse, found again on the photograph: each site
    replaces the mouse's current ROI of that site (a new version) or is added; measured."""
    acquisition = editable_acquisition(session, principal, study_id, session_id, acquisition_id)
    field = repository.field(session, acquisition.id)
    at = next((f for f in field if f[2] == data.animal), None)
    if at is None:
        raise Unprocessable(f"Animal {data.animal} is not in this image's field of view.")
    position, animal_id, _ = at
    click, _ = load_calibrated(session, store, settings, acquisition)
    if click is None or click.photograph is None:
        raise Unprocessable("This acquisition has no photograph to find the mouse on.")
    try:
        bodies = imaging.find_animals(
            click.photograph.data,
            binning=click.photograph.binning,
            animal_numbers=[ident for _, _, ident in field],
            exact=True,
        )
    except imaging.ImagingError as exc:
        raise Unprocessable(f"The mice cannot be told apart on the photograph: {exc}.") from exc
    template = study_template(get_study(session, principal, study_id))
    shapes = [
        imaging.SiteTemplate(
            name=t.name, shape=t.shape, u=t.u, v=t.v, size_u=t.size_u, size_v=t.size_v
        )
        for t in template
    ]
    site_of = {t.name: t.site for t in template}
    side: Literal["dorsal", "ventral"] = "ventral" if acquisition.view == View.ventral else "dorsal"
    by_site: dict[Site, list[imaging.Roi]] = {}
    for roi in imaging.site_rois(bodies[position], template=shapes, view=side):
        name = roi.label.removeprefix(f"{data.animal} ").strip()
        by_site.setdefault(Site(site_of[name]), []).append(roi)
    current: dict[Site, Roi] = {
        r.site: r
        for r in repository.current_rois(session, acquisition.id)
        if r.animal_id == animal_id and r.site != Site.custom
    }
    versions: list[Roi] = []
    for site, parts in by_site.items():
        geometry = to_json(parts[0] if len(parts) == 1 else UnionRoi(parts=tuple(parts)))
        old = current.get(site)
        if old is not None:
            old.is_current = False
        versions.append(
            Roi(
                acquisition_id=acquisition.id,
                animal_id=animal_id,
                site=site,
                label=f"{data.animal} {site.value}",
                shape=geometry["type"],
                geometry=geometry,
                source=RoiSource.client,
                supersedes_id=old.id if old is not None else None,
                created_by_key_id=principal.key_id,
                change_reason=data.reason,
            )
        )
    _store_and_measure(session, store, settings, acquisition, versions)
    audit.record(
        session,
        principal,
        action="apply_template",
        object_type="acquisition",
        object_id=acquisition.id,
        changes={"animal": data.animal, "rois": [str(v.id) for v in versions]},
        reason=data.reason,
    )
    return acquisition_read(session, acquisition, already_stored=True)


def _store_and_measure(
    session: Session,
    store: BlobStore,
    settings: Settings,
    acquisition: Acquisition,
    versions: list[Roi],
) -> None:
    """Store new ROI versions (after the versions they supersede stop counting: one current
    ROI per animal and site) and measure them from the raw file."""
    session.flush()
    session.add_all(versions)
    session.flush()
    if versions:
        session.add_all(measure_stored(session, store, settings, acquisition, versions))
        session.flush()
