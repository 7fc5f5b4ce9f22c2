"""Exceptions raised by :mod:`cohorts`.

Every error raised on purpose by this package derives from :class:`CohortsError`::

    CohortsError                 base class; catch this to handle any cohorts failure
    ├── InvalidInputError        malformed input: unknown arm or scale, duplicate end record,
    │                            an animal listed in two arms, a value <= 0 on a log scale
    │                            without a floor, conflicting options (also a ValueError)
    ├── MixedStudiesError        the arms being compared come from different studies
    ├── NoDataError              nothing to analyse: a site or arm with no usable observation
    │   └── EmptyWindowError     a day window that contains no common observation period
    └── InsufficientDataError    data exist but too few to compute the statistic, e.g. an
                                 arm with fewer than 2 animals or no event in a survival
                                 analysis

Messages name the arm, site, day or animal concerned and say what is missing, so a
scientist can act on them without reading the code. A mixed model that does not converge
is *not* an error: it is reported in the result (``converged``, ``fallback_used``,
``warnings``).
"""

from __future__ import annotations

__all__ = [
    "CohortsError",
    "EmptyWindowError",
    "InsufficientDataError",
    "InvalidInputError",
    "MixedStudiesError",
    "NoDataError",
]


class CohortsError(Exception):
    """Base class of every error raised by :mod:`cohorts`."""


class InvalidInputError(CohortsError, ValueError):
    """The input is malformed or the options contradict each other."""


class MixedStudiesError(CohortsError):
    """The arms being compared belong to different studies."""


class NoDataError(CohortsError):
    """A site, arm or day selection contains no usable observation."""


class EmptyWindowError(NoDataError):
    """The requested (or common) day window is empty."""


class InsufficientDataError(CohortsError):
    """There is data, but too little for the requested statistic."""
