"""Site positivity: when each animal's site becomes positive (a threshold, k consecutive
images) and incidence by day, treated vs control by Fisher's exact test."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._common import Effect, TestResult, adjust, fisher_2x2
from ._compare import SkippedDay
from ._data import Adjustment, Cohort, Exclusion, _AsDict, prepare
from ._errors import InsufficientDataError, InvalidInputError

__all__ = [
    "AnimalOnset",
    "IncidenceDay",
    "IncidenceTable",
    "OnsetTable",
    "incidence_by_day",
    "site_onsets",
]


@dataclass(frozen=True, slots=True)
class AnimalOnset(_AsDict):
    """When (if ever) an animal's site became positive.

    ``onset_day``: first day of the first run of ``consecutive`` positive images (value
    >= the animal's threshold), None if never positive. ``time``/``event``: the survival
    time — ``onset_day`` with event True, else censored (event False) at the end record's
    day or, without one, at the last usable image (``censor_reason`` says which). With
    ``death_is_event`` a death / humane endpoint without onset is an event at its day.
    ``reason``: why the time ends — ``onset`` (event), the end record's reason
    (``death``, ``humane_endpoint``, ``withdrawn``, ``study_end``; an event only for
    death / humane endpoint with ``death_is_event``, else censored) or ``last_image`` (no
    end record: censored at the last usable image).
    """

    animal: str
    arm: str
    threshold: float
    onset_day: float | None
    time: float
    event: bool
    censor_reason: str | None
    n_images: int
    reason: str = "onset"


@dataclass(frozen=True, slots=True)
class OnsetTable(_AsDict):
    """Positivity of every animal at one site; ``rule`` states the threshold used."""

    site: str
    rule: str
    consecutive: int
    death_is_event: bool
    animals: tuple[AnimalOnset, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def site_onsets(
    cohort: Cohort,
    *,
    site: str,
    arms: Sequence[str] | None = None,
    threshold: float | None = None,
    background: float | Mapping[str, float] | None = None,
    background_multiple: float | None = None,
    consecutive: int = 1,
    exclude_flags: Collection[str] | None = None,
    death_is_event: bool = False,
) -> OnsetTable:
    """Find when each animal's ``site`` becomes positive.

    Give either ``threshold`` (absolute, in the value's unit, e.g. p/s) or
    ``background_multiple`` with ``background`` (one value, or one per animal): the
    animal's threshold is then ``background_multiple x background``. An image is positive
    when its (duplicate-averaged) value >= threshold; the animal becomes positive at the
    first of ``consecutive`` successive positive images (k = 1 by default).
    """
    if (threshold is None) == (background_multiple is None):
        raise InvalidInputError(
            "give exactly one of threshold= (absolute) or background_multiple= (with background=)"
        )
    if background_multiple is not None and background is None:
        raise InvalidInputError("background_multiple= needs background= (one value or per animal)")
    if not isinstance(consecutive, int) or consecutive < 1:
        raise InvalidInputError(f"consecutive must be an integer >= 1, got {consecutive!r}")
    arms = tuple(arms) if arms is not None else cohort.arms
    prep = prepare(
        cohort, arms=arms, site=site, scale="linear", floor=None, exclude_flags=exclude_flags
    )
    if threshold is not None:
        rule = f"value >= {threshold:g} on {consecutive} consecutive image(s)"
    else:
        rule = (
            f"value >= {background_multiple:g} x background on {consecutive} consecutive image(s)"
        )
    out = []
    excl = list(prep.exclusions)
    for animal, sub in prep.frame.groupby("animal", sort=True):
        animal = str(animal)
        arm = str(sub["arm"].iloc[0])
        if threshold is not None:
            thr = float(threshold)
        else:
            if isinstance(background, Mapping):
                if animal not in background:
                    excl.append(Exclusion(animal, arm, site, None, "no background value given"))
                    continue
                bg = float(background[animal])
            else:
                bg = float(background)  # type: ignore[arg-type]
            thr = float(background_multiple) * bg  # type: ignore[arg-type]
        d = sub["day"].to_numpy(dtype=np.float64)
        pos = sub["value"].to_numpy(dtype=np.float64) >= thr
        onset = None
        for i in range(len(d) - consecutive + 1):
            if pos[i : i + consecutive].all():
                onset = float(d[i])
                break
        end = cohort.end_of(animal)
        if onset is not None:
            time, event, why, reason = onset, True, None, "onset"
        elif end is not None:
            time, reason = float(end.day), end.reason
            event = death_is_event and end.reason in ("death", "humane_endpoint")
            why = None if event else f"censored: {end.reason} on day {end.day:g}"
        else:
            time, event, reason = float(d[-1]), False, "last_image"
            why = f"censored: no end record, last usable image on day {d[-1]:g}"
        out.append(AnimalOnset(animal, arm, thr, onset, time, event, why, len(d), reason))
    return OnsetTable(
        site, rule, consecutive, death_is_event, tuple(out), tuple(excl), tuple(prep.adjustments)
    )


# ------------------------------------------------------------------------------ incidence


@dataclass(frozen=True, slots=True)
class IncidenceDay(_AsDict):
    """Incidence on one day among the animals imaged that day.

    An animal counts as positive on day d when its onset day <= d (so with k > 1 the
    confirming images may lie after d). ``odds_ratio``: conditional maximum-likelihood
    odds ratio (treated vs control) with its exact 95 % CI, and ``fisher``: two-sided
    Fisher exact p — both as R ``fisher.test`` (scipy ``odds_ratio(kind="conditional")``
    and ``fisher_exact``). Infinite or undefined bounds are None.
    """

    day: float
    positive_control: int
    n_control: int
    positive_treated: int
    n_treated: int
    odds_ratio: Effect
    fisher: TestResult


@dataclass(frozen=True, slots=True)
class IncidenceTable(_AsDict):
    """Incidence by day at one site, Fisher p adjusted across days by ``correction``."""

    control: str
    treated: str
    site: str
    rule: str
    correction: str
    rows: tuple[IncidenceDay, ...]
    skipped_days: tuple[SkippedDay, ...]
    animals: tuple[AnimalOnset, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def incidence_by_day(
    cohort: Cohort,
    *,
    control: str,
    treated: str,
    site: str,
    threshold: float | None = None,
    background: float | Mapping[str, float] | None = None,
    background_multiple: float | None = None,
    consecutive: int = 1,
    exclude_flags: Collection[str] | None = None,
    correction: Literal["holm", "bh", "none"] = "holm",
) -> IncidenceTable:
    """Number of positive animals per arm on each imaging day, compared by Fisher's exact
    test; see :func:`site_onsets` for the positivity rule and :class:`IncidenceDay`."""
    if control == treated:
        raise InvalidInputError(f"control and treated are the same arm {control!r}")
    onsets = site_onsets(
        cohort,
        site=site,
        arms=(control, treated),
        threshold=threshold,
        background=background,
        background_multiple=background_multiple,
        consecutive=consecutive,
        exclude_flags=exclude_flags,
    )
    prep = prepare(
        cohort,
        arms=(control, treated),
        site=site,
        scale="linear",
        floor=None,
        exclude_flags=exclude_flags,
    )
    by_animal = {a.animal: a for a in onsets.animals}
    frame = prep.frame[prep.frame["animal"].isin(list(by_animal))]
    raw, skipped = [], []
    for day, sub in frame.groupby("day", sort=True):
        counts = {}
        for arm in (control, treated):
            ids = sub.loc[sub["arm"] == arm, "animal"].tolist()
            pos = sum(
                1
                for i in ids
                if by_animal[i].onset_day is not None and by_animal[i].onset_day <= day
            )
            counts[arm] = (pos, len(ids))
        if counts[control][1] == 0 or counts[treated][1] == 0:
            skipped.append(SkippedDay(float(day), "an arm has no animal imaged on this day"))
            continue
        (pc, nc), (pt, nt) = counts[control], counts[treated]
        eff, fisher = fisher_2x2(pt, nt, pc, nc)
        raw.append((float(day), pc, nc, pt, nt, eff, fisher))
    if not raw:
        raise InsufficientDataError(f"no day at site {site!r} has animals in both arms")
    adj = adjust([r[6] for r in raw], correction)
    rows = tuple(IncidenceDay(*r[:6], a) for r, a in zip(raw, adj, strict=True))
    return IncidenceTable(
        control,
        treated,
        site,
        onsets.rule,
        correction,
        rows,
        tuple(skipped),
        onsets.animals,
        onsets.exclusions,
        onsets.adjustments,
    )
