"""Errors raised by :mod:`imaging`.

One hierarchy, so a caller can catch everything the numeric core refuses with
``except ImagingError``::

    ImagingError                 base class; never raised directly
    ├── InvalidImageError        a file is not a readable image: wrong magic, truncated,
    │   │                        inconsistent tags, looping IFD chain, unsupported dtype,
    │   │                        or tifffile reported the file as broken
    │   └── ImageTooLargeError   declared or decoded size exceeds the configured
    │                            :class:`~imaging.ImageLimits` (incl. decompression bombs)
    ├── ClickFolderError         an IVIS / Living Image export folder or zip is unusable:
    │                            missing ClickInfo.txt or luminescent image, malformed
    │                            text, unsafe or oversized zip members
    ├── LivingImageExportError   a Living Image ROI-measurement CSV/TXT cannot be parsed
    ├── CalibrationError         counts cannot be turned into radiance: missing calibration
    │                            constant (C-ccd for this FOV / f-number), unknown binning,
    │                            frames of mismatched shape
    └── RoiError                 an ROI is geometrically invalid (non-positive size,
                                 degenerate polygon) or lies entirely outside the image

Every message names the file (when there is one) and what the scientist can do about it.
Nothing is half-read: a reader either returns a complete object or raises.
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "ClickFolderError",
    "ImageTooLargeError",
    "ImagingError",
    "InvalidImageError",
    "LivingImageExportError",
    "RoiError",
]


class ImagingError(Exception):
    """Base class of every error raised by :mod:`imaging`."""


class InvalidImageError(ImagingError):
    """The file is not a valid, readable image."""


class ImageTooLargeError(InvalidImageError):
    """The image exceeds the configured limits (dimensions, pixels, pages, bytes, ratio)."""


class ClickFolderError(ImagingError):
    """An IVIS / Living Image export folder (or its zip) is incomplete or unsafe."""


class LivingImageExportError(ImagingError):
    """A Living Image ROI-measurement export cannot be parsed."""


class CalibrationError(ImagingError):
    """Counts cannot be converted to radiance with the available calibration data."""


class RoiError(ImagingError):
    """An ROI is invalid or cannot be measured on this image."""
