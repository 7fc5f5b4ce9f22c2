"""Per-animal metrics (area under the curve, growth rate) and their treatment vs control
comparison by Welch and Mann-Whitney tests."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ._common import Effect, TestResult, hodges_lehmann, scale_label, welch
from ._compare import ScaleArg
from ._data import (
    Adjustment,
    Cohort,
    Exclusion,
    _AsDict,
    _Prepared,
    prepare,
    require_animals,
)
from ._errors import EmptyWindowError, InvalidInputError

__all__ = [
    "AnimalMetric",
    "AnimalMetricComparison",
    "AnimalMetricTable",
    "compare_auc",
    "compare_growth_rates",
    "per_animal_auc",
    "per_animal_growth_rates",
]


@dataclass(frozen=True, slots=True)
class AnimalMetric(_AsDict):
    """One animal's summary value (its AUC or its growth rate).

    ``value``: AUC (scale unit x day) or OLS slope (scale unit per day).
    ``intercept``: OLS intercept (slopes only). ``n_points``: images used.
    ``doubling_time_days`` (slopes on log10 / ln only): log10(2)/slope or ln(2)/slope,
    None when slope <= 0 (no doubling).
    """

    animal: str
    arm: str
    value: float
    n_points: int
    first_day: float
    last_day: float
    intercept: float | None = None
    doubling_time_days: float | None = None


@dataclass(frozen=True, slots=True)
class AnimalMetricTable(_AsDict):
    """Per-animal metrics of one or more arms; ``metric`` is ``auc`` or ``growth_rate``."""

    metric: str
    unit: str
    site: str
    scale: str
    floor: float | None
    window: tuple[float, float] | None
    animals: tuple[AnimalMetric, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


@dataclass(frozen=True, slots=True)
class AnimalMetricComparison(_AsDict):
    """Per-animal AUC or growth rate compared between a treated arm and its control.

    - ``n_control``/``n_treated``: animals contributing; ``mean_*``/``sd_*`` of the metric.
    - ``mean_difference`` and ``welch``: Welch t test (see :class:`cohorts.DayComparison`).
    - ``shift`` and ``mann_whitney``: Hodges-Lehmann shift and Mann-Whitney U.
    - ``doubling_time_control_days``/``..._treated_days`` (growth rate on log scales):
      log_b(2) / mean slope of the arm, None when the mean slope <= 0.
    """

    metric: str
    unit: str
    control: str
    treated: str
    site: str
    scale: str
    window: tuple[float, float] | None
    n_control: int
    n_treated: int
    mean_control: float
    mean_treated: float
    sd_control: float
    sd_treated: float
    mean_difference: Effect
    welch: TestResult
    shift: Effect
    mann_whitney: TestResult
    doubling_time_control_days: float | None
    doubling_time_treated_days: float | None
    animals: tuple[AnimalMetric, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def _doubling(slope: float, scale: str) -> float | None:
    if slope <= 0 or scale not in ("log10", "ln"):
        return None
    return (math.log10(2.0) if scale == "log10" else math.log(2.0)) / slope


def _check_window(window: tuple[float, float] | None) -> tuple[float, float] | None:
    if window is None:
        return None
    a, b = (float(window[0]), float(window[1]))
    if not (math.isfinite(a) and math.isfinite(b)) or a >= b:
        raise EmptyWindowError(f"window ({a:g}, {b:g}) is empty: the start must precede the end")
    return a, b


def _auc_animals(
    prep: _Prepared, window: tuple[float, float] | None
) -> tuple[list[AnimalMetric], list[Exclusion], tuple[float, float]]:
    df = prep.frame
    spans = df.groupby("animal")["day"].agg(["min", "max"])
    if window is None:
        a, b = float(spans["min"].max()), float(spans["max"].min())
        if a >= b:
            late = spans["min"].idxmax()
            early = spans["max"].idxmin()
            raise EmptyWindowError(
                f"the animals at site {prep.site!r} share no common day window: animal "
                f"{late!r} starts on day {a:g} but animal {early!r} ends on day {b:g}; pass "
                "window=(start, end) to exclude animals that do not cover it"
            )
    else:
        a, b = window
    out, excl = [], []
    for animal, sub in df.groupby("animal", sort=True):
        arm = str(sub["arm"].iloc[0])
        d = sub["day"].to_numpy(dtype=np.float64)
        y = sub["y"].to_numpy(dtype=np.float64)
        if d[0] > a or d[-1] < b:
            excl.append(
                Exclusion(
                    str(animal),
                    arm,
                    prep.site,
                    None,
                    f"images from day {d[0]:g} to {d[-1]:g} do not cover the AUC window "
                    f"[{a:g}, {b:g}]",
                )
            )
            continue
        inner = d[(d > a) & (d < b)]
        grid = np.concatenate([[a], inner, [b]])
        yy = np.interp(grid, d, y)
        auc = float(np.trapezoid(yy, grid))
        out.append(AnimalMetric(str(animal), arm, auc, int(((d >= a) & (d <= b)).sum()), a, b))
    return out, excl, (a, b)


def _slope_animals(
    prep: _Prepared, window: tuple[float, float] | None
) -> tuple[list[AnimalMetric], list[Exclusion]]:
    df = prep.frame
    if window is not None:
        df = df[(df["day"] >= window[0]) & (df["day"] <= window[1])]
    out, excl = [], []
    for animal in sorted(prep.frame["animal"].unique()):
        sub = df[df["animal"] == animal]
        arm = str(prep.frame.loc[prep.frame["animal"] == animal, "arm"].iloc[0])
        d = sub["day"].to_numpy(dtype=np.float64)
        y = sub["y"].to_numpy(dtype=np.float64)
        if np.unique(d).size < 2:
            where = "" if window is None else f" in window [{window[0]:g}, {window[1]:g}]"
            excl.append(
                Exclusion(
                    str(animal),
                    arm,
                    prep.site,
                    None,
                    f"{np.unique(d).size} imaging day(s){where}; a slope needs at least 2",
                )
            )
            continue
        dc = d - d.mean()
        slope = float(np.dot(dc, y - y.mean()) / np.dot(dc, dc))
        intercept = float(y.mean() - slope * d.mean())
        out.append(
            AnimalMetric(
                str(animal),
                arm,
                slope,
                int(d.size),
                float(d[0]),
                float(d[-1]),
                intercept,
                _doubling(slope, prep.scale),
            )
        )
    return out, excl


def per_animal_auc(
    cohort: Cohort,
    *,
    arms: Sequence[str] | None = None,
    site: str = "whole_body",
    scale: ScaleArg = "log10",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
    baseline: Literal["first"] | float | None = None,
    window: tuple[float, float] | None = None,
) -> AnimalMetricTable:
    """Area under each animal's curve over a common day window (trapezoid rule).

    AUC_i = sum_k (d_{k+1} - d_k) (y_k + y_{k+1}) / 2 over the animal's images inside
    ``window`` = [a, b], with y linearly interpolated at a and b when no image falls
    exactly there. Unit: scale unit x day (e.g. log10(p/s) x day).

    ``window`` None uses the widest window every animal covers: [latest first image,
    earliest last image]; if that is empty, :class:`EmptyWindowError` names the animals
    responsible. With an explicit window, animals not covering it are excluded (reported).
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
    metrics, excl, win = _auc_animals(prep, _check_window(window))
    return AnimalMetricTable(
        "auc",
        f"{scale_label(scale, baseline)} x day",
        site,
        scale,
        floor,
        win,
        tuple(metrics),
        tuple(prep.exclusions + excl),
        tuple(prep.adjustments),
    )


