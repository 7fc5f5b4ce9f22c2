"""Several bone sites per mouse: total skeletal burden, per-site incidence, sites involved.

Bone metastasis is multi-site (after intracardiac injection spine, skull, scapula and
long bones are each involved in 60-90 % of mice), so besides per-site analyses a study
needs the whole skeleton: the sum of the bone sites' flux per animal and day (an endpoint
that every comparison accepts, as the site :data:`SKELETAL_TOTAL` of a derived cohort), the
per-arm incidence of each site over time, and the number of sites involved per mouse.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._data import Adjustment, Cohort, Exclusion, Observation, _AsDict, prepare
from ._errors import InvalidInputError, NoDataError
from ._positivity import AnimalOnset, site_onsets

__all__ = [
    "BONE_SITES",
    "SKELETAL_TOTAL",
    "ArmSitesDay",
    "BurdenPoint",
    "SiteIncidence",
    "SiteInvolvement",
    "SitesPerMouse",
    "SkeletalBurden",
    "site_involvement",
    "skeletal_burden",
]

BONE_SITES: tuple[str, ...] = (
    "skull_mandible",
    "spine",
    "thorax",
    "forelimbs_scapula",
    "left_hindlimb",
    "right_hindlimb",
)
"""The bone sites summed by default (``whole_body``, ``background``, ``custom`` are not)."""

SKELETAL_TOTAL = "skeletal_total"
"""Site name of the total skeletal burden in :attr:`SkeletalBurden.cohort`."""


def _sites_present(cohort: Cohort, sites: Sequence[str] | None) -> tuple[str, ...]:
    if sites is None:
        chosen = tuple(s for s in BONE_SITES if s in cohort.sites)
        if not chosen:
            raise NoDataError(
                f"the cohort has no bone site ({', '.join(BONE_SITES)}); sites present: "
                f"{', '.join(cohort.sites)}"
            )
        return chosen
    chosen = tuple(dict.fromkeys(sites))
    if not chosen:
        raise InvalidInputError("give at least one site")
    unknown = [s for s in chosen if s not in cohort.sites]
    if unknown:
        raise NoDataError(
            f"site(s) {', '.join(unknown)} have no observation; sites present: "
            f"{', '.join(cohort.sites)}"
        )
    return chosen


def _prepared(
    cohort: Cohort, site: str, exclude_flags: Collection[str] | None
) -> tuple[dict[tuple[str, float], float], list[Exclusion], list[Adjustment]]:
    arms = tuple(sorted({o.arm for o in cohort.observations if o.site == site}))
    prep = prepare(
        cohort, arms=arms, site=site, scale="linear", floor=None, exclude_flags=exclude_flags
    )
    values = {
        (str(r.animal), float(r.day)): float(r.value) for r in prep.frame.itertuples(index=False)
    }
    return values, prep.exclusions, prep.adjustments


# ------------------------------------------------------------------------ skeletal burden


@dataclass(frozen=True, slots=True)
class BurdenPoint(_AsDict):
    """An animal's total skeletal burden on one day: ``total`` = sum over ``sites`` of the
    site's (duplicate-averaged) value, in the value's unit (p/s for total flux)."""

    animal: str
    arm: str
    day: float
    total: float
    n_sites: int


@dataclass(frozen=True, slots=True)
class SkeletalBurden(_AsDict):
    """Total skeletal burden per animal and day.

    An animal-day counts only when every site in ``sites`` has a usable value that day
    (a missing or QC-excluded site would make the sum look smaller): otherwise it is listed
    in ``exclusions`` with the sites missing. ``cohort``: the totals as observations at site
    :data:`SKELETAL_TOTAL` with the original end records, for any comparison
    (``compare_by_day(burden.cohort, site=SKELETAL_TOTAL, ...)``, ``fit_growth_model``,
    ``summarize``, ...). Not part of ``to_dict()``.
    """

    sites: tuple[str, ...]
    points: tuple[BurdenPoint, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]
    cohort: Cohort

    def to_dict(self) -> dict[str, object]:
        """The result without the derived cohort, as plain values."""
        return {
            "sites": list(self.sites),
            "points": [p.to_dict() for p in self.points],
            "exclusions": [e.to_dict() for e in self.exclusions],
            "adjustments": [a.to_dict() for a in self.adjustments],
        }


def skeletal_burden(
    cohort: Cohort,
    *,
    sites: Sequence[str] | None = None,
    exclude_flags: Collection[str] | None = None,
) -> SkeletalBurden:
    """Sum the bone sites' values per animal and day (see :class:`SkeletalBurden`).

    Parameters
    ----------
    cohort : Cohort
        Observations at several sites (values in one unit, e.g. total flux p/s).
    sites : sequence of str, optional
        Sites to sum; default the :data:`BONE_SITES` present in the cohort.
    exclude_flags : collection of str, optional
        QC flags that exclude an observation (default ``DEFAULT_EXCLUDE_FLAGS``).
    """
    chosen = _sites_present(cohort, sites)
    per_site = {}
    exclusions: list[Exclusion] = []
    adjustments: list[Adjustment] = []
    for s in chosen:
        values, excl, adj = _prepared(cohort, s, exclude_flags)
        per_site[s] = values
        exclusions += excl
        adjustments += adj
    arm_of = {o.animal: o.arm for o in cohort.observations}
    study_of = {o.animal: o.study for o in cohort.observations}
    keys = sorted({k for v in per_site.values() for k in v}, key=lambda k: (k[0], k[1]))
    points = []
    for animal, day in keys:
        missing = [s for s in chosen if (animal, day) not in per_site[s]]
        if missing:
            exclusions.append(
                Exclusion(
                    animal,
                    arm_of[animal],
                    SKELETAL_TOTAL,
                    day,
                    f"no usable value at {', '.join(missing)} on this day: the sum would "
                    "leave these sites out",
                )
            )
            continue
        total = math.fsum(per_site[s][(animal, day)] for s in chosen)
        points.append(BurdenPoint(animal, arm_of[animal], day, total, len(chosen)))
    if not points:
        raise NoDataError(
            f"no animal has a usable value at every one of {', '.join(chosen)} on the same day"
        )
    observations = [
        Observation(p.animal, p.arm, p.day, p.total, SKELETAL_TOTAL, study=study_of[p.animal])
        for p in points
    ]
    animals = {p.animal for p in points}
    ends = tuple(e for e in cohort.ends if e.animal in animals)
    return SkeletalBurden(
        chosen,
        tuple(points),
        tuple(exclusions),
        tuple(adjustments),
        Cohort.from_records(observations, ends=ends),
    )


# ---------------------------------------------------------------------- site involvement


@dataclass(frozen=True, slots=True)
class SiteIncidence(_AsDict):
    """Incidence of one site in one arm on one day: ``positive`` of the ``n_imaged`` animals
    imaged there that day have had the site positive by then (onset day <= day, onset as
    :func:`cohorts.site_onsets`); ``fraction`` = positive / n_imaged."""

    site: str
    arm: str
    day: float
    n_imaged: int
    positive: int
    fraction: float


@dataclass(frozen=True, slots=True)
class SitesPerMouse(_AsDict):
    """Sites involved in one animal by one day: ``n_involved`` of the ``n_sites`` analysed
    sites had become positive by ``day`` (a site, once positive, stays involved);
    ``involved`` names them. Days are those with a usable image at any analysed site."""

    animal: str
    arm: str
    day: float
    n_involved: int
    n_sites: int
    involved: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArmSitesDay(_AsDict):
    """Sites involved per mouse in one arm on one day: ``n`` animals, ``mean`` and
    ``median`` number of sites involved, ``distribution[k]`` = animals with k sites."""

    arm: str
    day: float
    n: int
    mean: float
    median: float
    distribution: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SiteInvolvement(_AsDict):
    """Per-site incidence by arm and day, and the number of sites involved per mouse.

    ``thresholds``: the positivity threshold of each site (value >= threshold on
    ``consecutive`` images); ``onsets``: each animal's onset per site.
    """

    sites: tuple[str, ...]
    thresholds: tuple[float, ...]
    consecutive: int
    incidence: tuple[SiteIncidence, ...]
    per_mouse: tuple[SitesPerMouse, ...]
    per_arm: tuple[ArmSitesDay, ...]
    onsets: tuple[tuple[str, AnimalOnset], ...]
    exclusions: tuple[Exclusion, ...]


def site_involvement(
    cohort: Cohort,
    *,
    threshold: float | Mapping[str, float],
    sites: Sequence[str] | None = None,
    consecutive: int = 1,
    exclude_flags: Collection[str] | None = None,
) -> SiteInvolvement:
    """Per-arm incidence of each site over time and sites involved per mouse.

    Parameters
    ----------
    threshold : float or mapping site -> float
        Positivity threshold in the value's unit (p/s), one for all sites or one per site.
    sites : sequence of str, optional
        Default: the :data:`BONE_SITES` present.
    consecutive : int
        Positive images in a row needed for onset (as :func:`cohorts.site_onsets`).
    """
    chosen = _sites_present(cohort, sites)
    if isinstance(threshold, Mapping):
        missing = [s for s in chosen if s not in threshold]
        if missing:
            raise InvalidInputError(f"no threshold given for site(s) {', '.join(missing)}")
        thresholds = tuple(float(threshold[s]) for s in chosen)
    else:
        thresholds = (float(threshold),) * len(chosen)
    for s, t in zip(chosen, thresholds, strict=True):
        if not (math.isfinite(t) and t > 0):
            raise InvalidInputError(f"the threshold of site {s!r} must be > 0, got {t!r}")
    onset_of: dict[tuple[str, str], float | None] = {}
    imaged: dict[str, dict[str, set[float]]] = {}
    onsets: list[tuple[str, AnimalOnset]] = []
    exclusions: list[Exclusion] = []
    arm_of = {o.animal: o.arm for o in cohort.observations}
    for s, t in zip(chosen, thresholds, strict=True):
        arms = tuple(sorted({o.arm for o in cohort.observations if o.site == s}))
        table = site_onsets(
            cohort,
            site=s,
            arms=arms,
            threshold=t,
            consecutive=consecutive,
            exclude_flags=exclude_flags,
        )
        values, excl, _ = _prepared(cohort, s, exclude_flags)
        exclusions += excl
        by_animal: dict[str, set[float]] = defaultdict(set)
        for animal, day in values:
            by_animal[animal].add(day)
        imaged[s] = by_animal
        for a in table.animals:
            onset_of[(s, a.animal)] = a.onset_day
            onsets.append((s, a))

    def positive(site: str, animal: str, day: float) -> bool:
        onset = onset_of.get((site, animal))
        return onset is not None and onset <= day

    incidence = []
    for s in chosen:
        cells: dict[tuple[str, float], list[bool]] = defaultdict(list)
        for animal, days in imaged[s].items():
            for day in days:
                cells[(arm_of[animal], day)].append(positive(s, animal, day))
        for (arm, day), flags in sorted(cells.items()):
            k = sum(flags)
            incidence.append(SiteIncidence(s, arm, day, len(flags), k, k / len(flags)))

    per_mouse = []
    days_of: dict[str, set[float]] = defaultdict(set)
    for s in chosen:
        for animal, days in imaged[s].items():
            days_of[animal] |= days
    for animal in sorted(days_of):
        for day in sorted(days_of[animal]):
            inv = tuple(s for s in chosen if positive(s, animal, day))
            per_mouse.append(SitesPerMouse(animal, arm_of[animal], day, len(inv), len(chosen), inv))

    groups: dict[tuple[str, float], list[int]] = defaultdict(list)
    for m in per_mouse:
        groups[(m.arm, m.day)].append(m.n_involved)
    per_arm = []
    for (arm, day), counts in sorted(groups.items()):
        tally = Counter(counts)
        per_arm.append(
            ArmSitesDay(
                arm,
                day,
                len(counts),
                float(np.mean(counts)),
                float(np.median(counts)),
                tuple(tally.get(k, 0) for k in range(len(chosen) + 1)),
            )
        )
    return SiteInvolvement(
        chosen,
        thresholds,
        consecutive,
        tuple(incidence),
        tuple(per_mouse),
        tuple(per_arm),
        tuple(onsets),
        tuple(exclusions),
    )
