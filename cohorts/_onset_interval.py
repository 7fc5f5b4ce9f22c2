"""The interval (left, right] that holds each animal's onset at a site, from its images.

A site is imaged on discrete days, so "first image at or above threshold" only says that
onset happened after the last negative image and no later than the first positive one. The
positivity rule is :func:`cohorts.site_onsets`'; the intervals feed the interval-censored
analysis of :mod:`cohorts._interval`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._data import Adjustment, Cohort, Exclusion, _AsDict, prepare
from ._positivity import site_onsets

__all__ = ["OnsetInterval", "OnsetIntervalTable", "onset_intervals"]


@dataclass(frozen=True, slots=True)
class OnsetInterval(_AsDict):
    """The interval (``left``, ``right``] in days that holds an animal's event time.

    - ``kind`` ``interval``: onset after the last negative image (``left``) and at or before
      the first positive one (``right``); ``left``: positive at its first image, ``left``
      is 0 (injection day); ``right``: never positive, ``right`` is None (infinity) and
      ``left`` the last usable image; ``exact``: ``left`` = ``right``, a death counted as
      the event (``death_is_event``) on the day of a negative image.
    - ``reason``: ``onset``, ``death`` / ``humane_endpoint`` (an event only with
      ``death_is_event``: the composite event lies between the last negative image and the
      death) or, for a censored animal, its end record's reason or ``last_image``.
    - ``event``: False for a right-censored animal (``right`` None).
    """

    animal: str
    arm: str
    threshold: float
    left: float
    right: float | None
    kind: str
    reason: str
    n_images: int
    event: bool


@dataclass(frozen=True, slots=True)
class OnsetIntervalTable(_AsDict):
    """The onset interval of every animal at one site; ``censoring`` says how deaths count."""

    site: str
    rule: str
    consecutive: int
    death_is_event: bool
    censoring: str
    animals: tuple[OnsetInterval, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]


def _interval_censoring_rule(death_is_event: bool) -> str:
    base = (
        "onset lies in (last negative image, first positive image]; positive at the first "
        "image: (0, first image]; never positive: right-censored at the last usable image "
        "(the last day known free of metastasis; the end record's day says nothing about "
        "onset)"
    )
    if death_is_event:
        return base + (
            "; death or humane endpoint without a positive image is the event, in (last "
            "negative image, death day] (exact when the last image was on the death day)"
        )
    return base + "; death, humane endpoint and withdrawal censor at the last usable image"


def onset_intervals(
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
) -> OnsetIntervalTable:
    """Interval (left, right] holding each animal's onset at ``site`` (see
    :class:`OnsetInterval`).

    Positivity (threshold, ``consecutive`` images) is decided by
    :func:`cohorts.site_onsets`; with k consecutive images the image before the onset image
    is always negative, so ``left`` is the previous usable image (images before day 0, the
    injection, count as day 0). An animal positive at an image on day <= 0 (onset not after
    injection), or dead by day 0, is excluded, with the reason.
    """
    onsets = site_onsets(
        cohort,
        site=site,
        arms=arms,
        threshold=threshold,
        background=background,
        background_multiple=background_multiple,
        consecutive=consecutive,
        exclude_flags=exclude_flags,
        death_is_event=death_is_event,
    )
    arms = tuple(arms) if arms is not None else cohort.arms
    prep = prepare(
        cohort, arms=arms, site=site, scale="linear", floor=None, exclude_flags=exclude_flags
    )
    days = {
        str(a): np.sort(sub["day"].to_numpy(dtype=np.float64))
        for a, sub in prep.frame.groupby("animal", sort=True)
    }
    out: list[OnsetInterval] = []
    excl = list(onsets.exclusions)
    for a in onsets.animals:
        d = days[a.animal]
        if a.onset_day is not None:
            before = d[(d < a.onset_day) & (d > 0)]  # onset follows injection (day 0)
            if before.size:
                left, kind = float(before[-1]), "interval"
            elif a.onset_day > 0:
                left, kind = 0.0, "left"
            else:
                excl.append(
                    Exclusion(
                        a.animal,
                        a.arm,
                        site,
                        None,
                        f"positive at its first image on day {a.onset_day:g} (not after "
                        "injection): onset cannot be placed in time; check the threshold",
                    )
                )
                continue
            out.append(
                OnsetInterval(
                    a.animal, a.arm, a.threshold, left, a.onset_day, kind, "onset", a.n_images, True
                )
            )
        elif a.event:  # death / humane endpoint counted as the event
            if a.time <= 0:
                excl.append(Exclusion(a.animal, a.arm, site, None, f"{a.reason} on day {a.time:g}"))
                continue
            last = max(float(d[-1]), 0.0)
            kind = "exact" if a.time <= last else "interval"
            out.append(
                OnsetInterval(
                    a.animal, a.arm, a.threshold, last, a.time, kind, a.reason, a.n_images, True
                )
            )
        else:
            out.append(
                OnsetInterval(
                    a.animal,
                    a.arm,
                    a.threshold,
                    max(float(d[-1]), 0.0),
                    None,
                    "right",
                    a.reason,
                    a.n_images,
                    False,
                )
            )
    return OnsetIntervalTable(
        site,
        onsets.rule,
        consecutive,
        death_is_event,
        _interval_censoring_rule(death_is_event),
        tuple(out),
        tuple(excl),
        onsets.adjustments,
    )
