"""Acquisition QC a technician misses: settings that change within a series, exposure, time
since D-luciferin injection, kinetic peaks and suspected failed injections.

Pure functions on plain values (numbers, datetimes, :class:`AcquisitionSettings`): the service
fetches the series, these decide what is flagged and why. Nothing is dropped: every check
returns flags next to the values, and the caller keeps both.

Flags
-----
``filter_changed``, ``fov_changed``, ``f_number_changed``, ``binning_changed``,
``exposure_changed``
    A luminescent setting differs from the series' reference (its most common setting).
``camera_settings_changed``
    Any change that matters for comparing calibrated radiance (see :data:`SETTING_IMPACT`).
``saturated``, ``near_saturation``, ``underexposed``
    Raw counts reach the CCD saturation level, come within ``near_fraction`` of it, or the
    brightest source stays below ``min_peak_counts`` above bias.
``outside_luciferin_window``, ``acquired_before_injection``
    Time since D-luciferin injection outside the window (default 5–15 min: the study
    convention for i.p. 150 mg/kg, peak ~8 min, BLI.md).
``peak_at_last_point``, ``peak_at_first_point``
    A kinetic sequence whose maximum is at an end: the peak may lie outside the sequence.
``suspected_failed_injection``
    An animal's flux is ``factor`` times below both its own neighbouring sessions and its
    arm's median that session, and recovers at the next session.

Why one long module: the checks are independent pure functions, each a short dataclass and
its function, sharing the flag vocabulary above; one module keeps every flag a technician
can see, and its definition, in one list.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from .calibration import CosmicRayRemoval, _remove_cosmics_inplace, at_least
from .ivis import IvisClick

__all__ = [
    "SETTING_IMPACT",
    "AcquisitionSettings",
    "AcquisitionTime",
    "ExposureCheck",
    "KineticPeak",
    "LuciferinTiming",
    "SettingsCheck",
    "acquisition_time",
    "check_exposure",
    "check_settings_series",
    "failed_injections",
    "kinetic_peak",
    "kinetic_sequences",
    "luciferin_timing",
]

Impact = Literal["none", "info", "caution", "incomparable"]
_RANK: dict[str, int] = {"none": 0, "info": 1, "caution": 2, "incomparable": 3}

#: What a change of each luminescent setting does to calibrated radiance in a series.
#:
#: * ``emission_filter`` / ``excitation_filter`` — **incomparable**: radiance through a band
#:   filter is a different quantity from open-filter radiance (only part of the luciferase
#:   spectrum is counted).
#: * ``fov_cm`` — **caution**: pixel size, flat-field shelf and C-ccd all change; radiance is
#:   corrected for them, but ROI placement and partial-volume at the new resolution are not.
#: * ``f_number`` — **caution**: C-ccd and flat field change ~4× per stop and depth of field
#:   changes (a curved mouse is in focus differently).
#: * ``binning`` — **caution**: spatial resolution and which pixels an ROI includes change;
#:   small ROIs (skull, single limb) move by whole binned pixels.
#: * ``exposure_s`` — **info**: radiance is normalised per second, but the detection limit and
#:   saturation risk change; counts (uncalibrated) would be **incomparable**.
SETTING_IMPACT: dict[str, Impact] = {
    "emission_filter": "incomparable",
    "excitation_filter": "incomparable",
    "fov_cm": "caution",
    "f_number": "caution",
    "binning": "caution",
    "exposure_s": "info",
}
_FLAG = {
    "emission_filter": "filter_changed",
    "excitation_filter": "filter_changed",
    "fov_cm": "fov_changed",
    "f_number": "f_number_changed",
    "binning": "binning_changed",
    "exposure_s": "exposure_changed",
}


@dataclass(frozen=True, kw_only=True)
class AcquisitionSettings:
    """The luminescent settings that decide whether two acquisitions compare.

    ``None`` means unknown (e.g. a TIFF from another instrument without that metadata); an
    unknown value is never reported as a change.
    """

    exposure_s: float | None = None
    binning: int | None = None
    f_number: float | None = None
    fov_cm: float | None = None
    emission_filter: str | None = None
    excitation_filter: str | None = None

    @classmethod
    def from_click(cls, click: IvisClick) -> AcquisitionSettings:
        """The settings of a click's luminescent image."""
        s = click.settings
        return cls(
            exposure_s=s.exposure_s,
            binning=s.binning,
            f_number=s.f_number,
            fov_cm=s.fov_cm,
            emission_filter=_norm(s.emission_filter),
            excitation_filter=_norm(s.excitation_filter),
        )


