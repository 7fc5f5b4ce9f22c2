"""Treatment vs control day by day: Welch and Mann-Whitney tests on each imaging day.

Per-animal summaries (AUC, growth rate) and their comparison are in :mod:`cohorts._per_animal`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._common import Effect, TestResult, adjust, hodges_lehmann, scale_label, welch
from ._data import (
    Adjustment,
    Cohort,
    Exclusion,
    _AsDict,
    _Prepared,
    prepare,
    require_animals,
)
from ._errors import EmptyWindowError, InsufficientDataError, InvalidInputError

__all__ = ["DayComparison", "DayComparisonTable", "SkippedDay", "compare_by_day"]

ScaleArg = Literal["log10", "ln", "log1p", "linear"]


@dataclass(frozen=True, slots=True)
class SkippedDay(_AsDict):
    """A day left out of a per-day analysis and why (e.g. fewer than 2 animals in an arm)."""

    day: float
    reason: str


@dataclass(frozen=True, slots=True)
class DayComparison(_AsDict):
    """Treated vs control on one day (one value per animal).

    - ``mean_difference``: mean(treated) - mean(control) on the analysis scale with the
      Welch 95 % CI; on log10 this is log10 of the ratio of geometric means.
    - ``welch``: Welch t = diff / sqrt(s_T^2/n_T + s_C^2/n_C), Welch-Satterthwaite df
      (Welch 1947); ``p_adjusted`` across the days of the table.
    - ``shift``: Hodges-Lehmann median of pairwise differences with its 95 % CI
      (Hodges & Lehmann 1963; Bauer 1972), as R ``wilcox.test(conf.int = TRUE)``.
    - ``mann_whitney``: U of the treated arm, two-sided (Mann & Whitney 1947);
      ``p_adjusted`` across days.
    """

    day: float
    n_control: int
    n_treated: int
    mean_difference: Effect
    welch: TestResult
    shift: Effect
    mann_whitney: TestResult


@dataclass(frozen=True, slots=True)
class DayComparisonTable(_AsDict):
    """Per-day comparisons of one treated arm with its control.

    ``correction`` (``holm`` or ``bh``) is applied separately to the Welch and the
    Mann-Whitney p-values across the days in ``rows``.
    """

    control: str
    treated: str
    site: str
    scale: str
    floor: float | None
    baseline: str | float | None
    correction: str
    rows: tuple[DayComparison, ...]
    skipped_days: tuple[SkippedDay, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def _prep2(
    cohort: Cohort,
    control: str,
    treated: str,
    site: str,
    scale: str,
    floor: float | None,
    exclude_flags: Collection[str] | None,
    baseline: Literal["first"] | float | None = None,
) -> _Prepared:
    if control == treated:
        raise InvalidInputError(f"control and treated are the same arm {control!r}")
    return prepare(
        cohort,
        arms=(control, treated),
        site=site,
        scale=scale,
        floor=floor,
        exclude_flags=exclude_flags,
        baseline=baseline,
    )


def compare_by_day(
    cohort: Cohort,
    *,
    control: str,
    treated: str,
    site: str = "whole_body",
    scale: ScaleArg = "log10",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
    baseline: Literal["first"] | float | None = None,
    correction: Literal["holm", "bh", "none"] = "holm",
    days: Sequence[float] | None = None,
) -> DayComparisonTable:
    """Welch t and Mann-Whitney U of treated vs control on each imaging day.

    A day is tested when both arms have at least 2 animals on it; other days are listed in
    ``skipped_days``. P-values are adjusted across the tested days with Holm (default,
    Holm 1979) or Benjamini-Hochberg (``bh``, 1995) via statsmodels ``multipletests``.

    Parameters are as for :func:`summarize`; ``days`` restricts the table to these days.
    """
    prep = _prep2(cohort, control, treated, site, scale, floor, exclude_flags, baseline)
    df = prep.frame
    for arm in (control, treated):
        require_animals(df, arm, f"per-day comparisons at site {site!r}")
    label = scale_label(scale, baseline)
    all_days = sorted(df["day"].unique())
    if days is not None:
        wanted = {float(d) for d in days}
        missing = sorted(wanted - set(all_days))
        if missing:
            raise EmptyWindowError(
                f"no usable observation at site {site!r} on day(s) "
                f"{', '.join(f'{d:g}' for d in missing)} for arms {control!r}, {treated!r}"
            )
        all_days = [d for d in all_days if d in wanted]
    rows_raw = []
    skipped = []
    for day in all_days:
        sub = df[df["day"] == day]
        yc = sub.loc[sub["arm"] == control, "y"].to_numpy(dtype=np.float64)
        yt = sub.loc[sub["arm"] == treated, "y"].to_numpy(dtype=np.float64)
        if yc.size < 2 or yt.size < 2:
            skipped.append(
                SkippedDay(
                    float(day),
                    f"{yc.size} control ({control}) and {yt.size} treated ({treated}) "
                    "animals; at least 2 per arm are needed",
                )
            )
            continue
        eff, wt = welch(yt, yc, label)
        shift, mw = hodges_lehmann(yt, yc, label)
        rows_raw.append((float(day), yc.size, yt.size, eff, wt, shift, mw))
    if not rows_raw:
        raise InsufficientDataError(
            f"no day at site {site!r} has at least 2 animals in both {control!r} and {treated!r}"
        )
    w_adj = adjust([r[4] for r in rows_raw], correction)
    m_adj = adjust([r[6] for r in rows_raw], correction)
    rows = tuple(
        DayComparison(r[0], r[1], r[2], r[3], wa, r[5], ma)
        for r, wa, ma in zip(rows_raw, w_adj, m_adj, strict=True)
    )
    return DayComparisonTable(
        control=control,
        treated=treated,
        site=site,
        scale=scale,
        floor=floor,
        baseline=baseline,
        correction=correction,
        rows=rows,
        skipped_days=tuple(skipped),
        exclusions=tuple(prep.exclusions),
        adjustments=tuple(prep.adjustments),
    )
