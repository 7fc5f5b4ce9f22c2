"""T/C % and tumour-growth inhibition (TGI %) on geometric means."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._common import Effect, _f
from ._compare import SkippedDay, compare_by_day
from ._data import Adjustment, Cohort, Exclusion, _AsDict, prepare, require_animals
from ._errors import EmptyWindowError, InsufficientDataError, InvalidInputError
from ._summary import summarize

__all__ = ["TCDay", "TCTable", "TGIResult", "tc_ratio", "tumor_growth_inhibition"]


@dataclass(frozen=True, slots=True)
class TCDay(_AsDict):
    """T/C on one day.

    ``geometric_mean_control``/``_treated``: 10**mean(log10 value) of the arm (p/s).
    ``tc_percent``: estimate = 100 x GM_T / GM_C = 100 x 10**(mean log10 T - mean log10 C),
    CI = 100 x 10**(Welch 95 % CI of the difference of mean log10 values).
    """

    day: float
    n_control: int
    n_treated: int
    geometric_mean_control: float
    geometric_mean_treated: float
    tc_percent: Effect


@dataclass(frozen=True, slots=True)
class TCTable(_AsDict):
    """T/C % per day of one treated arm vs its control (log10 scale, no baseline)."""

    control: str
    treated: str
    site: str
    floor: float | None
    rows: tuple[TCDay, ...]
    skipped_days: tuple[SkippedDay, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def tc_ratio(
    cohort: Cohort,
    *,
    control: str,
    treated: str,
    site: str = "whole_body",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
) -> TCTable:
    """Treated / control ratio of geometric means (T/C %) per day with a 95 % CI.

    T/C % = 100 x GM(treated) / GM(control), GM the geometric mean of per-animal values on
    that day; the CI back-transforms the Welch CI of mean log10(T) - mean log10(C). Days
    with fewer than 2 animals in an arm are skipped (listed). Below 100 % the treated
    tumours are smaller. (NCI criterion on volumes: T/C <= 42 % is active; Bissery et al.
    1991, Cancer Res 51:4845.)
    """
    table = compare_by_day(
        cohort,
        control=control,
        treated=treated,
        site=site,
        scale="log10",
        floor=floor,
        exclude_flags=exclude_flags,
        correction="none",
    )
    summ = summarize(
        cohort,
        site=site,
        arms=(control, treated),
        scale="log10",
        floor=floor,
        exclude_flags=exclude_flags,
    )
    gm = {(r.arm, r.day): r.geometric_mean for r in summ.rows}
    rows = []
    for r in table.rows:
        e = r.mean_difference
        gm_c, gm_t, est = gm[(control, r.day)], gm[(treated, r.day)], e.estimate
        # log10 scale and a day both arms were compared on: all three are numbers
        assert gm_c is not None and gm_t is not None and est is not None
        rows.append(
            TCDay(
                r.day,
                r.n_control,
                r.n_treated,
                float(gm_c),
                float(gm_t),
                Effect(
                    "T/C % = 100 x geometric mean(treated) / geometric mean(control)",
                    100.0 * 10.0 ** float(est),
                    100.0 * 10.0**e.ci_low if e.ci_low is not None else None,
                    100.0 * 10.0**e.ci_high if e.ci_high is not None else None,
                ),
            )
        )
    return TCTable(
        control,
        treated,
        site,
        floor,
        tuple(rows),
        table.skipped_days,
        table.exclusions,
        table.adjustments,
    )


@dataclass(frozen=True, slots=True)
class TGIResult(_AsDict):
    """Tumour-growth inhibition between a start and an end day.

    With GM the geometric mean (p/s) over the animals imaged on *both* days::

        TGI % = 100 x (1 - (GM_T(end) - GM_T(start)) / (GM_C(end) - GM_C(start)))

    the classic %TGI = (1 - ΔT/ΔC) x 100 (e.g. Hather et al. 2014, Cancer Inform 13(S4):65,
    eq. 1), computed on geometric rather than arithmetic means because flux is
    log-normal. 100 % = no growth in the treated arm, > 100 % = regression, 0 % = growth as
    in control. ``tgi_percent`` is None (with a ``warning``) when the control did not grow
    (ΔC <= 0). A point estimate: no CI is given (use :func:`compare_growth_rates` or the
    mixed model for inference).
    """

    control: str
    treated: str
    site: str
    start_day: float
    end_day: float
    n_control: int
    n_treated: int
    geometric_mean_control_start: float
    geometric_mean_control_end: float
    geometric_mean_treated_start: float
    geometric_mean_treated_end: float
    tgi_percent: float | None
    warning: str | None
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def tumor_growth_inhibition(
    cohort: Cohort,
    *,
    control: str,
    treated: str,
    end_day: float,
    start_day: float | None = None,
    site: str = "whole_body",
    floor: float | None = None,
    exclude_flags: Collection[str] | None = None,
) -> TGIResult:
    """%TGI between ``start_day`` (default: the first day both arms were imaged) and
    ``end_day``; see :class:`TGIResult` for the formula. Animals lacking an image on
    either day are excluded and reported."""
    if control == treated:
        raise InvalidInputError(f"control and treated are the same arm {control!r}")
    prep = prepare(
        cohort,
        arms=(control, treated),
        site=site,
        scale="log10",
        floor=floor,
        exclude_flags=exclude_flags,
    )
    df = prep.frame
    if start_day is None:
        firsts = [df.loc[df["arm"] == a, "day"].min() for a in (control, treated)]
        start_day = float(max(firsts))
    start, end = float(start_day), float(end_day)
    if not start < end:
        raise EmptyWindowError(f"start day {start:g} must precede end day {end:g}")
    excl = list(prep.exclusions)
    kept = []
    for animal, sub in df.groupby("animal", sort=True):
        days = set(sub["day"].tolist())
        missing = [d for d in (start, end) if d not in days]
        if missing:
            excl.append(
                Exclusion(
                    str(animal),
                    str(sub["arm"].iloc[0]),
                    site,
                    None,
                    f"no usable image on day {', '.join(f'{d:g}' for d in missing)} for TGI",
                )
            )
            continue
        kept.append(sub[sub["day"].isin([start, end])])
    if not kept:
        raise InsufficientDataError(
            f"no animal at site {site!r} has images on both day {start:g} and day {end:g}"
        )
    k = pd.concat(kept)
    for a in (control, treated):
        require_animals(k, a, f"TGI between day {start:g} and {end:g} at site {site!r}")

    def gm(arm: str, day: float) -> float:
        y = k.loc[(k["arm"] == arm) & (k["day"] == day), "y"].to_numpy(dtype=np.float64)
        return float(10.0 ** np.mean(y))

    cs, ce, ts, te = gm(control, start), gm(control, end), gm(treated, start), gm(treated, end)
    dc = ce - cs
    tgi = None
    warning = None
    if dc <= 0:
        warning = (
            f"control arm {control!r} did not grow between day {start:g} and {end:g} "
            "(geometric mean did not increase): TGI is undefined"
        )
    else:
        tgi = _f(100.0 * (1.0 - (te - ts) / dc))
    return TGIResult(
        control,
        treated,
        site,
        start,
        end,
        int(k.loc[k["arm"] == control, "animal"].nunique()),
        int(k.loc[k["arm"] == treated, "animal"].nunique()),
        cs,
        ce,
        ts,
        te,
        tgi,
        warning,
        tuple(excl),
        tuple(prep.adjustments),
    )
