"""Per-arm, per-day descriptive summaries."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from ._common import _f
from ._data import Adjustment, Cohort, Exclusion, _AsDict, prepare

__all__ = ["ArmDaySummary", "SummaryTable", "summarize"]


@dataclass(frozen=True, slots=True)
class ArmDaySummary(_AsDict):
    """Summary of one arm on one day; one value per animal (duplicates already averaged).

    With y_i the per-animal values on the analysis scale, i = 1..n:

    - ``n``: number of animals.
    - ``mean`` = (1/n) sum y_i; ``sd`` = sqrt(sum (y_i - mean)^2 / (n - 1)) (None if n < 2);
      ``sem`` = sd / sqrt(n).
    - ``geometric_mean`` in the original unit (p/s): 10**mean on ``log10``, exp(mean) on
      ``ln``, exp(mean(ln x)) on ``linear`` when all x > 0, otherwise None (``log1p``).
      ``geometric_ci_low/high`` back-transform mean -/+ t(0.975, n-1) * sem (None if n < 2).
      With a baseline these are geometric mean fold changes.
    - ``median``, ``q1``, ``q3`` on the analysis scale: numpy's default linear
      interpolation (R ``quantile(type = 7)``).
    """

    arm: str
    day: float
    n: int
    mean: float
    sd: float | None
    sem: float | None
    geometric_mean: float | None
    geometric_ci_low: float | None
    geometric_ci_high: float | None
    median: float
    q1: float
    q3: float


@dataclass(frozen=True, slots=True)
class SummaryTable(_AsDict):
    """Summaries of each arm on each day, with the data choices that produced them."""

    site: str
    scale: str
    floor: float | None
    baseline: str | float | None
    rows: tuple[ArmDaySummary, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def _geo(y: np.ndarray, raw: np.ndarray, scale: str) -> tuple[float | None, ...]:
    if scale == "log10":
        logs, back = y, lambda v: 10.0**v
    elif scale == "ln":
        logs, back = y, math.exp
    elif scale == "linear" and np.all(raw > 0):
        logs, back = np.log(raw), math.exp
    else:
        return None, None, None
    m = float(np.mean(logs, dtype=np.float64))
    if logs.size < 2:
        return _f(back(m)), None, None
    half = stats.t.ppf(0.975, logs.size - 1) * np.std(logs, ddof=1) / math.sqrt(logs.size)
    return _f(back(m)), _f(back(m - half)), _f(back(m + half))


def summarize(
    cohort: Cohort,
    *,
    site: str = "whole_body",
    arms: Sequence[str] | None = None,
    scale: Literal["log10", "ln", "log1p", "linear"] = "log10",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
    baseline: Literal["first"] | float | None = None,
) -> SummaryTable:
    """Per-arm per-day n, mean, SD, SEM, geometric mean with 95 % CI, median and IQR.

    Parameters
    ----------
    cohort : Cohort
    site : str
        Anatomical site to summarise.
    arms : sequence of str, optional
        Arms to include (default: all).
    scale : {"log10", "ln", "log1p", "linear"}
        Scale of ``mean``, ``sd``, ``sem``, ``median``, ``q1``, ``q3``.
    floor : float, optional
        Values below it (e.g. the detection limit, p/s) are raised to it before the log;
        required on log scales when a value is <= 0. Each floored value is reported.
    exclude_flags : collection of str, optional
        QC flags that exclude an observation (default ``DEFAULT_EXCLUDE_FLAGS``).
    baseline : "first" or float, optional
        Normalise each animal to its first usable image or to the image of that day.

    Returns
    -------
    SummaryTable
        ``rows`` sorted by arm then day; see :class:`ArmDaySummary` for the formulas.
    """
    arms = tuple(arms) if arms is not None else cohort.arms
    prep = prepare(
        cohort,
        arms=arms,
        site=site,
        scale=scale,
        floor=floor,
        exclude_flags=exclude_flags,
        baseline=baseline,
    )
    rows = []
    for (arm, day), sub in prep.frame.groupby(["arm", "day"], sort=True):
        y = sub["y"].to_numpy(dtype=np.float64)
        raw = sub["value"].to_numpy(dtype=np.float64)
        n = y.size
        sd = float(np.std(y, ddof=1)) if n > 1 else None
        gm, glo, ghi = _geo(y, raw, scale)
        q1, med, q3 = np.quantile(y, [0.25, 0.5, 0.75])
        rows.append(
            ArmDaySummary(
                arm=str(arm),
                day=float(day),
                n=n,
                mean=float(np.mean(y, dtype=np.float64)),
                sd=sd,
                sem=sd / math.sqrt(n) if sd is not None else None,
                geometric_mean=gm,
                geometric_ci_low=glo,
                geometric_ci_high=ghi,
                median=float(med),
                q1=float(q1),
                q3=float(q3),
            )
        )
    return SummaryTable(
        site=site,
        scale=scale,
        floor=floor,
        baseline=baseline,
        rows=tuple(rows),
        exclusions=tuple(prep.exclusions),
        adjustments=tuple(prep.adjustments),
    )