def _norm(value: str | None) -> str | None:
    return value.strip().casefold() if value and value.strip() else None


@dataclass(frozen=True, kw_only=True)
class SettingsCheck:
    """One acquisition of a series compared with the series' reference settings.

    Attributes
    ----------
    changed : frozenset[str]
        Setting names (``AcquisitionSettings`` fields) that differ from the reference.
    impact : {"none", "info", "caution", "incomparable"}
        The worst :data:`SETTING_IMPACT` of the changes.
    flags : frozenset[str]
        One ``<setting>_changed`` flag per change, plus ``camera_settings_changed`` when the
        impact is ``caution`` or worse (or ``info`` when ``calibrated`` is ``False``).
    reference : AcquisitionSettings
    """

    changed: frozenset[str]
    impact: Impact
    flags: frozenset[str]
    reference: AcquisitionSettings


def check_settings_series(
    series: Sequence[AcquisitionSettings],
    *,
    reference: AcquisitionSettings | None = None,
    calibrated: bool = True,
    exposure_rtol: float = 0.01,
) -> tuple[SettingsCheck, ...]:
    """Compare every acquisition of a series (a session, an animal's time course, a study)
    with the series' reference settings.

    Parameters
    ----------
    series : sequence of AcquisitionSettings
    reference : AcquisitionSettings, optional
        Default: per setting, the most common known value of the series (ties: the earliest).
    calibrated : bool
        ``False`` for series compared in counts: then an exposure change is incomparable too.
    exposure_rtol : float
        Relative difference of exposure that counts as a change (auto-exposure rounds).

    Returns
    -------
    tuple[SettingsCheck, ...]
        One per acquisition, in order.
    """
    names = tuple(SETTING_IMPACT)
    if reference is None:
        values = {}
        for name in names:
            known = [getattr(s, name) for s in series if getattr(s, name) is not None]
            values[name] = Counter(known).most_common(1)[0][0] if known else None
        reference = AcquisitionSettings(**values)
    out = []
    for s in series:
        changed = set()
        for name in names:
            a, b = getattr(s, name), getattr(reference, name)
            if a is None or b is None:
                continue
            if name == "exposure_s":
                if not math.isclose(a, b, rel_tol=exposure_rtol):
                    changed.add(name)
            elif isinstance(a, float) or isinstance(b, float):
                if not math.isclose(float(a), float(b), rel_tol=1e-6):
                    changed.add(name)
            elif a != b:
                changed.add(name)
        impacts = [SETTING_IMPACT[n] for n in changed]
        if not calibrated and "exposure_s" in changed:
            impacts.append("incomparable")
        impact: Impact = max(impacts, key=_RANK.__getitem__, default="none")
        flags = {_FLAG[n] for n in changed}
        if _RANK[impact] >= _RANK["caution"]:
            flags.add("camera_settings_changed")
        out.append(
            SettingsCheck(
                changed=frozenset(changed),
                impact=impact,
                flags=frozenset(flags),
                reference=reference,
            )
        )
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class ExposureCheck:
    """Whether the raw counts of an acquisition were well exposed.

    Attributes
    ----------
    peak_counts : float
        Brightest raw pixel above bias once cosmic rays / hot pixels are removed
        (:func:`imaging.remove_cosmic_rays`).
    saturated_pixels : int
        Raw pixels at or above the saturation level.
    saturation_counts : float or None
    flags : frozenset[str]
        ``saturated``, ``near_saturation``, ``underexposed``.
    """

    peak_counts: float
    saturated_pixels: int
    saturation_counts: float | None
    flags: frozenset[str]


def count_at_least(values: np.ndarray, level: float) -> int:
    """Pixels ``>= level`` (see :func:`imaging.calibration.at_least`)."""
    return int(np.count_nonzero(at_least(values, level)))


