"""Validated TIFF reader.

Every structural property (magic, page count, dimensions, sample type, declared strip sizes,
compression ratio) is checked against :class:`ImageLimits` *before* any pixel is decoded, and
any warning tifffile emits about the file is turned into an :class:`InvalidImageError`.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from ._logcapture import capture_tifffile_warnings
from .errors import ImageTooLargeError, InvalidImageError

__all__ = ["ImageLimits", "TiffImage", "read_tiff"]

_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_DEFAULT_DTYPES = frozenset({"uint8", "uint16", "int16", "int32", "uint32", "float32", "float64"})


@dataclass(frozen=True, kw_only=True)
class ImageLimits:
    """Limits an image must satisfy before it is decoded.

    Parameters
    ----------
    max_file_bytes : int
        Largest accepted file (bytes on disk / in memory).
    max_pages : int
        Largest number of IFDs (pages) followed in the chain.
    max_dimension : int
        Largest accepted width or height [pixels].
    max_pixels : int
        Largest number of pixels over all pages.
    max_bytes : int
        Largest decoded size over all pages [bytes].
    max_compression_ratio : float
        Largest ratio decoded bytes / stored bytes for compressed pages (decompression
        bombs). Deflate cannot exceed ~1032:1, so the default only refuses codecs abused
        beyond that; ``max_bytes`` is the real cap (the decoded size is declared).
    max_samples : int
        Largest number of samples per pixel (1 = grey, 3/4 = RGB(A)).
    allowed_dtypes : frozenset[str]
        Accepted numpy sample types.
    """

    max_file_bytes: int = 512 * 2**20
    max_pages: int = 64
    max_dimension: int = 16384
    max_pixels: int = 64 * 2**20
    max_bytes: int = 512 * 2**20
    max_compression_ratio: float = 1100.0
    max_samples: int = 4
    allowed_dtypes: frozenset[str] = _DEFAULT_DTYPES


@dataclass(frozen=True, kw_only=True)
class TiffImage:
    """A decoded TIFF.

    Attributes
    ----------
    data : ndarray
        Read-only pixels, shape ``(rows, cols)`` for one page, ``(pages, rows, cols)`` for
        several pages of one shape; a trailing samples axis for RGB(A). Native dtype.
    source : str
        File name used in messages.
    pages : int
        Number of pages.
    byteorder : str
        ``"<"`` (little-endian, ``II``) or ``">"`` (big-endian, ``MM``).
    ome_xml : str or None
        The OME-XML description when the file is an OME-TIFF.
    physical_pixel_size_cm : tuple[float, float] or None
        ``(row, col)`` pixel size from OME ``PhysicalSizeY/X`` converted to cm, if present.
    """

    data: np.ndarray
    source: str
    pages: int
    byteorder: str
    ome_xml: str | None = None
    physical_pixel_size_cm: tuple[float, float] | None = None
    description: str | None = field(default=None, repr=False)


def read_tiff(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    limits: ImageLimits | None = None,
) -> TiffImage:
    """Read a TIFF after validating its structure against ``limits``.

    Parameters
    ----------
    source : path or bytes
        The file, or its content.
    name : str, optional
        Name used in error messages (defaults to the path's name).
    limits : ImageLimits, optional
        Size limits; :class:`ImageLimits` defaults when omitted.

    Returns
    -------
    TiffImage

    Raises
    ------
    InvalidImageError
        Not a TIFF, truncated, inconsistent, looping IFDs, unsupported dtype, or any warning
        tifffile logs about the file.
    ImageTooLargeError
        A limit is exceeded (checked before decoding).
    """
    limits = limits or ImageLimits()
    if isinstance(source, bytes | bytearray | memoryview):
        content = bytes(source)
        label = name or "<bytes>"
    else:
        path = Path(source)
        label = name or path.name
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InvalidImageError(f"{label}: cannot be opened ({exc.strerror})") from exc
        if size > limits.max_file_bytes:
            raise ImageTooLargeError(
                f"{label}: file is {size} bytes, above the limit of {limits.max_file_bytes}; "
                "export a smaller image or raise ImageLimits.max_file_bytes"
            )
        content = path.read_bytes()
    if len(content) > limits.max_file_bytes:
        raise ImageTooLargeError(
            f"{label}: file is {len(content)} bytes, above the limit of {limits.max_file_bytes}"
        )
    if content[:4] not in _MAGICS:
        raise InvalidImageError(
            f"{label}: not a TIFF file (starts with {content[:4]!r}); "
            "upload the .TIF exported by the instrument"
        )
    # What tifffile finds wrong with a file it logs (captured for this thread only). No
    # ``warnings.catch_warnings`` here: it changes the filters of every thread, so reads on
    # two threads at once turned other threads' warnings into errors and could leave the
    # process with every warning an error for good.
    with capture_tifffile_warnings() as logged:
        try:
            return _read_validated(content, label, limits, logged)
        except (InvalidImageError, ImageTooLargeError):
            raise
        except Exception as exc:  # tifffile raises many types for corrupt files
            raise InvalidImageError(f"{label}: unreadable TIFF ({exc})") from exc


def _check_logged(logged: list[str], label: str) -> None:
    if logged:
        raise InvalidImageError(f"{label}: broken TIFF ({logged[0]})")


def _read_validated(
    content: bytes, label: str, limits: ImageLimits, logged: list[str]
) -> TiffImage:
    file_size = len(content)
    with tifffile.TiffFile(io.BytesIO(content)) as tif:
        pages: list[tifffile.TiffPage | tifffile.TiffFrame] = []
        for page in tif.pages:
            if len(pages) >= limits.max_pages:
                raise ImageTooLargeError(
                    f"{label}: more than {limits.max_pages} pages (or a looping page chain)"
                )
            pages.append(page)
        offsets_seen: set[int] = set()
        for page in pages:
            if page.offset in offsets_seen:
                raise InvalidImageError(f"{label}: page chain loops back to offset {page.offset}")
            offsets_seen.add(page.offset)
        if not pages:
            raise InvalidImageError(f"{label}: contains no image page")
        total_pixels = 0
        total_bytes = 0
        shapes = set()
        for index, page in enumerate(pages):
            if not isinstance(page, tifffile.TiffPage):
                raise InvalidImageError(f"{label}: page {index} could not be parsed")
            rows, cols = int(page.imagelength), int(page.imagewidth)
            samples = int(page.samplesperpixel)
            if rows <= 0 or cols <= 0 or int(page.imagedepth) != 1:
                raise InvalidImageError(
                    f"{label}: page {index} has invalid dimensions {rows}×{cols}"
                )
            if rows > limits.max_dimension or cols > limits.max_dimension:
                raise ImageTooLargeError(
                    f"{label}: page {index} is {rows}×{cols} pixels, above the limit of "
                    f"{limits.max_dimension} per side"
                )
            if samples < 1 or samples > limits.max_samples:
                raise InvalidImageError(
                    f"{label}: page {index} has {samples} samples per pixel "
                    f"(at most {limits.max_samples} accepted)"
                )
            try:
                dtype = np.dtype(page.dtype)
            except TypeError as exc:
                raise InvalidImageError(
                    f"{label}: page {index} has an unsupported sample format"
                ) from exc
            if dtype.name not in limits.allowed_dtypes:
                raise InvalidImageError(
                    f"{label}: page {index} has sample type {dtype.name}, accepted are "
                    f"{', '.join(sorted(limits.allowed_dtypes))}"
                )
            pixels = rows * cols
            nbytes = pixels * samples * dtype.itemsize
            total_pixels += pixels
            total_bytes += nbytes
            if total_pixels > limits.max_pixels:
                raise ImageTooLargeError(
                    f"{label}: {total_pixels} pixels declared, above the limit of "
                    f"{limits.max_pixels}"
                )
            if total_bytes > limits.max_bytes:
                raise ImageTooLargeError(
                    f"{label}: {total_bytes} bytes when decoded, above the limit of "
                    f"{limits.max_bytes}"
                )
            stored = 0
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
                if offset < 0 or count < 0 or offset + count > file_size:
                    raise InvalidImageError(
                        f"{label}: page {index} is truncated (strip at {offset} of {count} "
                        f"bytes past the end of the {file_size}-byte file)"
                    )
                stored += int(count)
            if len(page.dataoffsets) != len(page.databytecounts):
                raise InvalidImageError(f"{label}: page {index} has inconsistent strip tables")
            if page.compression == 1:
                if stored < nbytes:
                    raise InvalidImageError(
                        f"{label}: page {index} declares {stored} bytes of pixel data, "
                        f"{nbytes} needed for {rows}×{cols} {dtype.name}: file is truncated"
                    )
            elif stored == 0 or nbytes / stored > limits.max_compression_ratio:
                raise ImageTooLargeError(
                    f"{label}: page {index} would expand {stored} stored bytes to {nbytes} "
                    f"(ratio above {limits.max_compression_ratio}): refused as a "
                    "decompression bomb"
                )
            shapes.add(page.shape)
        # Structural limits first (the most specific message), then tifffile's complaints.
        _check_logged(logged, label)
        if len(shapes) != 1:
            raise InvalidImageError(
                f"{label}: pages have different shapes {sorted(shapes)}; "
                "export each image as its own file"
            )
        whole = _in_place(content, pages[0]) if len(pages) == 1 else None
        arrays = [whole] if whole is not None else [page.asarray() for page in pages]
        _check_logged(logged, label)
        expected = pages[0].shape
        for index, array in enumerate(arrays):
            if array.shape != expected:
                raise InvalidImageError(
                    f"{label}: page {index} decoded to {array.shape}, declared {expected}"
                )
        data = arrays[0] if len(arrays) == 1 else np.stack(arrays)
        if not data.dtype.isnative:
            data = data.astype(data.dtype.newbyteorder("="))
        data = np.ascontiguousarray(data)
        data.setflags(write=False)
        ome_xml = tif.ome_metadata if tif.is_ome else None
        first = pages[0]
        assert isinstance(first, tifffile.TiffPage)  # tifffile's first page is never a frame
        description = first.description or None
        return TiffImage(
            data=data,
            source=label,
            pages=len(pages),
            byteorder=tif.byteorder,
            ome_xml=ome_xml,
            physical_pixel_size_cm=_ome_pixel_size_cm(ome_xml) if ome_xml else None,
            description=description,
        )


def _in_place(content: bytes, page: tifffile.TiffPage | tifffile.TiffFrame) -> np.ndarray | None:
    """The pixels of an uncompressed page stored in one piece, as an array over ``content``
    itself: what ``page.asarray()`` reads (tifffile copies the bytes out first; here a 2048²
    frame is then not copied at all, or copied once to swap its bytes). ``None`` for any other
    layout (strips apart, compression, predictor, bit order, several samples)."""
    if not (
        isinstance(page, tifffile.TiffPage)
        and page.dtype is not None
        and page.is_contiguous
        and page.compression == 1
        and page.predictor == 1
        and page.fillorder == 1
        and page.samplesperpixel == 1
        and not page.is_subsampled
        and page.shape == (int(page.imagelength), int(page.imagewidth))
    ):
        return None
    dtype = np.dtype(page.parent.byteorder + page.dtype.char)
    count = int(page.imagelength) * int(page.imagewidth)
    offset = int(page.dataoffsets[0])
    if offset + count * dtype.itemsize > len(content):
        return None
    return np.frombuffer(content, dtype=dtype, count=count, offset=offset).reshape(page.shape)


_UNIT_TO_CM = {"m": 100.0, "cm": 1.0, "mm": 0.1, "µm": 1e-4, "um": 1e-4, "nm": 1e-7}


def _ome_pixel_size_cm(ome_xml: str) -> tuple[float, float] | None:
    # A regex over the Pixels element avoids an XML parser on untrusted input.
    match = re.search(r"<(?:\w+:)?Pixels\b([^>]*)>", ome_xml)
    if match is None:
        return None
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
    try:
        size_x = float(attrs["PhysicalSizeX"])
        size_y = float(attrs["PhysicalSizeY"])
    except (KeyError, ValueError):
        return None
    unit_x = _UNIT_TO_CM.get(attrs.get("PhysicalSizeXUnit", "µm"))
    unit_y = _UNIT_TO_CM.get(attrs.get("PhysicalSizeYUnit", "µm"))
    if unit_x is None or unit_y is None:
        return None
    return (size_y * unit_y, size_x * unit_x)
