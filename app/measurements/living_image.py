"""Mapping Living Image ROI-measurement exports onto animals, days and sites."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from app.errors import Unprocessable
from app.measurements.tidy_csv import TidyRow
from app.models import View
from imaging import LivingImageMeasurement

# Living Image names an acquisition ("click") by the user's initials and a timestamp.
_CLICK_DATE = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})\d{6}(?!\d)")

# Words in an ROI label that name an anatomical site, checked in this order.
SITE_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("left_hindlimb", ("left hind", "l hind", "lhl", "left femur", "left tibia", "left leg")),
    ("right_hindlimb", ("right hind", "r hind", "rhl", "right femur", "right tibia", "right leg")),
    ("skull_mandible", ("skull", "head", "mandible", "jaw", "calvaria")),
    ("spine", ("spine", "spinal", "vertebra", "lumbar")),
    ("forelimbs_scapula", ("forelimb", "scapula", "shoulder", "humerus")),
    ("thorax", ("thorax", "thoracic", "chest", "lung")),
    ("whole_body", ("whole body", "whole", "body", "total")),
)


def imaging_date(image_number: str) -> date | None:
    match = _CLICK_DATE.search(image_number)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def site_from_label(label: str) -> str | None:
    text = " " + re.sub(r"[^a-z]+", " ", label.lower()) + " "
    for site, words in SITE_KEYWORDS:
        if any(f" {word} " in text for word in words):
            return site
    return None


def _animal(row: LivingImageMeasurement, animal_label: str, known: set[str]) -> str | None:
    listed = [a.strip() for a in re.split(r"[,;]", row.labels.get(animal_label, "")) if a.strip()]
    if len(listed) == 1:
        return listed[0]
    named = [token for token in re.split(r"[\s_:/-]+", row.roi) if token in known]
    candidates = [t for t in named if not listed or t in listed]
    return candidates[0] if len(candidates) == 1 else None


def to_tidy_rows(
    rows: Sequence[LivingImageMeasurement],
    *,
    filename: str,
    known_animals: set[str],
    animal_label: str = "Animal Number",
    default_site: str = "unassigned",
) -> list[TidyRow]:
    """One tidy row per Living Image ROI row: the date from the click name, the animal from
    the ``Animal Number`` label (or an animal identifier in the ROI label when the image
    shows several mice), the site from words in the ROI label (else ``default_site``: an ROI
    named "ROI 1" is counted in no site's series until a site is assigned)."""
    if not rows:
        raise Unprocessable(f"{filename} has a header but no ROI rows.")
    tidy = []
    for row in rows:
        on = imaging_date(row.image_number)
        if on is None:
            raise Unprocessable(
                f"{filename}, line {row.line}: cannot tell the imaging date from the image "
                f"name {row.image_number!r} (expected Living Image's XX20220105114235 form); "
                "use the tidy format with a date column."
            )
        animal = _animal(row, animal_label, known_animals)
        if animal is None:
            raise Unprocessable(
                f"{filename}, line {row.line}: cannot tell which animal ROI {row.roi!r} belongs "
                f"to ('{animal_label}' is {row.labels.get(animal_label, '')!r}). Name the animal "
                "in the ROI label (e.g. '3466 spine') or use the tidy format."
            )
        view = View.from_label(row.labels.get("View", ""))
        tidy.append(
            TidyRow(
                line=row.line,
                animal=animal,
                day=None,
                on=on,
                site=site_from_label(row.roi) or default_site,
                total_flux_ps=row.total_flux_ps,
                radiance_mean=row.radiance_mean,
                view=view.value if view is not None else None,
                flags=(),
            )
        )
    return tidy
