"""Input records, the :class:`Cohort` container and the shared preparation step.

The animal is the experimental unit: every statistic downstream is computed from one value
per animal per day (duplicate images on a day are averaged first) or one summary per
animal (AUC, slope, onset day). Images and ROIs are never units of analysis.

Why one module of ~500 lines: it is the single entrance of data into the statistics — the
input records, the :class:`Cohort` that validates them and :func:`prepare` that turns them into
one value per animal and day with every exclusion and adjustment recorded. Every analysis
depends on these rules being in one place; apart, a change to one (e.g. a flag that excludes)
could miss the others.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._errors import InsufficientDataError, InvalidInputError, MixedStudiesError, NoDataError

__all__ = [
    "DEFAULT_EXCLUDE_FLAGS",
    "END_REASONS",
    "Adjustment",
    "AnimalEnd",
    "Cohort",
    "Exclusion",
    "Observation",
    "Scale",
]

Scale = Literal["log10", "ln", "log1p", "linear"]
"""Analysis scale: ``log10`` (default for flux), ``ln`` (natural log), ``log1p`` (ln(1 + x),
as used by the R package tumr for caliper volumes with zeros) or ``linear`` (as measured)."""

SCALES: tuple[str, ...] = ("log10", "ln", "log1p", "linear")

END_REASONS: tuple[str, ...] = ("death", "humane_endpoint", "withdrawn", "study_end")
"""Allowed :attr:`AnimalEnd.reason` values."""

DEFAULT_EXCLUDE_FLAGS: frozenset[str] = frozenset(
    {"saturated", "roi_off_image", "failed_injection", "excluded"}
)
"""QC flags that exclude an observation unless the caller passes ``exclude_flags``.
Other flags (e.g. ``low_signal``, ``uncalibrated``) are carried but do not exclude."""


class _AsDict:
    """Mixin giving frozen result dataclasses a JSON-friendly ``to_dict()``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the result as nested dicts / lists of plain Python values."""
        return _jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, frozenset):
        return sorted(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@dataclass(frozen=True, slots=True)
class Observation(_AsDict):
    """One quantified value: an animal's ROI at one site on one day.

    Attributes
    ----------
    animal : str
        Animal identifier (ear tag); the experimental unit.
    arm : str
        Arm (group) the animal belongs to.
    day : float
        Days since tumour-cell injection (day 0).
    value : float
        Measured value, e.g. total flux in p/s. NaN means missing.
    site : str
        Anatomical site of the ROI (``whole_body``, ``spine``, ``left_hindlimb``, ...).
    flags : frozenset of str
        QC flags (``saturated``, ``low_signal``, ...); see ``DEFAULT_EXCLUDE_FLAGS``.
    study : str or None
        Study identifier; arms of different studies are never compared.
    """

    animal: str
    arm: str
    day: float
    value: float
    site: str = "whole_body"
    flags: frozenset[str] = frozenset()
    study: str | None = None


@dataclass(frozen=True, slots=True)
class AnimalEnd(_AsDict):
    """How and when an animal's series ended.

    ``reason`` is one of ``death``, ``humane_endpoint``, ``withdrawn``, ``study_end``.
    Observations after ``day`` are excluded (and reported); in survival analysis the
    animal is censored at ``day`` unless it had the event before.
    """

    animal: str
    day: float
    reason: str


@dataclass(frozen=True, slots=True)
class Exclusion(_AsDict):
    """An observation (``day`` set) or a whole animal (``day`` None) left out, and why."""

    animal: str
    arm: str
    site: str
    day: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Adjustment(_AsDict):
    """A value kept but changed: ``kind`` is ``floored`` or ``averaged``; ``detail`` says how."""

    animal: str
    arm: str
    site: str
    day: float
    kind: str
    detail: str


@dataclass(frozen=True)
class Cohort:
    """Validated tidy observations plus end records: the input of every analysis.

    Build it with :meth:`from_records` or :meth:`from_frame`; construction checks that
    each animal belongs to one arm and one study, that days are finite and that end
    records are unique with a known reason. Inputs are never modified.
    """

    observations: tuple[Observation, ...]
    ends: tuple[AnimalEnd, ...] = ()
    _frame: pd.DataFrame = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        obs = tuple(self.observations)
        ends = tuple(self.ends)
        object.__setattr__(self, "observations", obs)
        object.__setattr__(self, "ends", ends)
        if not obs:
            raise NoDataError("the cohort has no observation")
        arm_of: dict[str, str] = {}
        study_of: dict[str, str | None] = {}
        for o in obs:
            if not isinstance(o, Observation):
                raise InvalidInputError(f"expected Observation records, got {type(o).__name__}")
            if not math.isfinite(float(o.day)):
                raise InvalidInputError(f"animal {o.animal!r} (arm {o.arm!r}) has day {o.day!r}")
            prev = arm_of.setdefault(o.animal, o.arm)
            if prev != o.arm:
                raise InvalidInputError(
                    f"animal {o.animal!r} is listed in two arms ({prev!r} and {o.arm!r}); "
                    "an animal belongs to exactly one arm"
                )
            prev_study = study_of.setdefault(o.animal, o.study)
            if prev_study != o.study:
                raise InvalidInputError(
                    f"animal {o.animal!r} is listed in two studies ({prev_study!r}, {o.study!r})"
                )
        seen: set[str] = set()
        for e in ends:
            if e.reason not in END_REASONS:
                raise InvalidInputError(
                    f"end record of animal {e.animal!r} has reason {e.reason!r}; "
                    f"expected one of {', '.join(END_REASONS)}"
                )
            if e.animal in seen:
                raise InvalidInputError(f"animal {e.animal!r} has more than one end record")
            if e.animal not in arm_of:
                raise InvalidInputError(f"end record for animal {e.animal!r}, which has no data")
            if not math.isfinite(float(e.day)):
                raise InvalidInputError(f"end record of animal {e.animal!r} has day {e.day!r}")
            seen.add(e.animal)
        frame = pd.DataFrame(
            {
                "animal": [o.animal for o in obs],
                "arm": [o.arm for o in obs],
                "day": np.array([o.day for o in obs], dtype=np.float64),
                "value": np.array([o.value for o in obs], dtype=np.float64),
                "site": [o.site for o in obs],
                "flags": [frozenset(o.flags) for o in obs],
                "study": [o.study for o in obs],
            }
        )
        object.__setattr__(self, "_frame", frame)

    @classmethod
    def from_records(
        cls, observations: Iterable[Observation], *, ends: Iterable[AnimalEnd] = ()
    ) -> Cohort:
        """Build a cohort from :class:`Observation` and :class:`AnimalEnd` records."""
        return cls(tuple(observations), tuple(ends))

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        ends: Iterable[AnimalEnd] | pd.DataFrame = (),
        columns: Mapping[str, str] | None = None,
    ) -> Cohort:
        """Build a cohort from a tidy DataFrame.

        Parameters
        ----------
        frame : DataFrame
            One row per observation with columns ``animal, arm, day, value`` and optionally
            ``site`` (default ``whole_body``), ``flags`` (iterable of str, or a
            ``;``-separated string) and ``study``.
        ends : iterable of AnimalEnd or DataFrame with columns ``animal, day, reason``
        columns : mapping, optional
            Renames from the frame's column names to the names above, e.g.
            ``{"ID": "animal", "Treatment": "arm", "Day": "day", "Volume": "value"}``.
        """
        df = frame.rename(columns=dict(columns or {}))
        missing = [c for c in ("animal", "arm", "day", "value") if c not in df.columns]
        if missing:
            raise InvalidInputError(
                f"the frame lacks column(s) {', '.join(missing)}; columns are "
                f"{', '.join(map(str, df.columns))} (use columns= to rename)"
            )
        n = len(df)
        sites = df["site"].astype(str).tolist() if "site" in df.columns else ["whole_body"] * n
        studies = (
            [None if pd.isna(s) else str(s) for s in df["study"]]
            if "study" in df.columns
            else [None] * n
        )
        flags = [_parse_flags(f) for f in df["flags"]] if "flags" in df.columns else None
        obs = tuple(
            Observation(
                animal=str(a),
                arm=str(g),
                day=float(d),
                value=float(v),
                site=sites[i],
                flags=flags[i] if flags is not None else frozenset(),
                study=studies[i],
            )
            for i, (a, g, d, v) in enumerate(
                zip(df["animal"], df["arm"], df["day"], df["value"], strict=True)
            )
        )
        if isinstance(ends, pd.DataFrame):
            end_records = tuple(
                AnimalEnd(animal=str(a), day=float(d), reason=str(r))
                for a, d, r in zip(ends["animal"], ends["day"], ends["reason"], strict=True)
            )
        else:
            end_records = tuple(ends)
        return cls(obs, end_records)

    @property
    def arms(self) -> tuple[str, ...]:
        """Arms present, sorted."""
        return tuple(sorted(self._frame["arm"].unique()))

    @property
    def sites(self) -> tuple[str, ...]:
        """Sites present, sorted."""
        return tuple(sorted(self._frame["site"].unique()))

    def animals(self, arm: str | None = None) -> tuple[str, ...]:
        """Animals (of one arm if given), sorted."""
        df = self._frame if arm is None else self._frame[self._frame["arm"] == arm]
        return tuple(sorted(df["animal"].unique()))

    def end_of(self, animal: str) -> AnimalEnd | None:
        """The animal's end record, if any."""
        for e in self.ends:
            if e.animal == animal:
                return e
        return None