def per_animal_growth_rates(
    cohort: Cohort,
    *,
    arms: Sequence[str] | None = None,
    site: str = "whole_body",
    scale: ScaleArg = "log10",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
    window: tuple[float, float] | None = None,
) -> AnimalMetricTable:
    """Each animal's growth rate: the OLS slope of y on day (response-feature analysis).

    slope_i = sum (d - mean d)(y - mean y) / sum (d - mean d)^2 over the animal's images
    (inside ``window`` if given); animals with fewer than 2 distinct days are excluded.
    Doubling time = log10(2)/slope (log10) or ln(2)/slope (ln), in days, None if slope <= 0.
    With ``scale="log1p"`` this is tumr's ``rfeat`` slope of log1p(Volume) on time.
    """
    arms = tuple(arms) if arms is not None else cohort.arms
    prep = prepare(
        cohort, arms=arms, site=site, scale=scale, floor=floor, exclude_flags=exclude_flags
    )
    metrics, excl = _slope_animals(prep, _check_window(window))
    return AnimalMetricTable(
        "growth_rate",
        f"{scale_label(scale)} per day",
        site,
        scale,
        floor,
        _check_window(window),
        tuple(metrics),
        tuple(prep.exclusions + excl),
        tuple(prep.adjustments),
    )


def _compare_metric(table: AnimalMetricTable, control: str, treated: str) -> AnimalMetricComparison:
    df = pd.DataFrame([(m.arm, m.animal) for m in table.animals], columns=["arm", "animal"])
    what = "AUC" if table.metric == "auc" else "growth rates"
    for arm in (control, treated):
        require_animals(df, arm, f"{what} at site {table.site!r}")
    vc = np.array([m.value for m in table.animals if m.arm == control], dtype=np.float64)
    vt = np.array([m.value for m in table.animals if m.arm == treated], dtype=np.float64)
    label = "AUC" if table.metric == "auc" else "growth rate"
    label = f"{label} ({table.unit})"
    eff, wt = welch(vt, vc, label)
    shift, mw = hodges_lehmann(vt, vc, label)
    growth = table.metric == "growth_rate"
    return AnimalMetricComparison(
        metric=table.metric,
        unit=table.unit,
        control=control,
        treated=treated,
        site=table.site,
        scale=table.scale,
        window=table.window,
        n_control=int(vc.size),
        n_treated=int(vt.size),
        mean_control=float(vc.mean()),
        mean_treated=float(vt.mean()),
        sd_control=float(vc.std(ddof=1)),
        sd_treated=float(vt.std(ddof=1)),
        mean_difference=eff,
        welch=wt,
        shift=shift,
        mann_whitney=mw,
        doubling_time_control_days=_doubling(float(vc.mean()), table.scale) if growth else None,
        doubling_time_treated_days=_doubling(float(vt.mean()), table.scale) if growth else None,
        animals=table.animals,
        exclusions=table.exclusions,
        adjustments=table.adjustments,
    )


