"""One value per animal and day from the images of that day, by the study's explicit rule.

An animal imaged dorsally and ventrally, or several times in a kinetic sequence, has several
measurements on one day; every analysis needs one. How they are combined changes the numbers
(the Prism export once averaged dorsal and ventral without saying so), so it is a study setting
(``Study.image_combination``), may be overridden per request, and is recorded in every output.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from app.measurements.schemas import SeriesPoint
from app.models import ImageCombination

DESCRIPTIONS = {
    ImageCombination.mean: "mean of every image of the animal that day, any view",
    ImageCombination.sum_of_views: "per view the mean of its images, then the sum over views",
    ImageCombination.dorsal: "dorsal images only (their mean)",
    ImageCombination.ventral: "ventral images only (their mean)",
    ImageCombination.peak: "the largest value of the animal's images that day",
}


@dataclass(frozen=True)
class ImagePoint:
    """One measured image of an animal (before combination)."""

    measurement_id: uuid.UUID
    animal_id: uuid.UUID
    animal: str
    arm_id: uuid.UUID
    arm: str
    day: int
    site: str
    view: str
    value: float | None
    flags: tuple[str, ...]


def combine(points: Sequence[ImagePoint], rule: ImageCombination) -> list[SeriesPoint]:
    """One point per animal and day (in the order of first appearance), its value combined by
    ``rule`` from the images that have one, with every contributing measurement id, the
    views and image count used, and the union of their QC flags."""
    groups: dict[tuple[uuid.UUID, int], list[ImagePoint]] = defaultdict(list)
    for point in points:
        groups[(point.animal_id, point.day)].append(point)
    combined = []
    for images in groups.values():
        if rule in (ImageCombination.dorsal, ImageCombination.ventral):
            images = [p for p in images if p.view == rule.value]
            if not images:
                continue
        used = [p for p in images if p.value is not None]
        first = images[0]
        combined.append(
            SeriesPoint(
                measurement_id=first.measurement_id,
                measurement_ids=[p.measurement_id for p in images],
                animal_id=first.animal_id,
                animal=first.animal,
                arm_id=first.arm_id,
                arm=first.arm,
                day=first.day,
                site=first.site,
                value=_value([p.value for p in used], [p.view for p in used], rule)
                if used
                else None,
                images=len(used),
                views=sorted({p.view for p in used}),
                flags=list(dict.fromkeys(f for p in images for f in p.flags)),
            )
        )
    return combined


def _value(values: list[float | None], views: list[str], rule: ImageCombination) -> float:
    numbers = [float(v) for v in values if v is not None]
    if rule == ImageCombination.peak:
        return max(numbers)
    if rule == ImageCombination.sum_of_views:
        by_view: dict[str, list[float]] = defaultdict(list)
        for value, view in zip(values, views, strict=True):
            if value is not None:
                by_view[view].append(float(value))
        return sum(fmean(v) for v in by_view.values())
    return fmean(numbers)
