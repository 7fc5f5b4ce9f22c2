"""The one place where a ``cohorts`` error becomes the API's 422 problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import cohorts
from app.errors import Unprocessable

T = TypeVar("T")


def run_cohorts(compute: Callable[[], T]) -> T:
    """``compute()``, a :class:`cohorts.CohortsError` becoming a 422 problem (its message kept)."""
    try:
        return compute()
    except cohorts.CohortsError as exc:
        raise Unprocessable(str(exc)) from exc
