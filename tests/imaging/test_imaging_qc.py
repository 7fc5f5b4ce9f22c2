"""Acquisition QC: every flag on data built to trigger it and on data built not to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imaging import (
    AcquisitionSettings,
    acquisition_time,
    check_exposure,
    check_settings_series,
    failed_injections,
    kinetic_peak,
    luciferin_timing,
    read_ivis_click,
)
from imaging.calibration import at_least
from imaging.qc import count_at_least

BASE = AcquisitionSettings(
    exposure_s=60.0,
    binning=8,
    f_number=1.0,
    fov_cm=22.4,
    emission_filter="open",
    excitation_filter="block",
)


def _with(**changes: object) -> AcquisitionSettings:
    from dataclasses import replace

    return replace(BASE, **changes)


def test_identical_settings_raise_nothing() -> None:
    checks = check_settings_series([BASE] * 4)
    assert all(c.flags == frozenset() and c.impact == "none" for c in checks)


@pytest.mark.parametrize(
    ("changed", "impact", "flags"),
    [
        ({"emission_filter": "600"}, "incomparable", {"filter_changed"}),
        ({"excitation_filter": "465"}, "incomparable", {"filter_changed"}),
        ({"fov_cm": 13.2}, "caution", {"fov_changed"}),
        ({"f_number": 2.0}, "caution", {"f_number_changed"}),
        ({"binning": 4}, "caution", {"binning_changed"}),
        ({"exposure_s": 30.0}, "info", {"exposure_changed"}),
    ],
)
def test_one_changed_setting_in_a_series(
    changed: dict[str, object], impact: str, flags: set[str]
) -> None:
    series = [BASE, BASE, _with(**changed), BASE]
    checks = check_settings_series(series)
    odd = checks[2]
    assert odd.changed == frozenset(changed) and odd.impact == impact
    expected = set(flags) | ({"camera_settings_changed"} if impact != "info" else set())
    assert odd.flags == expected
    assert all(c.flags == frozenset() for i, c in enumerate(checks) if i != 2)
    assert odd.reference == BASE  # the most common setting


def test_exposure_change_is_incomparable_in_counts_and_rounding_is_not_a_change() -> None:
    checks = check_settings_series([BASE, _with(exposure_s=30.0)], calibrated=False)
    # a tie: the earliest value is the reference
    assert checks[1].impact == "incomparable" and "camera_settings_changed" in checks[1].flags
    rounded = check_settings_series([BASE, _with(exposure_s=60.3)])
    assert rounded[1].flags == frozenset()


def test_unknown_settings_are_not_changes() -> None:
    unknown = AcquisitionSettings(exposure_s=60.0)  # e.g. a TIFF without metadata
    checks = check_settings_series([BASE, BASE, unknown])
    assert checks[2].flags == frozenset()


def test_explicit_reference_and_settings_from_a_click(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    s = AcquisitionSettings.from_click(click)
    # ClickInfo.txt: 40 s, binning 8, f/1, FOV 22.4, Open / Block
    assert s == AcquisitionSettings(
        exposure_s=40.0,
        binning=8,
        f_number=1.0,
        fov_cm=22.4,
        emission_filter="open",
        excitation_filter="block",
    )
    (check,) = check_settings_series([s], reference=BASE)
    assert check.changed == {"exposure_s"}


def test_reference_click_acquisition_time(ivis_reference_folder: Path) -> None:
    t = acquisition_time(read_ivis_click(ivis_reference_folder))
    # "Acquisition Seconds: 3724249379" since 1904-01-01 UTC; local "11:42:59" on Jan 5
    # 2022 at St Jude (Memphis): US Central Standard Time, UTC−6 in January.
    assert t.utc == datetime(2022, 1, 5, 17, 42, 59, tzinfo=UTC)
    assert t.local == datetime(2022, 1, 5, 11, 42, 59)
    assert t.utc_offset == timedelta(hours=-6)


@pytest.mark.parametrize(
    ("minutes", "flags"),
    [
        (4.0, {"outside_luciferin_window"}),
        (5.0, set()),
        (12.0, set()),
        (15.0, set()),
        (16.0, {"outside_luciferin_window"}),
        (-2.0, {"outside_luciferin_window", "acquired_before_injection"}),
    ],
)
def test_luciferin_window(minutes: float, flags: set[str]) -> None:
    cst = timezone(timedelta(hours=-6))
    injected = datetime(2022, 1, 5, 11, 30, tzinfo=cst)
    acquired = (injected + timedelta(minutes=minutes)).astimezone(UTC)  # other offset
    timing = luciferin_timing(injected, acquired)
    assert timing.minutes == pytest.approx(minutes)
    assert timing.flags == frozenset(flags)


def test_luciferin_window_is_configurable_and_refuses_mixed_clocks() -> None:
    injected = datetime(2022, 1, 5, 11, 30)
    timing = luciferin_timing(injected, injected + timedelta(minutes=12), window_min=(8, 10))
    assert timing.flags == {"outside_luciferin_window"}
    with pytest.raises(ValueError, match="both"):
        luciferin_timing(injected, datetime(2022, 1, 5, 11, 40, tzinfo=UTC))
    with pytest.raises(ValueError, match="window_min"):
        luciferin_timing(injected, injected, window_min=(10, 5))


def _exposure_image(peak: float, *, cosmic: float | None = None) -> np.ndarray:
    rows, cols = np.mgrid[0:64, 0:64]
    image = 500.0 + peak * np.exp(-((rows - 32) ** 2 + (cols - 32) ** 2) / (2 * 3.0**2))
    if cosmic is not None:
        image[5, 5] = cosmic
    return np.rint(image).astype(np.uint16)


@pytest.mark.parametrize(
    ("peak", "cosmic", "flags"),
    [
        (20000.0, None, set()),
        (60600.0, None, {"saturated"}),  # 500 + 60600 ≥ 61000 at the centre
        (55000.0, None, {"near_saturation"}),  # 55500 ≥ 0.9 × 61000
        (300.0, None, {"underexposed"}),
        (300.0, 30000.0, {"underexposed"}),  # a cosmic does not hide underexposure
        (20000.0, 61000.0, {"saturated"}),  # a saturating cosmic still spoils its pixel
    ],
)
def test_exposure_flags(peak: float, cosmic: float | None, flags: set[str]) -> None:
    image = _exposure_image(peak, cosmic=cosmic)
    before = image.copy()
    check = check_exposure(image, bias_counts=500.0, saturation_counts=61000.0)
    assert check.flags == frozenset(flags)
    np.testing.assert_array_equal(image, before)


def test_reference_click_is_well_exposed(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    check = check_exposure(click.luminescent.data, bias_counts=496.628, saturation_counts=61000)
    assert check.flags == frozenset() and check.saturated_pixels == 0
    # the raw maximum (13108) is a cosmic; the peak is the brightest head's (10709 raw)
    assert check.peak_counts == pytest.approx(10709 - 496.628, rel=1e-6)


@pytest.mark.parametrize(("peak", "cosmic"), [(20000.0, None), (300.0, 30000.0), (55000.0, 9e3)])
def test_calibration_records_the_exposure_checks_peak(peak: float, cosmic: float | None) -> None:
    """calibrate_counts' recorded peak (level bias, no dark, default cosmic filter) is the
    peak check_exposure finds on its own, so the app can skip that pass."""
    from imaging import calibrate_counts

    image = _exposure_image(peak, cosmic=cosmic)
    calibrated = calibrate_counts(image, exposure_s=1.0, binning=1, c_ccd=1.0, bias_counts=500.0)
    steps = {s.name: s.parameters for s in calibrated.steps}
    alone = check_exposure(image, bias_counts=500.0, saturation_counts=61000.0)
    given = check_exposure(
        image,
        bias_counts=500.0,
        saturation_counts=61000.0,
        peak_counts=steps["cosmic_rays"]["peak_counts"],  # type: ignore[arg-type]
    )
    assert given == alone


def test_kinetic_peak() -> None:
    minutes = [5, 10, 15, 20, 25]
    peak = kinetic_peak([1e6, 3e6, 4e6, 3.5e6, 2e6], minutes=minutes)
    assert (peak.index, peak.value, peak.minutes, peak.flags) == (2, 4e6, 15.0, frozenset())
    rising = kinetic_peak([1e6, 2e6, 3e6], minutes=[5, 10, 15])
    assert rising.flags == {"peak_at_last_point"}
    falling = kinetic_peak([3e6, 2e6, 1e6])
    assert falling.flags == {"peak_at_first_point"} and falling.minutes is None
    with_gap = kinetic_peak([1e6, float("nan"), 2e6, 1.5e6])
    assert with_gap.index == 2 and with_gap.flags == frozenset()
    assert kinetic_peak([1e6, 2e6]).flags == {"too_few_points"}
    with pytest.raises(ValueError, match="increase"):
        kinetic_peak([1.0, 2.0, 3.0], minutes=[5, 5, 10])
    with pytest.raises(ValueError, match="finite"):
        kinetic_peak([float("nan")])


def _study(rng: np.random.Generator, *, dip: float | None, dip_arm: bool = False):
    """Two arms × 6 mice × 5 sessions of exponential growth with 20 % log-normal noise; mouse
    'a2' of arm A drops by ``dip`` at session 3 (or, with ``dip_arm``, the whole arm A)."""
    animal, arm, session, flux = [], [], [], []
    for a in ("A", "B"):
        for m in range(6):
            for s in range(5):
                value = 1e6 * 2.0**s * rng.lognormal(0.0, 0.2)
                hit = s == 2 and a == "A" and (dip_arm or m == 2)
                if dip is not None and hit:
                    value /= dip
                animal.append(f"{a.lower()}{m}")
                arm.append(a)
                session.append(float(s * 7))
                flux.append(value)
    return animal, arm, session, flux


def test_failed_injection_is_flagged_not_dropped() -> None:
    rng = np.random.default_rng(7)
    animal, arm, session, flux = _study(rng, dip=20.0)
    flagged = failed_injections(animal, arm, session, flux)
    hits = [(animal[i], session[i]) for i in np.flatnonzero(flagged)]
    assert hits == [("a2", 14.0)]
    assert len(flagged) == len(flux)


def test_failed_injection_not_flagged_for_noise_arm_wide_dips_or_ends() -> None:
    rng = np.random.default_rng(7)
    assert not failed_injections(*_study(rng, dip=None)).any()
    # the whole arm dropped that day (substrate batch, camera): not one animal's injection
    assert not failed_injections(*_study(rng, dip=20.0, dip_arm=True)).any()
    # a 3-fold dip is within factor 5
    assert not failed_injections(*_study(rng, dip=3.0)).any()
    # no next session: a last-session drop is not flagged (it may be real: death, regression)
    animal = ["x", "x", "y", "y", "z", "z"]
    arm = ["A"] * 6
    session = [0.0, 7.0] * 3
    flux = [1e6, 1e4, 1e6, 2e6, 1e6, 2e6]
    assert not failed_injections(animal, arm, session, flux).any()


def test_failed_injection_input_errors() -> None:
    with pytest.raises(ValueError, match="one value per measurement"):
        failed_injections(["a"], ["A"], [0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="factor"):
        failed_injections(["a"], ["A"], [0.0], [1.0], factor=1.0)
    with pytest.raises(ValueError, match="two measurements"):
        failed_injections(["a", "a"], ["A", "A"], [0.0, 0.0], [1.0, 2.0])


def test_kinetic_sequences_group_same_view_same_mice_close_in_time() -> None:
    from imaging import kinetic_sequences

    t0 = datetime(2026, 3, 2, 10, 0)
    minutes = [0, 5, 10, 15, 3, 8, 60, 200]
    view = ["dorsal", "Dorsal", "dorsal", "dorsal", "ventral", "ventral", "dorsal", "dorsal"]
    mice = [("1", "2"), ("2", "1"), ("1", "2"), ("1", "2")]  # order of the mice is ignored
    mice += [("1", "2")] * 3 + [("3",)]
    groups = kinetic_sequences([t0 + timedelta(minutes=m) for m in minutes], view, mice)
    # dorsal 0–15 min: one curve; ventral 3, 8: another; dorsal at 60 min (45 min after the
    # last) and the other mice at 200 min stand alone
    assert groups == [0, 0, 0, 0, 1, 1, None, None]
    shuffled = kinetic_sequences(
        [t0 + timedelta(minutes=m) for m in reversed(minutes)],
        list(reversed(view)),
        list(reversed(mice)),
    )
    assert shuffled == [None, None, 1, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="one value per click"):
        kinetic_sequences([t0], [], [])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
@pytest.mark.parametrize(
    "level",
    [
        61000.0,
        60999.5,
        61000.25,
        0.0,
        -0.5,
        -40000.0,
        255.0,
        255.5,
        70000.0,
        2.0**64,
        np.inf,
        -np.inf,
        np.nan,
    ],
)
def test_at_least_is_the_comparison_in_float64(dtype: Any, level: float) -> None:
    """An integer image is compared in its own type: the same mask (and count) as comparing
    every pixel, as float64, with the level (the plain numpy expression, the reference)."""
    rng = np.random.default_rng(7)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = rng.integers(max(info.min, -70000), min(info.max, 70000), (64, 64), endpoint=True)
        values = values.astype(dtype)
        values.flat[:4] = [info.min, info.max, 61000, 255] if info.max >= 61000 else [0, 255, 1, 2]
    else:
        values = rng.normal(30000, 30000, (64, 64)).astype(dtype)
    expected = values.astype(np.float64) >= np.float64(level)
    np.testing.assert_array_equal(at_least(values, level), expected)
    assert count_at_least(values, level) == int(np.count_nonzero(expected))