def check_exposure(
    counts: np.ndarray,
    *,
    bias_counts: float,
    saturation_counts: float | None,
    near_fraction: float = 0.9,
    min_peak_counts: float = 600.0,
    peak_counts: float | None = None,
) -> ExposureCheck:
    """Exposure QC of one raw luminescent image.

    Parameters
    ----------
    counts : ndarray, shape (rows, cols)
        Raw counts (not modified).
    bias_counts : float
        Read bias level [counts].
    saturation_counts : float or None
        ``CCD Saturation Level`` (61000 on the reference camera).
    near_fraction : float
        ``near_saturation`` when the peak (raw, with bias) reaches this fraction of the
        saturation level: the CCD leaves its linear range before it saturates.
    min_peak_counts : float
        ``underexposed`` when the peak above bias is below this: relative Poisson noise of the
        brightest pixel above ~4 % and quantification dominated by read noise and the dark
        frame (a heuristic default; Living Image's auto-exposure aims far higher).
    peak_counts : float, optional
        The peak above ``bias_counts`` after cosmic-ray removal with the default
        :class:`CosmicRayRemoval`, when the caller has it (:func:`calibrate_counts` records it
        in its ``cosmic_rays`` step for a level bias and no dark): saves a pass over the image.

    Notes
    -----
    The peak is taken after cosmic-ray removal so a cosmic neither hides an underexposed image
    nor fakes a near-saturated one, while a real source keeps its peak; ``saturated`` counts
    every raw pixel (a cosmic that saturates still invalidates the pixels it hits).
    """
    raw = np.asarray(counts)
    if raw.ndim != 2 or raw.size == 0:
        raise ValueError(f"expected a non-empty 2-D image, got shape {raw.shape}")
    if peak_counts is None:
        cleaned = raw.astype(np.float32)  # one working copy (was three)
        cleaned -= np.float32(bias_counts)
        _remove_cosmics_inplace(cleaned, CosmicRayRemoval())
        peak_counts = float(cleaned.max())
    peak = peak_counts
    flags = set()
    saturated = 0
    if saturation_counts is not None:
        saturated = count_at_least(raw, saturation_counts)
        if saturated:
            flags.add("saturated")
        elif peak + bias_counts >= near_fraction * saturation_counts:
            flags.add("near_saturation")
    if peak < min_peak_counts:
        flags.add("underexposed")
    return ExposureCheck(
        peak_counts=peak,
        saturated_pixels=saturated,
        saturation_counts=saturation_counts,
        flags=frozenset(flags),
    )


@dataclass(frozen=True, kw_only=True)
class AcquisitionTime:
    """When a click's luminescent image was taken.

    Attributes
    ----------
    utc : datetime or None
        From ``Acquisition Seconds`` (seconds since 1904-01-01 00:00 UTC, the Igor Pro epoch
        Living Image uses), timezone-aware.
    local : datetime or None
        ``Acquisition Date`` + ``Acquisition Time`` as printed (the instrument PC's clock),
        naive.
    utc_offset : timedelta or None
        ``local − utc`` rounded to 15 minutes, when both are known.
    """

    utc: datetime | None
    local: datetime | None
    utc_offset: timedelta | None


_IGOR_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)


def acquisition_time(click: IvisClick) -> AcquisitionTime:
    """The luminescent image's acquisition time (UTC and the instrument's local clock)."""
    section = click.luminescent.section
    utc = None
    seconds = section.get("Acquisition Seconds")
    if seconds:
        try:
            utc = _IGOR_EPOCH + timedelta(seconds=float(seconds))
        except (ValueError, OverflowError):
            utc = None
    local = None
    date_text, time_text = section.get("Acquisition Date"), section.get("Acquisition Time")
    if date_text and time_text:
        for fmt in ("%A, %B %d, %Y %H:%M:%S", "%B %d, %Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"):
            try:
                local = datetime.strptime(f"{date_text.strip()} {time_text.strip()}", fmt)
                break
            except ValueError:
                continue
    offset = None
    if utc is not None and local is not None:
        raw = (local - utc.replace(tzinfo=None)).total_seconds()
        offset = timedelta(minutes=15 * round(raw / 900))
    return AcquisitionTime(utc=utc, local=local, utc_offset=offset)


@dataclass(frozen=True, kw_only=True)
class LuciferinTiming:
    """Time from D-luciferin injection to acquisition.

    Attributes
    ----------
    minutes : float
        Acquisition minus injection [min]; negative when acquired before the injection.
    window_min : tuple[float, float]
    flags : frozenset[str]
        ``outside_luciferin_window`` and, when negative, ``acquired_before_injection``.
    """

    minutes: float
    window_min: tuple[float, float]
    flags: frozenset[str]