def compare_auc(
    cohort: Cohort,
    *,
    control: str,
    treated: str,
    site: str = "whole_body",
    scale: ScaleArg = "log10",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
    baseline: Literal["first"] | float | None = None,
    window: tuple[float, float] | None = None,
) -> AnimalMetricComparison:
    """Per-animal AUC (see :func:`per_animal_auc`) of treated vs control: Welch t and
    Mann-Whitney U. Every animal of both arms must cover the window (or is excluded)."""
    if control == treated:
        raise InvalidInputError(f"control and treated are the same arm {control!r}")
    table = per_animal_auc(
        cohort,
        arms=(control, treated),
        site=site,
        scale=scale,
        floor=floor,
        exclude_flags=exclude_flags,
        baseline=baseline,
        window=window,
    )
    return _compare_metric(table, control, treated)


def compare_growth_rates(
    cohort: Cohort,
    *,
    control: str,
    treated: str,
    site: str = "whole_body",
    scale: ScaleArg = "log10",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
    window: tuple[float, float] | None = None,
) -> AnimalMetricComparison:
    """Per-animal OLS growth rates (see :func:`per_animal_growth_rates`) of treated vs
    control: Welch t (as tumr ``rfeat(comparison = "t.test")``) and Mann-Whitney U."""
    if control == treated:
        raise InvalidInputError(f"control and treated are the same arm {control!r}")
    table = per_animal_growth_rates(
        cohort,
        arms=(control, treated),
        site=site,
        scale=scale,
        floor=floor,
        exclude_flags=exclude_flags,
        window=window,
    )
    return _compare_metric(table, control, treated)
