"""The image-sequence figure (Living Image's layout): one animal, or one arm, across the
study's imaging sessions, every panel on one colour scale with one colour bar — the figure a
time course goes into a paper with."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

import imaging
from app.acquisitions import repository
from app.acquisitions.images import image_roi, load_calibrated, quantify_rois
from app.auth import Principal
from app.config import Settings
from app.errors import NotFound, Unprocessable
from app.models import (
    Acquisition,
    AcquisitionAnimal,
    Animal,
    Arm,
    ImagingSession,
    Site,
    View,
)
from app.storage import BlobStore
from app.studies.service import get_study

#: Panels in one figure at most (each is a click read and calibrated again).
MAX_PANELS = 48


def sequence_figure(
    session: Session,
    principal: Principal,
    store: BlobStore,
    settings: Settings,
    study_id: uuid.UUID,
    *,
    animal: str | None,
    arm_id: uuid.UUID | None,
    view: View,
    scale: Literal["log", "linear"] = "log",
    vmin: float | None = None,
    vmax: float | None = None,
    dpi: int = 100,
    format: Literal["png", "svg"] = "png",
) -> bytes:
    """Every acquisition of ``view`` showing the animal (or any animal of the arm), one panel
    each in order of day, on one colour scale (the caller's, else one range over all panels);
    the ROIs of the animal (or arm) labelled with ear tag, site and total flux."""
    study = get_study(session, principal, study_id)
    if (animal is None) == (arm_id is None):
        raise Unprocessable("Name one animal (animal=<ear tag>) or one arm (arm_id=<id>).")
    if (vmin is None) != (vmax is None):
        raise Unprocessable("Give vmin and vmax together (a colour range), or neither.")
    if (
        vmin is not None
        and vmax is not None
        and not (vmin < vmax and (scale == "linear" or vmin > 0))
    ):
        raise Unprocessable(
            f"Colour range {vmin:g}–{vmax:g}: vmin must be below vmax, and above 0 on a log scale."
        )
    who = select(Animal).where(Animal.study_id == study.id)
    if animal is not None:
        who = who.where(Animal.identifier == animal)
        what = f"animal {animal}"
    else:
        arm = session.scalar(select(Arm).where(Arm.id == arm_id, Arm.study_id == study.id))
        if arm is None:
            raise NotFound(f"No arm with id {arm_id} in study {study_id}.")
        who = who.where(Animal.arm_id == arm.id)
        what = f"arm {arm.name}"
    chosen = {a.id: a.identifier for a in session.scalars(who)}
    if not chosen:
        raise NotFound(f"No {what} in study {study_id}.")
    rows = session.execute(
        repository.join_session(select(Acquisition, ImagingSession.acquired_on))
        .where(
            ImagingSession.study_id == study.id,
            Acquisition.view == view,
            Acquisition.id.in_(
                select(AcquisitionAnimal.acquisition_id).where(
                    AcquisitionAnimal.animal_id.in_(list(chosen))
                )
            ),
        )
        .order_by(ImagingSession.acquired_on, Acquisition.created_at)
    ).all()
    files = repository.image_files(session, [a.id for a, _ in rows])  # one query, not one per row
    with_image = [(a, on) for a, on in rows if a.id in files]
    if not with_image:
        raise NotFound(f"No {view.value} image of {what} in this study.")
    if len(with_image) > MAX_PANELS:
        raise Unprocessable(
            f"{len(with_image)} images of {what}: more than {MAX_PANELS} panels; choose one "
            "animal, or one view of a smaller arm."
        )
    panels = []
    per_day: dict[int, int] = defaultdict(int)
    for acquisition, acquired_on in with_image:
        day = (acquired_on - study.day0).days
        per_day[day] += 1
        click, image = load_calibrated(session, store, settings, acquisition)
        stored = [
            r
            for r in repository.current_rois(session, acquisition.id)
            if r.animal_id in chosen and r.site != Site.background
        ]
        rois = [image_roi(r, image) for r in stored]
        photo = click.photograph if click is not None else None
        panels.append(
            imaging.OverlayPanel(
                image=image,
                photograph=photo.data if photo is not None else None,
                photograph_binning=photo.binning if photo is not None else None,
                rois=rois,
                measurements=quantify_rois(image, rois, f"{acquisition.click_number}.zip"),
                labels=[f"{chosen[r.animal_id]} {r.site.value}" for r in stored],  # type: ignore[index]
                title=f"day {day}",
            )
        )
    try:
        return imaging.render_sequence(
            panels,
            scale=scale,
            vmin=vmin,
            vmax=vmax,
            ncols=max(per_day.values()) if arm_id is not None else min(len(panels), 6),
            title=f"{study.name} — {what}, {view.value}",
            dpi=dpi,
            format=format,
        )
    except imaging.ImagingError as exc:
        raise Unprocessable(f"Cannot draw this sequence: {exc}") from exc