def luciferin_timing(
    injected_at: datetime,
    acquired_at: datetime,
    *,
    window_min: tuple[float, float] = (5.0, 15.0),
) -> LuciferinTiming:
    """Minutes since D-luciferin injection and whether they fall in the imaging window.

    Parameters
    ----------
    injected_at, acquired_at : datetime
        Both timezone-aware, or both naive on the same clock.
    window_min : (float, float)
        Accepted minutes after injection, inclusive. The default 5–15 min is the convention
        for i.p. D-luciferin 150 mg/kg (peak ~8 min, BLI.md); a study with its own protocol
        (a later plateau, s.c. injection) passes its own window.

    Raises
    ------
    ValueError
        One datetime aware and the other naive, or an empty window.
    """
    if (injected_at.tzinfo is None) != (acquired_at.tzinfo is None):
        raise ValueError(
            "injection and acquisition times must both carry a UTC offset or both be local "
            "times of the same clock"
        )
    lo, hi = window_min
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"window_min must be (low, high) with low ≤ high, got {window_min!r}")
    minutes = (acquired_at - injected_at).total_seconds() / 60.0
    flags = set()
    if not lo <= minutes <= hi:
        flags.add("outside_luciferin_window")
    if minutes < 0:
        flags.add("acquired_before_injection")
    return LuciferinTiming(minutes=minutes, window_min=(lo, hi), flags=frozenset(flags))


@dataclass(frozen=True, kw_only=True)
class KineticPeak:
    """The peak of one animal's kinetic sequence (several clicks after one injection).

    Attributes
    ----------
    index : int
        Position of the peak in the given sequence.
    value : float
        Peak flux (or radiance).
    minutes : float or None
        Its time since injection, when times were given.
    flags : frozenset[str]
        ``peak_at_last_point`` (still rising when imaging stopped) or ``peak_at_first_point``
        (imaging may have started after the peak); with fewer than 3 finite points only
        ``too_few_points`` (where a peak's position means nothing).
    """

    index: int
    value: float
    minutes: float | None
    flags: frozenset[str]


def kinetic_peak(values: Sequence[float], *, minutes: Sequence[float] | None = None) -> KineticPeak:
    """Peak of a kinetic curve; non-finite values (failed measurements) are ignored.

    Raises
    ------
    ValueError
        No finite value, or ``minutes`` of another length or not increasing.
    """
    v = np.asarray(values, dtype=np.float64)
    if minutes is not None:
        t = np.asarray(minutes, dtype=np.float64)
        if t.shape != v.shape:
            raise ValueError(f"{v.size} values but {t.size} times")
        if np.any(np.diff(t) <= 0):
            raise ValueError("times of a kinetic sequence must increase")
    finite = np.flatnonzero(np.isfinite(v))
    if finite.size == 0:
        raise ValueError("a kinetic sequence needs at least one finite value")
    index = int(finite[np.argmax(v[finite])])
    flags = set()
    if finite.size < 3:
        flags.add("too_few_points")
    elif index == finite[-1]:
        flags.add("peak_at_last_point")
    elif index == finite[0]:
        flags.add("peak_at_first_point")
    return KineticPeak(
        index=index,
        value=float(v[index]),
        minutes=float(minutes[index]) if minutes is not None else None,
        flags=frozenset(flags),
    )


