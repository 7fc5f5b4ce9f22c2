"""Where the ROIs of a new click go: Living Image's own ROIs, each given to the mouse it sits
on, or a whole-body ROI and the study's site template on every mouse found; plus a background
square as far from every mouse as the field allows, unless Living Image's ROIs include a
background ROI (it gives every ROI its detection limit; never subtracted)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import imaging
from app.ingest.click import PreparedClick
from app.measurements.living_image import site_from_label
from app.models import Animal, RoiSource, Site, View
from app.rois.geometry import UnionRoi
from app.studies.roi_template import TemplateSite


@dataclass
class PlacedRoi:
    geometry: imaging.Roi | UnionRoi
    animal: Animal | None
    site: Site
    label: str
    source: RoiSource


def _nearest_animal(
    roi: imaging.Roi, bodies: Sequence[imaging.AnimalBody], animals: list[Animal]
) -> Animal:
    row, col = roi.center_row, roi.center_col  # type: ignore[union-attr]
    distances = [math.hypot(b.centroid_row - row, b.centroid_col - col) for b in bodies]
    return animals[bodies[distances.index(min(distances))].position]


def place_rois(
    prepared: PreparedClick,
    animals: list[Animal],
    view: View,
    template: Sequence[TemplateSite],
) -> list[PlacedRoi]:
    """Living Image's own ROIs when the click has them, each given to the mouse it sits on;
    otherwise a whole-body ROI and the study's site template on every mouse found."""
    click, bodies = prepared.click, prepared.bodies
    if click.rois:
        placed = []
        for li_roi, geometry in zip(click.rois, prepared.living_image_rois, strict=True):
            label = li_roi.label or li_roi.name
            if (li_roi.roi_type or "").lower().startswith(("bkg", "background")):
                animal, site = None, Site.background
            else:
                animal = _nearest_animal(geometry, bodies, animals)
                # A label that names no site (e.g. "ROI 1") is not silently whole-body flux.
                site = Site(site_from_label(li_roi.label or "") or Site.unassigned)
            placed.append(PlacedRoi(geometry, animal, site, label, RoiSource.living_image))
        if not any(p.site == Site.background for p in placed):
            placed.extend(_background(prepared))
        return placed
    placed = []
    side: Literal["dorsal", "ventral"] = "ventral" if view == View.ventral else "dorsal"
    shapes = [
        imaging.SiteTemplate(
            name=t.name, shape=t.shape, u=t.u, v=t.v, size_u=t.size_u, size_v=t.size_v
        )
        for t in template
    ]
    site_of = {t.name: t.site for t in template}
    for body in bodies[: len(animals)]:
        animal = animals[body.position]
        placed.append(
            PlacedRoi(
                body.body_roi,
                animal,
                Site.whole_body,
                f"{animal.identifier} whole body",
                RoiSource.automatic,
            )
        )
        by_site: dict[Site, list[imaging.Roi]] = {}
        for roi in imaging.site_rois(body, template=shapes, view=side):
            name = roi.label.removeprefix(f"{body.animal_number} ").strip()
            by_site.setdefault(site_of[name], []).append(roi)
        for site, parts in by_site.items():
            region = parts[0] if len(parts) == 1 else UnionRoi(parts=tuple(parts))
            placed.append(
                PlacedRoi(
                    region, animal, site, f"{animal.identifier} {site.value}", RoiSource.automatic
                )
            )
    placed.extend(_background(prepared))
    return placed


def _background(prepared: PreparedClick) -> list[PlacedRoi]:
    if prepared.background is None:
        return []  # the mice fill the field
    background = prepared.background
    return [PlacedRoi(background, None, Site.background, "background", RoiSource.automatic)]
