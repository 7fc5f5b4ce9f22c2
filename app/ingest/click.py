"""An IVIS click as uploaded: read from its zip, the mice found on the photograph and the
image calibrated (its primary image: Living Image's corrected image when the click carries it,
else the raw counts calibrated) — all before the first query, so no transaction is held during
the slow part."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import imaging
from app.acquisitions.images import (
    Calibrated,
    click_settings_metadata,
    image_limits,
    jsonable,
    primary_image,
    uploaded,
)
from app.config import Settings
from app.errors import Unprocessable
from app.models import Acquisition, ImagingSession, View
from app.storage import StagedFile
from app.uploads import Readable


class StreamedUpload:
    """An upload read as staging reads it, its zip's members unpacked on the way
    (:class:`imaging.ZipStream`), so they are ready when the last byte is in: the click is
    then read from the staged file's directory and these members, not unzipped again."""

    def __init__(self, upload: Readable) -> None:
        self._upload = upload
        limits = imaging.ZipLimits()
        self.zip = imaging.ZipStream(
            max_member_bytes=limits.max_member_bytes,
            max_total_bytes=limits.max_total_bytes,
            max_members=limits.max_members,
        )

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._upload.read(size)
        self.zip.feed(chunk)
        return chunk


def _read_click(
    staged: StagedFile, filename: str, settings: Settings, streamed: StreamedUpload | None
) -> imaging.IvisClick:
    try:
        return imaging.read_ivis_click(
            staged.path,
            limits=image_limits(settings),
            name=filename,
            streamed=streamed.zip.members if streamed is not None else None,
        )
    except imaging.ImagingError as exc:
        raise Unprocessable(
            f"{exc} — upload the whole Living Image folder of one acquisition as a .zip "
            "(ClickInfo.txt, luminescent.TIF, photograph.TIF, …)."
        ) from exc


def _find_bodies(
    click: imaging.IvisClick, identifiers: Sequence[str], filename: str, *, source: str
) -> tuple[imaging.AnimalBody, ...]:
    if click.photograph is None:
        raise Unprocessable(f"{filename}: no photograph.TIF, so the mice cannot be told apart.")
    try:
        return imaging.find_animals(
            click.photograph.data,
            binning=click.photograph.binning,
            animal_numbers=list(identifiers),
            exact=True,
        )
    except imaging.ImagingError as exc:
        # One mouse too many or too few would shift every ROI to its neighbour's ear tag.
        raise Unprocessable(
            f"{filename}: {exc}. The animals given ({', '.join(identifiers)}; from "
            f"{source}) must name every mouse in the field, left to right: correct the list "
            "in the `animals` field, or draw the ROIs by hand on a TIFF upload."
        ) from exc


@dataclass(frozen=True)
class PreparedClick:
    """What can be known of an upload without the database: read, mice found, calibrated."""

    click: imaging.IvisClick
    identifiers: list[str]
    bodies: tuple[imaging.AnimalBody, ...]
    image: imaging.CalibratedImage  # the primary image (imaging.primary_image)
    living_image_rois: tuple[imaging.Roi, ...]  # ``click.rois`` as geometry, in their order
    calibrated: Calibrated  # the click as uploaded, its exposure check already computed


#: Finds the mice on a click's photograph while the request's own thread calibrates its image
#: (numpy and scipy let go of the interpreter lock for much of both: ~30 → ~21 ms for a 2048²
#: click on 2 cores). A mouse search still waiting for a thread when the calibration is done
#: is taken back and run by the request itself, so a queue here never makes an upload wait.
_SEARCH = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="osteolux-mice")


def prepare(
    staged: StagedFile,
    settings: Settings,
    *,
    filename: str,
    animals: Sequence[str] | None,
    streamed: StreamedUpload | None = None,
) -> PreparedClick:
    click = _read_click(staged, filename, settings, streamed)
    identifiers = list(animals or click.animal_numbers)
    if not identifiers:
        raise Unprocessable(
            f"{filename}: ClickInfo.txt lists no 'Animal Number'; give the animals in the field "
            "left to right in the `animals` form field (e.g. 3466,3467,3468)."
        )
    if len(set(identifiers)) != len(identifiers):
        raise Unprocessable(f"{filename}: an animal is listed twice in {', '.join(identifiers)}.")
    source = "the `animals` field" if animals else "ClickInfo.txt's 'Animal Number'"
    find = functools.partial(_find_bodies, click, identifiers, filename, source=source)
    search = _SEARCH.submit(find)
    try:
        try:
            # All at once, so the check that each ROI was drawn for this click's pixel size runs.
            rois = imaging.rois_from_click(click)
        except imaging.ImagingError as exc:
            raise Unprocessable(f"{filename}: {exc}") from exc
        calibrated = uploaded(click, primary_image(click, filename))
        calibrated.exposure()
    finally:
        started = not search.cancel()
    # not started: every thread was busy with other uploads, so this one searches itself
    bodies = search.result() if started else find()
    return PreparedClick(click, identifiers, bodies, calibrated.image, rois, calibrated)


def choose_view(requested: View | None, click: imaging.IvisClick) -> View:
    if requested is not None:
        return requested
    return View.from_label(click.labels.get("View", "")) or View.other


def click_acquisition(
    imaging_session: ImagingSession,
    click: imaging.IvisClick,
    view: View,
    image: imaging.CalibratedImage,
) -> Acquisition:
    """The (unsaved) acquisition row describing a click."""
    settings = click.settings
    return Acquisition(
        session_id=imaging_session.id,
        view=view,
        click_number=click.click_number,
        acquired_at=imaging.acquisition_time(click).utc,
        exposure_s=settings.exposure_s,
        binning=settings.binning,
        f_number=settings.f_number,
        fov_cm=settings.fov_cm,
        units=image.units,
        camera_metadata=jsonable(
            {
                "labels": dict(click.labels),
                "calibration": [{"name": s.name, **dict(s.parameters)} for s in image.steps],
                "sensor_pixels": click.sensor_pixels,
                "settings": click_settings_metadata(click),
            }
        ),
    )