def kinetic_sequences(
    acquired_at: Sequence[datetime],
    view: Sequence[str | None],
    animals: Sequence[Sequence[str]],
    *,
    max_gap_min: float = 30.0,
) -> list[int | None]:
    """Group one session's clicks into kinetic sequences.

    Clicks of the same view of the same set of mice, each taken within ``max_gap_min`` of the
    previous one of the group, form a kinetic curve (one injection imaged repeatedly). A click
    alone in its group is not a sequence.

    Parameters
    ----------
    acquired_at : sequence of datetime
        Acquisition times (all aware or all naive).
    view : sequence of str or None
        ``"dorsal"``, ``"ventral"``… (compared case-insensitively; ``None`` is its own view).
    animals : sequence of sequences of str
        The mice in each click (order ignored).
    max_gap_min : float
        Largest gap [min] inside one sequence.

    Returns
    -------
    list of int or None
        Per click, its sequence number (0, 1, … in order of first acquisition), ``None`` for a
        click that is no sequence.

    Raises
    ------
    ValueError
        Inputs of different lengths or a negative ``max_gap_min``.
    """
    n = len(acquired_at)
    if not (len(view) == len(animals) == n):
        raise ValueError("acquired_at, view and animals must have one value per click")
    if not (math.isfinite(max_gap_min) and max_gap_min >= 0):
        raise ValueError(f"max_gap_min must be ≥ 0, got {max_gap_min!r}")
    order = sorted(range(n), key=lambda i: acquired_at[i])
    open_groups: dict[tuple[object, frozenset[str]], tuple[int, datetime]] = {}
    group_of: list[int] = [0] * n
    next_group = 0
    for i in order:
        key = ((view[i] or "").casefold() or None, frozenset(animals[i]))
        last = open_groups.get(key)
        gap = (acquired_at[i] - last[1]).total_seconds() / 60.0 if last else math.inf
        if last is not None and gap <= max_gap_min:
            group = last[0]
        else:
            group, next_group = next_group, next_group + 1
        group_of[i] = group
        open_groups[key] = (group, acquired_at[i])
    sizes = Counter(group_of)
    numbering: dict[int, int] = {}
    out: list[int | None] = [None] * n
    for i in order:
        if sizes[group_of[i]] >= 2:
            out[i] = numbering.setdefault(group_of[i], len(numbering))
    return out


def failed_injections(
    animal: Sequence[object],
    arm: Sequence[object],
    session: Sequence[float],
    flux: Sequence[float],
    *,
    factor: float = 5.0,
) -> np.ndarray:
    """Flag measurements that look like a missed i.p. injection.

    A measurement (animal *a*, session *s*) is flagged when **all** hold:

    * its flux is ≥ ``factor`` times below the animal's previous session and its next
      session (its own neighbours in time: a tumour does not shrink ``factor``-fold and
      regrow in two sessions);
    * it is ≥ ``factor`` times below the median of the *other* animals of its arm that
      session (the arm did not drop together, as it would after a substrate or camera
      problem);
    * so it needs a previous and a next session: the first and last are never flagged.

    i.p. injections miss the peritoneum in 3–10 % of injections (BLI.md). Flagged values are
    kept; the statistics decide what to do with them.

    Parameters
    ----------
    animal, arm : sequences of hashables, one per measurement
    session : sequence of float
        Session order (day since injection, or any increasing key); one value per animal
        and session.
    flux : sequence of float
        Total flux [p/s] (one site); non-finite or ≤ 0 values are never flagged and never
        used as neighbours.
    factor : float
        > 1.

    Returns
    -------
    ndarray of bool
        ``suspected_failed_injection`` per measurement, in input order.

    Raises
    ------
    ValueError
        Inputs of different lengths, ``factor ≤ 1``, or an animal with two values for one
        session.
    """
    n = len(flux)
    if not (len(animal) == len(arm) == len(session) == n):
        raise ValueError("animal, arm, session and flux must have one value per measurement")
    if not (math.isfinite(factor) and factor > 1):
        raise ValueError(f"factor must be > 1, got {factor!r}")
    f = np.asarray(flux, dtype=np.float64)
    t = np.asarray(session, dtype=np.float64)
    usable = np.isfinite(f) & (f > 0)
    by_animal: dict[object, list[int]] = {}
    for i, a in enumerate(animal):
        by_animal.setdefault(a, []).append(i)
    by_arm_session: dict[tuple[object, float], list[int]] = {}
    for i in range(n):
        if usable[i]:
            by_arm_session.setdefault((arm[i], float(t[i])), []).append(i)
    out = np.zeros(n, dtype=bool)
    for a, rows in by_animal.items():
        order = sorted(rows, key=lambda i: t[i])
        times = [t[i] for i in order]
        if len(set(times)) != len(times):
            raise ValueError(f"animal {a!r} has two measurements for one session")
        good = [i for i in order if usable[i]]
        for k in range(1, len(good) - 1):
            i, prev, nxt = good[k], good[k - 1], good[k + 1]
            if not (f[prev] >= factor * f[i] and f[nxt] >= factor * f[i]):
                continue
            others = [j for j in by_arm_session.get((arm[i], float(t[i])), []) if j != i]
            if not others:
                continue
            if float(np.median(f[others])) >= factor * f[i]:
                out[i] = True
    return out