def _parse_flags(value: Any) -> frozenset[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return frozenset()
    if isinstance(value, str):
        return frozenset(s.strip() for s in value.split(";") if s.strip())
    return frozenset(str(s) for s in value)


# --------------------------------------------------------------------------- preparation


@dataclass
class _Prepared:
    """One value per animal per day on the analysis scale, with its audit trail."""

    # columns: animal, arm, day, value (mean raw), y (transformed) [, baseline_day]
    frame: pd.DataFrame
    site: str
    scale: str
    floor: float | None
    exclusions: list[Exclusion]
    adjustments: list[Adjustment]


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise InvalidInputError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")


def transform_values(values: np.ndarray, scale: str) -> np.ndarray:
    """Apply ``scale`` to already floored values (float64)."""
    v = np.asarray(values, dtype=np.float64)
    if scale == "log10":
        return np.log10(v)
    if scale == "ln":
        return np.log(v)
    if scale == "log1p":
        return np.log1p(v)
    return v.copy()


def check_arms(cohort: Cohort, arms: Sequence[str]) -> None:
    """Unknown arm → InvalidInputError; arms of different studies → MixedStudiesError."""
    known = cohort.arms
    for a in arms:
        if a not in known:
            raise InvalidInputError(f"arm {a!r} is not in the cohort; arms are {', '.join(known)}")
    if len(set(arms)) != len(arms):
        raise InvalidInputError(f"an arm is listed twice in {list(arms)}")
    df = cohort._frame
    studies: dict[str, set[str | None]] = {
        a: set(df.loc[df["arm"] == a, "study"].tolist()) for a in arms
    }
    all_studies = set().union(*studies.values())
    if len(all_studies) > 1:
        detail = "; ".join(
            f"arm {a!r}: {', '.join(sorted(str(s) for s in ss))}" for a, ss in studies.items()
        )
        raise MixedStudiesError(
            f"the arms compared come from different studies ({detail}); compare arms of one "
            "study only"
        )


def prepare(
    cohort: Cohort,
    *,
    arms: Sequence[str],
    site: str,
    scale: str,
    floor: float | None,
    exclude_flags: Collection[str] | None,
    baseline: Literal["first"] | float | None = None,
) -> _Prepared:
    """Select, clean, average and transform: the shared first step of every analysis.

    Steps, each recorded: (1) keep ``site`` and ``arms``; (2) exclude observations carrying
    a flag in ``exclude_flags``, non-finite values, and observations after the animal's end
    record; (3) average duplicate images of an animal on one day (arithmetic mean of the
    raw values, i.e. mean flux); (4) raise values below ``floor`` to ``floor``; (5) apply
    ``scale``; (6) optionally express each value relative to the animal's baseline
    (difference on log scales = log fold change; ratio on the linear scale).
    """
    _check_scale(scale)
    check_arms(cohort, arms)
    if floor is not None and not (math.isfinite(floor) and floor > 0):
        raise InvalidInputError(f"floor must be a positive finite number, got {floor!r}")
    flags_out = DEFAULT_EXCLUDE_FLAGS if exclude_flags is None else frozenset(exclude_flags)
    df = cohort._frame
    if site not in set(df["site"]):
        raise NoDataError(
            f"site {site!r} has no data in this cohort; sites are {', '.join(cohort.sites)}"
        )
    df = df[(df["site"] == site) & df["arm"].isin(list(arms))]
    for a in arms:
        if not (df["arm"] == a).any():
            raise NoDataError(f"arm {a!r} has no observation at site {site!r}")
    exclusions: list[Exclusion] = []
    adjustments: list[Adjustment] = []
    end_day = {e.animal: e for e in cohort.ends}
    keep = np.ones(len(df), dtype=bool)
    for i, row in enumerate(df.itertuples(index=False)):
        bad = sorted(set(row.flags) & flags_out)
        reason = None
        if bad:
            reason = f"QC flag {', '.join(bad)}"
        elif not math.isfinite(row.value):
            reason = "missing value"
        elif row.animal in end_day and row.day > end_day[row.animal].day:
            e = end_day[row.animal]
            reason = f"after end record ({e.reason} on day {e.day:g})"
        if reason is not None:
            keep[i] = False
            exclusions.append(Exclusion(row.animal, row.arm, site, float(row.day), reason))
    df = df[keep]
    if df.empty:
        raise NoDataError(f"no usable observation at site {site!r} for arms {', '.join(arms)}")

    counts = df.groupby(["animal", "day"], sort=True)["value"].transform("size")
    for row in df[counts > 1].drop_duplicates(["animal", "day"]).itertuples(index=False):
        n = int(((df["animal"] == row.animal) & (df["day"] == row.day)).sum())
        adjustments.append(
            Adjustment(
                row.animal,
                row.arm,
                site,
                float(row.day),
                "averaged",
                f"{n} images on this day averaged (arithmetic mean of raw values)",
            )
        )
    g = df.groupby(["animal", "arm", "day"], sort=True, as_index=False)["value"].mean()

    values = g["value"].to_numpy(dtype=np.float64)
    if scale in ("log10", "ln") and floor is None:
        nonpos = values <= 0
        if nonpos.any():
            r = g[nonpos].iloc[0]
            raise InvalidInputError(
                f"animal {r['animal']!r} (arm {r['arm']!r}) at site {site!r} on day "
                f"{r['day']:g} has value {r['value']:g} <= 0, which has no {scale}; pass "
                "floor= (e.g. the detection limit in p/s) to raise such values to it"
            )
    if floor is not None:
        low = values < floor
        for r in g[low].itertuples(index=False):
            adjustments.append(
                Adjustment(
                    r.animal,
                    r.arm,
                    site,
                    float(r.day),
                    "floored",
                    f"value {r.value:g} below floor {floor:g} set to {floor:g}",
                )
            )
        values = np.where(low, floor, values)
    if scale == "log1p" and (values <= -1).any():
        raise InvalidInputError(f"values <= -1 at site {site!r} have no log1p")
    g = g.assign(value=values, y=transform_values(values, scale))

    if baseline is not None:
        if scale == "log1p":
            raise InvalidInputError("baseline normalisation is defined for log10, ln, linear")
        keep_rows = []
        for animal, sub in g.groupby("animal", sort=True):
            if baseline == "first":
                ref = sub.iloc[0]
            else:
                hit = sub[np.isclose(sub["day"], float(baseline))]
                if hit.empty:
                    exclusions.append(
                        Exclusion(
                            str(animal),
                            str(sub["arm"].iloc[0]),
                            site,
                            None,
                            f"no usable baseline image on day {float(baseline):g}",
                        )
                    )
                    continue
                ref = hit.iloc[0]
            sub = sub.copy()
            sub["baseline_day"] = float(ref["day"])
            if scale == "linear":
                if ref["y"] == 0:
                    exclusions.append(
                        Exclusion(str(animal), str(sub["arm"].iloc[0]), site, None, "baseline 0")
                    )
                    continue
                sub["y"] = sub["y"] / ref["y"]
            else:
                sub["y"] = sub["y"] - ref["y"]
            keep_rows.append(sub)
        if not keep_rows:
            raise NoDataError(f"no animal at site {site!r} has a baseline image")
        g = pd.concat(keep_rows, ignore_index=True)
    return _Prepared(g, site, scale, floor, exclusions, adjustments)


def require_animals(frame: pd.DataFrame, arm: str, what: str, *, minimum: int = 2) -> None:
    """Raise InsufficientDataError when ``arm`` has fewer than ``minimum`` animals."""
    n = frame.loc[frame["arm"] == arm, "animal"].nunique()
    if n < minimum:
        raise InsufficientDataError(
            f"arm {arm!r} has {n} animal(s) with usable data for {what}; at least "
            f"{minimum} are needed"
        )
