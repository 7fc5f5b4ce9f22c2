"""An IVIS click as uploaded: read from its zip, the mice found on the photograph and the
image calibrated (its primary image: Living Image's corrected image when the click carries it,
else the raw counts calibrated) — all before the first query, so no transaction is held during
the slow part."""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

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

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


def _find_bodies(
    photograph: imaging.Frame | None,
    identifiers: Sequence[str],
    filename: str,
    *,
    source: str,
) -> tuple[imaging.AnimalBody, ...]:
    if photograph is None:
        raise Unprocessable(f"{filename}: no photograph.TIF, so the mice cannot be told apart.")
    try:
        return imaging.find_animals(
            photograph.data,
            binning=photograph.binning,
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


#: Work done beside the request's own thread (numpy and scipy let go of the interpreter
#: lock for much of it): the mouse search and the calibration while the upload arrives, the
#: ROIs' measurements while their rows are written. Work still waiting for a thread when the
#: request needs it is taken back and run by the request itself (:func:`beside`), so a queue
#: here never makes an upload wait.
_BESIDE = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="osteolux-beside")


def beside(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Callable[[], _T]:
    """``fn(*args, **kwargs)`` started on a thread beside the request; call the result for
    its value (run by the caller if no thread had taken it up by then)."""
    future = _BESIDE.submit(fn, *args, **kwargs)

    def result() -> _T:
        return fn(*args, **kwargs) if future.cancel() else future.result()

    return result


def _identifiers(
    animals: Sequence[str] | None, listed: Sequence[str], filename: str
) -> tuple[list[str], str]:
    """The animals left to right and where they were named (for messages)."""
    identifiers = list(animals or listed)
    if not identifiers:
        raise Unprocessable(
            f"{filename}: ClickInfo.txt lists no 'Animal Number'; give the animals in the field "
            "left to right in the `animals` form field (e.g. 3466,3467,3468)."
        )
    if len(set(identifiers)) != len(identifiers):
        raise Unprocessable(f"{filename}: an animal is listed twice in {', '.join(identifiers)}.")
    return identifiers, "the `animals` field" if animals else "ClickInfo.txt's 'Animal Number'"


@dataclass(frozen=True)
class _Found:
    bodies: tuple[imaging.AnimalBody, ...]
    background: imaging.RectangleRoi | None  # the square for the background level


def _find(
    photograph: imaging.Frame | None,
    identifiers: Sequence[str],
    filename: str,
    *,
    source: str,
    field: tuple[tuple[int, int], int],
) -> _Found:
    """The mice, and the background square as far from them as the luminescent image's
    ``field`` (shape, binning) allows."""
    bodies = _find_bodies(photograph, identifiers, filename, source=source)
    return _Found(bodies, imaging.background_square(*field, bodies))


def _field(click: imaging.IvisClick) -> tuple[tuple[int, int], int]:
    rows, cols = click.luminescent.data.shape
    return (rows, cols), click.luminescent.binning


@dataclass(frozen=True)
class _Search:
    """A mouse search started on a photograph before the click was read whole."""

    photograph: imaging.Frame
    identifiers: list[str]
    field: tuple[tuple[int, int], int]
    future: Future[_Found]

    def is_for(self, click: imaging.IvisClick, identifiers: list[str]) -> bool:
        return (
            self.identifiers == identifiers
            and self.field == _field(click)
            and imaging.same_frame(self.photograph, click.photograph)
        )


class StreamedUpload:
    """An upload read as staging reads it, its zip's members unpacked on the way
    (:class:`imaging.ZipStream`, on a thread of its own beside the hashing and writing), so
    they are ready when the last byte is in: the click is then read from the staged file's
    directory and these members, not unzipped again. Once ``ClickInfo.txt`` and the
    photograph are in, the mice are searched for on another thread while the rest arrives,
    and once the luminescent image is, it is calibrated there too; :func:`prepare` takes those
    results only for the very photograph and animals, and the very frames, settings and camera
    (:func:`imaging.same_primary_inputs`), of the click it reads (else it computes them
    again)."""

    def __init__(
        self,
        upload: Readable,
        *,
        filename: str,
        animals: Sequence[str] | None,
        limits: imaging.ImageLimits,
    ) -> None:
        self._upload = upload
        self._filename = filename
        self._animals = animals
        self._limits = limits
        self._decoded: dict[int, imaging.TiffImage | None] = {}  # TIFF members, by offset
        zip_limits = imaging.ZipLimits()
        self.zip = imaging.ZipStream(
            max_member_bytes=zip_limits.max_member_bytes,
            max_total_bytes=zip_limits.max_total_bytes,
            max_members=zip_limits.max_members,
        )
        self._tried = 0  # members seen when a search was last looked for
        self._search: _Search | None = None
        # the click as far as it had come, and its primary image being computed
        self._calibration: tuple[imaging.IvisClick, Future[Calibrated | None]] | None
        self._calibration = None
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._unzip = threading.Thread(target=self._unzip_all, name="osteolux-unzip", daemon=True)

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._upload.read(size)
        if self._unzip.ident is None:
            self._unzip.start()
        self._chunks.put(chunk or None)
        return chunk

    def _unzip_all(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self.zip.stopped == "failed":
                continue  # let go of the rest unread
            try:
                self.zip.feed(chunk)
                if len(self.zip.members) != self._tried:
                    self._tried = len(self.zip.members)
                    self._decode_new()
                    files, images = self._arrived()
                    if self._search is None:
                        self._start_search(files, images)
                    if self._calibration is None:
                        self._start_calibration(files, images)
            except Exception:  # never fails the upload: the click is then read from the file
                logger.exception("%s: unzipping while it arrived failed", self._filename)
                self.zip.stopped = "failed"

    def _decode_new(self) -> None:
        """Decode the TIFFs among the members just unpacked (one that does not decode is
        left for the whole read to explain)."""
        for offset, member in self.zip.members.items():
            if offset in self._decoded or not member.name.lower().endswith((".tif", ".tiff")):
                continue
            if member.crc != member.declared_crc:
                continue
            try:
                self._decoded[offset] = imaging.read_tiff(member.data, limits=self._limits)
            except imaging.ImagingError:
                self._decoded[offset] = None

    def _arrived(self) -> tuple[dict[str, bytes], dict[str, imaging.TiffImage]]:
        """The members unpacked so far that match their CRC-32, and their TIFFs decoded, by
        file name."""
        verified = {o: m for o, m in self.zip.members.items() if m.crc == m.declared_crc}
        files = {m.name.rsplit("/", 1)[-1]: m.data for m in verified.values()}
        images = {
            verified[o].name.rsplit("/", 1)[-1]: image
            for o, image in self._decoded.items()
            if image is not None and o in verified
        }
        return files, images

    def _start_calibration(
        self, files: dict[str, bytes], images: dict[str, imaging.TiffImage]
    ) -> None:
        partial = imaging.partial_click(
            files, name=self._filename, limits=self._limits, images=images
        )
        if partial is None or partial.corrected is not None:
            return  # Living Image's corrected image is not worth starting early
        self._calibration = (partial, _BESIDE.submit(_calibrate, partial))

    def calibration_for(self, click: imaging.IvisClick) -> Calibrated | None:
        """The primary image (and exposure check) computed while the upload arrived, for
        ``click``, if it is this click's."""
        self._finish()
        calibration, self._calibration = self._calibration, None
        if calibration is None:
            return None
        partial, future = calibration
        if future.cancel():
            return None  # never started: every thread was busy
        early = future.result()
        if early is None or not imaging.same_primary_inputs(partial, click):
            return None
        return uploaded(click, early.image, checked=early.exposure())

    def members(self) -> dict[int, imaging.StreamedMember]:
        """The members unpacked, once every byte received was fed."""
        self._finish()
        return self.zip.members if self.zip.stopped != "failed" else {}

    def decoded(self) -> dict[int, imaging.TiffImage]:
        """The TIFF members decoded (with the limits given), once every byte was fed."""
        self._finish()
        if self.zip.stopped == "failed":
            return {}
        return {offset: image for offset, image in self._decoded.items() if image is not None}

    def _finish(self) -> None:
        if self._unzip.ident is not None:
            self._chunks.put(None)  # the end, if staging stopped before it
            self._unzip.join()

    def _start_search(self, files: dict[str, bytes], images: dict[str, imaging.TiffImage]) -> None:
        preview = imaging.click_photograph(
            files, name=self._filename, limits=self._limits, images=images
        )
        if preview is None or preview.luminescent_binning is None:
            return
        photograph, listed, binning = (
            preview.photograph,
            preview.animal_numbers,
            preview.luminescent_binning,
        )
        try:
            identifiers, source = _identifiers(self._animals, listed, self._filename)
        except Unprocessable:
            return  # said when the click is read whole
        # the luminescent image covers the photograph's sensor (the whole read checks it)
        rows, cols = (n * photograph.binning // binning for n in photograph.data.shape)
        field = ((rows, cols), binning)
        find = functools.partial(
            _find, photograph, identifiers, self._filename, source=source, field=field
        )
        self._search = _Search(photograph, identifiers, field, _BESIDE.submit(find))

    def search_for(self, click: imaging.IvisClick, identifiers: list[str]) -> Future[_Found] | None:
        """The search started while the upload arrived, if it was for this click's
        photograph, animals and luminescent field."""
        self._finish()
        search, self._search = self._search, None
        if search is None:
            return None
        if search.is_for(click, identifiers):
            return search.future
        search.future.cancel()
        return None

    def close(self) -> None:
        """The upload is done with (stored, refused or known): stop a search not begun."""
        self._finish()
        if self._search is not None:
            self._search.future.cancel()
            self._search = None
        if self._calibration is not None:
            self._calibration[1].cancel()
            self._calibration = None


def _calibrate(click: imaging.IvisClick) -> Calibrated | None:
    """The click's primary image and its exposure check (which reads nothing
    :func:`imaging.same_primary_inputs` does not compare)."""
    try:
        calibrated = uploaded(click, imaging.primary_image(click))
        calibrated.exposure()
    except imaging.ImagingError:
        return None  # said when the click is read whole
    except Exception:  # a part of a click: the whole one is calibrated (and explained) again
        logger.exception("%s: calibrating the click while it arrived failed", click.source)
        return None
    return calibrated


def _read_click(
    staged: StagedFile, filename: str, settings: Settings, streamed: StreamedUpload | None
) -> imaging.IvisClick:
    try:
        return imaging.read_ivis_click(
            staged.path,
            limits=image_limits(settings),
            name=filename,
            streamed=streamed.members() if streamed is not None else None,
            decoded=streamed.decoded() if streamed is not None else None,
        )
    except imaging.ImagingError as exc:
        raise Unprocessable(
            f"{exc} — upload the whole Living Image folder of one acquisition as a .zip "
            "(ClickInfo.txt, luminescent.TIF, photograph.TIF, …)."
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
    background: imaging.RectangleRoi | None  # as far from the mice as the field allows


def prepare(
    staged: StagedFile,
    settings: Settings,
    *,
    filename: str,
    animals: Sequence[str] | None,
    streamed: StreamedUpload | None = None,
) -> PreparedClick:
    click = _read_click(staged, filename, settings, streamed)
    identifiers, source = _identifiers(animals, click.animal_numbers, filename)
    find = functools.partial(
        _find, click.photograph, identifiers, filename, source=source, field=_field(click)
    )
    early = streamed.search_for(click, identifiers) if streamed else None
    search = early or _BESIDE.submit(find)
    try:
        try:
            # All at once, so the check that each ROI was drawn for this click's pixel size runs.
            rois = imaging.rois_from_click(click)
        except imaging.ImagingError as exc:
            raise Unprocessable(f"{filename}: {exc}") from exc
        ready = streamed.calibration_for(click) if streamed else None
        calibrated = ready or uploaded(click, primary_image(click, filename))
        calibrated.exposure()
    finally:
        started = not search.cancel()
    # not started: every thread was busy with other uploads, so this one searches itself
    found = search.result() if started else find()
    return PreparedClick(
        click, identifiers, found.bodies, calibrated.image, rois, calibrated, found.background
    )


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
