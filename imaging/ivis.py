"""IVIS / Living Image export folder ("click") reader: a folder or a zip of it.

Why one long module: a Living Image folder is one format — the ClickInfo text, the TIFF
frames, the calibration tables and the ROI lines refer to each other by name — and the
dataclasses here are exactly what :func:`read_ivis_click` returns; the zip guard
(:class:`ZipLimits`) and the section parsers are only used by it.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import IO, NamedTuple

import numpy as np

from .clickinfo import ClickInfo, ClickSection, parse_clickinfo
from .errors import ClickFolderError, ImagingError
from .tiff import ImageLimits, TiffImage, read_tiff
from .zipstream import StreamedMember

__all__ = [
    "CameraCalibration",
    "ClickPreview",
    "FlatFieldCoefficients",
    "Frame",
    "IvisClick",
    "LivingImageRoi",
    "LuminescentSettings",
    "ZipLimits",
    "click_photograph",
    "partial_click",
    "read_ivis_click",
]

KNOWN_BINNINGS = frozenset({1, 2, 3, 4, 5, 6, 8, 10, 16})
_TEXT_FILES = ("clickinfo.txt", "analyzedclickinfo.txt")
_MAX_TEXT_BYTES = 4 * 2**20


@dataclass(frozen=True, kw_only=True)
class ZipLimits:
    """Limits checked on a zip's directory before anything is extracted.

    Parameters
    ----------
    max_members : int
        Most entries accepted.
    max_member_bytes : int
        Largest uncompressed member [bytes].
    max_total_bytes : int
        Largest sum of uncompressed members [bytes].
    max_compression_ratio : float
        Largest uncompressed / compressed ratio of one member (zip bombs). Deflate tops out
        near 1032:1 (a constant dark frame gets close), so the default refuses only
        stronger codecs abused as bombs; the size caps are what bound memory (zipfile never
        inflates past a member's declared size).
    """

    max_members: int = 64
    max_member_bytes: int = 256 * 2**20
    max_total_bytes: int = 512 * 2**20
    max_compression_ratio: float = 1100.0


@dataclass(frozen=True, kw_only=True)
class Frame:
    """One image of the click at its own binning.

    Attributes
    ----------
    role : str
        ``"luminescent"``, ``"photograph"``, ``"readbias"``, ``"dark"`` or ``"corrected"``.
    filename : str
    data : ndarray, shape (rows, cols)
        Native dtype, read-only, as stored (not yet divided by ``data_multiplier``).
    binning : int
        Sensor pixels per image pixel along each axis.
    data_multiplier : float
        Stored value = physical counts × multiplier (``Data Multiplier``; 1 when absent).
    read_bias_level : float or None
        ``Read Bias Level`` of this frame [counts].
    exposure_s : float or None
    section : ClickSection
        The ClickInfo section describing the frame (every key kept).
    """

    role: str
    filename: str
    data: np.ndarray = field(repr=False)
    binning: int
    data_multiplier: float = 1.0
    read_bias_level: float | None = None
    exposure_s: float | None = None
    section: ClickSection = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class LuminescentSettings:
    """Camera settings of the luminescent exposure."""

    exposure_s: float
    binning: int
    f_number: float
    fov_cm: float
    read_bias_level: float | None
    emission_filter: str | None
    excitation_filter: str | None
    image_units: str | None


@dataclass(frozen=True, kw_only=True)
class FlatFieldCoefficients:
    """``Shelf Position <shelf> FF5 f/<N> Coefs: k0..k4, x0, y0`` (r and x0, y0 in cm)."""

    shelf: str
    f_number: float
    k: tuple[float, float, float, float, float]
    x0_cm: float
    y0_cm: float


@dataclass(frozen=True, kw_only=True)
class CameraCalibration:
    """Instrument constants from the ``Camera System Info`` section.

    Attributes
    ----------
    c_ccd : Mapping[tuple[float, float], float]
        ``(fov_cm, f_number) → C-ccd`` [p/s/cm²/sr per count/s].
    flat_field : tuple[FlatFieldCoefficients, ...]
    shelf_fov_cm : Mapping[str, float]
        ``shelf letter → FOV [cm]``.
    saturation_counts : float or None
        ``CCD Saturation Level``.
    c_ccd_units : str or None
    """

    c_ccd: Mapping[tuple[float, float], float]
    flat_field: tuple[FlatFieldCoefficients, ...]
    shelf_fov_cm: Mapping[str, float]
    saturation_counts: float | None
    c_ccd_units: str | None
    camera_id: str | None = None

    def c_ccd_for(self, fov_cm: float, f_number: float) -> float | None:
        for (fov, f), value in self.c_ccd.items():
            if abs(fov - fov_cm) < 1e-6 and abs(f - f_number) < 1e-6:
                return value
        return None

    def flat_field_for(self, fov_cm: float, f_number: float) -> FlatFieldCoefficients | None:
        shelves = [s for s, fov in self.shelf_fov_cm.items() if abs(fov - fov_cm) < 1e-6]
        for coefs in self.flat_field:
            if coefs.shelf in shelves and abs(coefs.f_number - f_number) < 1e-6:
                return coefs
        return None


@dataclass(frozen=True, kw_only=True)
class LivingImageRoi:
    """One ``ROI n:`` line of ``AnalyzedClickInfo.txt``.

    Coordinates are Living Image's: **un-binned** sensor pixels, ``x`` along columns, ``y``
    along rows; the binned pixel centre index is ``x / binning − 0.5``.
    """

    name: str
    shape: str
    xc: float
    yc: float
    width: float
    height: float
    angle_deg: float
    label: str
    roi_type: str | None
    cm_per_pixel: float | None
    background_roi: str | None
    attributes: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class IvisClick:
    """A complete Living Image export ("click").

    Attributes
    ----------
    source : str
        Folder or zip name.
    click_number : str
    luminescent, photograph, readbias, dark, corrected : Frame or None
        ``luminescent`` is always present; ``corrected`` is
        ``luminescentFloatCorrected.TIF`` (radiance) when Living Image saved it.
    settings : LuminescentSettings
    camera : CameraCalibration or None
        ``None`` when ``ClickInfo.txt`` has no ``Camera System Info`` section.
    labels : Mapping[str, str]
        User labels (Animal Number, View, Time Point, …); analysed values override raw ones.
    animal_numbers : tuple[str, ...]
        ``Animal Number`` split on commas, left → right.
    rois : tuple[LivingImageRoi, ...]
    clickinfo, analyzed : ClickInfo
        Every section and key as parsed (unknown keys kept).
    sensor_pixels : int
        Un-binned sensor pixels across the field of view.
    sensor_pixel_cm : float
        ``fov_cm / sensor_pixels``.
    """

    source: str
    click_number: str
    luminescent: Frame
    photograph: Frame | None
    readbias: Frame | None
    dark: Frame | None
    corrected: Frame | None
    settings: LuminescentSettings
    camera: CameraCalibration | None
    labels: Mapping[str, str]
    animal_numbers: tuple[str, ...]
    rois: tuple[LivingImageRoi, ...]
    clickinfo: ClickInfo = field(repr=False)
    analyzed: ClickInfo | None = field(repr=False)
    sensor_pixels: int
    sensor_pixel_cm: float


def read_ivis_click(
    source: str | os.PathLike[str] | bytes,
    *,
    limits: ImageLimits | None = None,
    zip_limits: ZipLimits | None = None,
    name: str | None = None,
    streamed: Mapping[int, StreamedMember] | None = None,
    decoded: Mapping[int, TiffImage] | None = None,
) -> IvisClick:
    """Read an IVIS / Living Image export folder, or a zip of one.

    Parameters
    ----------
    source : path or bytes
        The folder, a ``.zip`` file, or the zip's bytes.
    limits : ImageLimits, optional
        Limits for every TIFF.
    zip_limits : ZipLimits, optional
        Limits for zip input (checked before extraction).
    name : str, optional
        Name used in messages.
    streamed : mapping, optional
        Members of this very zip already unpacked while it arrived
        (:attr:`imaging.ZipStream.members`). Each is used only where it is exactly what
        :mod:`zipfile` would read for a directory entry (same offset, name, flags, method and
        sizes, and it unpacked to the entry's CRC-32); every other member is read from the
        file, so the click read is the same with or without them.
    decoded : mapping, optional
        TIFFs among those members already decoded (:func:`imaging.read_tiff` of the member's
        data with these same ``limits``), by the same offsets: used only with their member.

    Raises
    ------
    ClickFolderError
        Missing ``ClickInfo.txt`` or luminescent image, unsafe zip, unknown binning,
        inconsistent frame sizes, unparseable settings.
    InvalidImageError
        A TIFF is broken (the message names it).
    """
    limits = limits or ImageLimits()
    zip_limits = zip_limits or ZipLimits()
    images: dict[str, TiffImage] = {}  # decoded before, by file name
    if isinstance(source, bytes | bytearray | memoryview):
        label = name or "<zip>"
        files = _zip_members(bytes(source), label, zip_limits, streamed, decoded, images)
    else:
        path = Path(source)
        label = name or path.name
        if path.is_dir():
            files = _folder_members(path, label, limits)
        elif path.is_file():
            if path.stat().st_size > zip_limits.max_total_bytes:
                raise ClickFolderError(f"{label}: zip larger than {zip_limits.max_total_bytes}")
            # read member by member from the file, not read whole first: each member is
            # copied out of the page cache once, not twice (a 17 MB click: 16.7 vs 18.2 ms)
            with path.open("rb") as handle:
                files = _zip_members(handle, label, zip_limits, streamed, decoded, images)
        else:
            raise ClickFolderError(f"{label}: no such folder or zip file")
    return _build_click(files, label, limits, images)


def _folder_members(path: Path, label: str, limits: ImageLimits) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for entry in sorted(path.iterdir()):
        st = entry.lstat()
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            continue
        if entry.suffix.casefold() not in (".txt", ".tif", ".tiff"):
            continue  # overlays (.PNG) and other exports are not needed
        if st.st_size > limits.max_file_bytes:
            raise ClickFolderError(f"{label}/{entry.name}: {st.st_size} bytes, above the limit")
        out[entry.name] = entry.read_bytes()
    return out


def _zip_members(
    content: bytes | IO[bytes],
    label: str,
    zl: ZipLimits,
    streamed: Mapping[int, StreamedMember] | None = None,
    decoded: Mapping[int, TiffImage] | None = None,
    images: dict[str, TiffImage] | None = None,
) -> dict[str, bytes]:
    """The members by file name; ``images`` gets the ``decoded`` TIFF of each streamed member
    used."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content) if isinstance(content, bytes) else content)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ClickFolderError(f"{label}: not a folder or a valid zip file ({exc})") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > zl.max_members:
            raise ClickFolderError(f"{label}: {len(infos)} members, at most {zl.max_members}")
        total = 0
        names: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            member = info.filename
            pure = PurePosixPath(member.replace("\\", "/"))
            if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", member):
                raise ClickFolderError(f"{label}: unsafe member path {member!r}")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ClickFolderError(f"{label}: member {member!r} is a symbolic link")
            if info.file_size > zl.max_member_bytes:
                raise ClickFolderError(
                    f"{label}: member {member!r} expands to {info.file_size} bytes, above "
                    f"{zl.max_member_bytes}"
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > zl.max_compression_ratio:
                raise ClickFolderError(
                    f"{label}: member {member!r} has compression ratio {ratio:.0f} "
                    f"(above {zl.max_compression_ratio}): refused as a zip bomb"
                )
            total += info.file_size
            if total > zl.max_total_bytes:
                raise ClickFolderError(f"{label}: expands to more than {zl.max_total_bytes} bytes")
            if pure.name.startswith(".") or "__MACOSX" in pure.parts:
                continue
            names[str(pure)] = info
        parents = {PurePosixPath(n).parent for n in names}
        if len(parents) != 1:
            raise ClickFolderError(
                f"{label}: expected the files of one click at the root or in a single "
                f"top-level folder, found folders {sorted(str(p) for p in parents)}"
            )
        out: dict[str, bytes] = {}
        for member, info in names.items():
            early = (streamed or {}).get(info.header_offset)
            if early is not None and _is_entry(early, info):
                out[PurePosixPath(member).name] = early.data
                image = (decoded or {}).get(info.header_offset)
                if image is not None and images is not None:
                    images[PurePosixPath(member).name] = image
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ClickFolderError(f"{label}: member {member!r} is corrupt ({exc})") from exc
            if len(data) != info.file_size:
                raise ClickFolderError(f"{label}: member {member!r} size mismatch")
            out[PurePosixPath(member).name] = data
    return out


def _is_entry(member: StreamedMember, info: zipfile.ZipInfo) -> bool:
    """Whether a streamed member is the bytes zipfile reads for ``info``, unpacked and
    checked as zipfile checks them (the directory's name, sizes and CRC-32)."""
    return (
        member.name == info.orig_filename
        and member.flags == info.flag_bits
        and member.method == info.compress_type
        and member.compress_size == info.compress_size
        and member.file_size == info.file_size
        and member.crc == info.CRC
    )


def _lookup(files: Mapping[str, bytes], filename: str) -> tuple[str, bytes] | None:
    wanted = filename.casefold()
    for key, value in files.items():
        if key.casefold() == wanted:
            return key, value
    return None


def _float(section: ClickSection, key: str, where: str, *, required: bool = False) -> float | None:
    raw = section.get(key)
    if raw is None or raw == "":
        if required:
            raise ClickFolderError(f"{where}: section '{section.name}' has no '{key}'")
        return None
    try:
        return float(raw.split()[0])
    except (ValueError, IndexError) as exc:
        raise ClickFolderError(
            f"{where}: '{key}' in section '{section.name}' is {raw!r}, not a number"
        ) from exc


def _binning(section: ClickSection, where: str) -> int:
    value = _float(section, "Binning Factor", where, required=True) or 0.0
    if value != int(value) or int(value) not in KNOWN_BINNINGS:
        raise ClickFolderError(
            f"{where}: unknown binning {value:g} in section '{section.name}' "
            f"(known: {sorted(KNOWN_BINNINGS)})"
        )
    return int(value)


_FRAME_SECTIONS = {
    "luminescent": ("luminescent image",),
    "photograph": ("photographic image",),
    "readbias": ("readbias image",),
    "dark": ("darkcharge image",),
    "corrected": ("saved luminescent corrected image",),
}


def _find_section(
    infos: list[ClickInfo], names: tuple[str, ...]
) -> tuple[ClickSection, str] | None:
    for info in infos:
        for n in names:
            s = info.section(n)
            if s is not None and s.value:
                return s, info.source
    return None


def _texts(files: Mapping[str, bytes], label: str) -> tuple[ClickInfo, ClickInfo | None]:
    found = _lookup(files, "ClickInfo.txt")
    if found is None:
        raise ClickFolderError(
            f"{label}: no ClickInfo.txt; upload the whole Living Image export folder"
        )
    for text_name in _TEXT_FILES:
        hit = _lookup(files, text_name)
        if hit is not None and len(hit[1]) > _MAX_TEXT_BYTES:
            raise ClickFolderError(f"{label}/{hit[0]}: larger than {_MAX_TEXT_BYTES} bytes")
    clickinfo = parse_clickinfo(found[1], source=f"{label}/{found[0]}")
    hit = _lookup(files, "AnalyzedClickInfo.txt")
    analyzed = parse_clickinfo(hit[1], source=f"{label}/{hit[0]}") if hit else None
    return clickinfo, analyzed


def _frame(
    role: str,
    infos: list[ClickInfo],
    files: Mapping[str, bytes],
    label: str,
    limits: ImageLimits,
    images: Mapping[str, TiffImage] | None = None,
) -> Frame | None:
    """The frame of ``role`` as the ClickInfo texts name it; ``None`` when they name none or
    its file is missing."""
    located = _find_section(infos, _FRAME_SECTIONS[role])
    if located is None:
        return None
    section, where = located
    filename = section.value
    file_hit = _lookup(files, filename)
    if file_hit is None:
        if role == "luminescent":
            raise ClickFolderError(
                f"{label}: {where} names the luminescent image {filename!r}, which is "
                "missing from the folder"
            )
        return None
    image = (images or {}).get(file_hit[0]) or read_tiff(
        file_hit[1], name=f"{label}/{file_hit[0]}", limits=limits
    )
    if image.data.ndim != 2:
        raise ClickFolderError(
            f"{label}/{file_hit[0]}: expected one grey page, got shape {image.data.shape}"
        )
    return Frame(
        role=role,
        filename=file_hit[0],
        data=image.data,
        binning=_binning(section, where),
        data_multiplier=_float(section, "Data Multiplier", where) or 1.0,
        read_bias_level=_float(section, "Read Bias Level", where),
        exposure_s=_float(section, "Luminescent Exposure (Seconds)", where)
        or _float(section, "Background Exposure (Seconds)", where)
        or _float(section, "Exposure Time Sec", where),
        section=section,
    )


class ClickPreview(NamedTuple):
    """What :func:`click_photograph` can tell before the whole click is in."""

    photograph: Frame
    animal_numbers: tuple[str, ...]
    luminescent_binning: int | None  # as ClickInfo.txt says; None if it says none


def click_photograph(
    files: Mapping[str, bytes],
    *,
    name: str,
    limits: ImageLimits | None = None,
    images: Mapping[str, TiffImage] | None = None,
) -> ClickPreview | None:
    """The photograph, the ``Animal Number`` list and the luminescent image's binning from
    some of a click's files, as far as they go (e.g. while the click arrives): ``None`` until
    ``ClickInfo.txt`` and the photograph it names are there, or when they cannot be read
    (:func:`read_ivis_click` on the whole click says why). Files still to come may change
    any of it — an ``AnalyzedClickInfo.txt`` relabels the animals —, so whatever is computed
    from these must be checked against the click once read. ``images``: TIFFs among ``files``
    already decoded, by file name."""
    try:
        clickinfo, analyzed = _texts(files, name)
        infos = [clickinfo] + ([analyzed] if analyzed else [])
        photograph = _frame("photograph", infos, files, name, limits or ImageLimits(), images)
        luminescent = _find_section(infos, _FRAME_SECTIONS["luminescent"])
        binning = _binning(*luminescent) if luminescent else None
    except ImagingError:
        return None
    if photograph is None:
        return None
    return ClickPreview(photograph, _animal_numbers(_labels(infos)), binning)


def partial_click(
    files: Mapping[str, bytes],
    *,
    name: str,
    limits: ImageLimits | None = None,
    images: Mapping[str, TiffImage] | None = None,
) -> IvisClick | None:
    """The click as far as some of its files go (e.g. while it arrives): the frames that are
    there; ``None`` until ``ClickInfo.txt`` and the luminescent image are, or when they cannot
    be read (:func:`read_ivis_click` on the whole click says why). ``images``: TIFFs among
    ``files`` already decoded, by file name. Files still to come may change it, so whatever
    is computed from it must be checked against the click once read
    (:func:`imaging.same_primary_inputs` for a calibration)."""
    try:
        return _build_click(files, name, limits or ImageLimits(), images)
    except ImagingError:
        return None


def _animal_numbers(labels: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(a.strip() for a in labels.get("Animal Number", "").split(",") if a.strip())


def _build_click(
    files: Mapping[str, bytes],
    label: str,
    limits: ImageLimits,
    images: Mapping[str, TiffImage] | None = None,
) -> IvisClick:
    clickinfo, analyzed = _texts(files, label)
    infos = [clickinfo] + ([analyzed] if analyzed else [])
    frames: dict[str, Frame] = {}
    for role in _FRAME_SECTIONS:
        frame = _frame(role, infos, files, label, limits, images)
        if frame is not None:
            frames[role] = frame
    if "luminescent" not in frames:
        raise ClickFolderError(
            f"{label}: ClickInfo.txt has no 'luminescent image' section naming a TIFF"
        )
    lum = frames["luminescent"]
    where = clickinfo.source
    sensor_rows = lum.data.shape[0] * lum.binning
    sensor_cols = lum.data.shape[1] * lum.binning
    for frame in frames.values():
        rows, cols = frame.data.shape
        if (rows * frame.binning, cols * frame.binning) != (sensor_rows, sensor_cols):
            raise ClickFolderError(
                f"{label}/{frame.filename}: {rows}×{cols} at binning {frame.binning} does not "
                f"cover the {sensor_rows}×{sensor_cols} sensor of the luminescent image "
                "(unknown binning or cropped frame)"
            )
    settings = LuminescentSettings(
        exposure_s=_req(
            _float(lum.section, "Luminescent Exposure (Seconds)", where), where, "exposure"
        ),
        binning=lum.binning,
        f_number=_req(_float(lum.section, "f Number", where), where, "f Number"),
        fov_cm=_req(_float(lum.section, "Field of View", where), where, "Field of View"),
        read_bias_level=lum.read_bias_level,
        emission_filter=lum.section.get("Emission filter"),
        excitation_filter=lum.section.get("Excitation filter"),
        image_units=lum.section.get("Image Units"),
    )
    if settings.exposure_s <= 0 or settings.fov_cm <= 0 or settings.f_number <= 0:
        raise ClickFolderError(f"{where}: exposure, f Number and Field of View must be positive")
    labels = _labels(infos)
    animals = _animal_numbers(labels)
    rois = _rois(analyzed) if analyzed else ()
    header = clickinfo.section("ClickNumber")
    return IvisClick(
        source=label,
        click_number=header.value if header else label,
        luminescent=lum,
        photograph=frames.get("photograph"),
        readbias=frames.get("readbias"),
        dark=frames.get("dark"),
        corrected=frames.get("corrected"),
        settings=settings,
        camera=_camera(clickinfo),
        labels=MappingProxyType(labels),
        animal_numbers=animals,
        rois=rois,
        clickinfo=clickinfo,
        analyzed=analyzed,
        sensor_pixels=sensor_cols,
        sensor_pixel_cm=settings.fov_cm / sensor_cols,
    )


def _req(value: float | None, where: str, what: str) -> float:
    if value is None:
        raise ClickFolderError(f"{where}: the luminescent image section has no {what}")
    return value


def _labels(infos: list[ClickInfo]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for info in infos:
        for section in info.sections_named("User Label Name Set"):
            for key, value in section.entries:
                if value or key not in labels:
                    labels[key] = value
    return labels


_NUM = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_CCD_RE = re.compile(rf"^Coef C-ccd at FOV\s*{_NUM}\s*,\s*f\s*{_NUM}$", re.IGNORECASE)
_FF_RE = re.compile(rf"^Shelf Position ([A-Z]) FF5 f/{_NUM} Coefs$", re.IGNORECASE)
_FOV_RE = re.compile(r"^Shelf Position ([A-Z]) FOV$", re.IGNORECASE)


def _camera(info: ClickInfo) -> CameraCalibration | None:
    section = info.section("Camera System Info")
    if section is None:
        return None
    where = info.source
    c_ccd: dict[tuple[float, float], float] = {}
    flat: list[FlatFieldCoefficients] = []
    shelves: dict[str, float] = {}
    for key, value in section.entries:
        try:
            if m := _CCD_RE.match(key):
                c_ccd[(float(m.group(1)), float(m.group(2)))] = float(value)
            elif m := _FF_RE.match(key):
                numbers = [float(v) for v in value.split(",")]
                if len(numbers) != 7:
                    raise ValueError("7 numbers expected")
                flat.append(
                    FlatFieldCoefficients(
                        shelf=m.group(1).upper(),
                        f_number=float(m.group(2)),
                        k=(numbers[0], numbers[1], numbers[2], numbers[3], numbers[4]),
                        x0_cm=numbers[5],
                        y0_cm=numbers[6],
                    )
                )
            elif m := _FOV_RE.match(key):
                shelves[m.group(1).upper()] = float(value)
        except ValueError as exc:
            raise ClickFolderError(f"{where}: calibration line '{key}: {value}' ({exc})") from exc
    saturation = section.get("CCD Saturation Level")
    try:
        saturation_counts = float(saturation) if saturation else None
    except ValueError as exc:
        raise ClickFolderError(f"{where}: CCD Saturation Level {saturation!r}") from exc
    return CameraCalibration(
        c_ccd=MappingProxyType(c_ccd),
        flat_field=tuple(flat),
        shelf_fov_cm=MappingProxyType(shelves),
        saturation_counts=saturation_counts,
        c_ccd_units=section.get("C-ccd Calibration units"),
        camera_id=section.get("Camera System ID"),
    )


def _rois(info: ClickInfo) -> tuple[LivingImageRoi, ...]:
    out: list[LivingImageRoi] = []
    for section in info.sections_named("ROIs"):
        for key, value in section.entries:
            if not key.upper().startswith("ROI"):
                continue
            out.append(parse_roi_line(key, value, source=info.source))
    return tuple(out)


def parse_roi_line(
    name: str, value: str, *, source: str = "AnalyzedClickInfo.txt"
) -> LivingImageRoi:
    """Parse the ``k=v;k=v;`` body of one Living Image ``ROI n:`` line."""
    attrs: dict[str, str] = {}
    for part in value.split(";"):
        k, sep, v = part.partition("=")
        if sep:
            attrs[k.strip()] = v.strip()

    def num(k: str, default: float | None = None) -> float:
        raw = attrs.get(k)
        if raw is None:
            if default is None:
                raise ClickFolderError(f"{source}: {name} has no {k}=")
            return default
        try:
            return float(raw)
        except ValueError as exc:
            raise ClickFolderError(f"{source}: {name} has {k}={raw!r}, not a number") from exc

    bkg = attrs.get("Bkg ROI")
    cm = attrs.get("cm per pixel")
    try:
        cm_per_pixel = float(cm) if cm else None
    except ValueError:
        cm_per_pixel = None
    return LivingImageRoi(
        name=name,
        shape=attrs.get("Shape", ""),
        xc=num("Xc"),
        yc=num("Yc"),
        width=num("Width"),
        height=num("Height"),
        angle_deg=num("Angle", 0.0),
        label=attrs.get("Label", name),
        roi_type=attrs.get("ROI Type"),
        cm_per_pixel=cm_per_pixel,
        background_roi=None if bkg in (None, "", "_none_") else bkg,
        attributes=MappingProxyType(attrs),
    )
