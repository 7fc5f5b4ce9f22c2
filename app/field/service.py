"""Put the right animals at the right positions of an acquisition's field.

Every current ROI of the mouse at position *p* becomes a new version belonging to the animal
now named at *p* (same geometry, measured again from the raw file); the old versions and
their measurements stay as history, and the change is audited with its reason."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import audit
from app.acquisitions import repository
from app.acquisitions.images import measure_stored
from app.acquisitions.schemas import AcquisitionRead
from app.acquisitions.service import acquisition_read, get_acquisition
from app.auth import Principal
from app.config import Settings
from app.errors import Unprocessable
from app.field.schemas import FieldCorrection
from app.models import AcquisitionAnimal, Animal, ImagingSession, Roi, RoiSource
from app.storage import BlobStore
from app.studies.service import lock_study


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
    principal.require_write()
    acquisition = get_acquisition(session, principal, study_id, session_id, acquisition_id)
    lock_study(session, study_id)
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
    at_position = {animal_id: position for position, animal_id, _ in old_field}
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
    session.flush()  # the old versions stop counting before the new ones exist
    session.add_all(versions)
    session.flush()
    if versions:
        session.add_all(measure_stored(session, store, settings, acquisition, versions))
        session.flush()
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
