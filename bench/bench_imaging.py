"""Benchmark of the imaging core; prints medians and ratios measured in the same run.

Run: ``.venv/bin/python bench/bench_imaging.py`` (photutils needed for the comparison).

1. 10-ROI quantification on a 2048² float32 image vs photutils ``aperture_photometry``
   (``method="exact"``), same numbers required.
2. Full calibration (bias, saturation mask, cosmic-ray removal, C_ccd / exposure /
   binning, flat field) + 10-ROI quantification of a 2048² acquisition vs one ``numpy`` sum
   over the same float32 image (the memory-bandwidth floor); a naive 3×3
   ``scipy.ndimage.median_filter`` for context.
3. Peak extra memory (tracemalloc) while processing one acquisition, as a multiple of the
   image's float32 size.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imaging import (
    CircleRoi,
    calibrate_counts,
    image_from_array,
    quantify,
    read_ivis_click,
)
from imaging.synthetic import SyntheticSource, default_hotel, write_synthetic_click

SIZE = 2048
N_ROIS = 10
RADIUS_PX = 60.0


def median_time(fn: Callable[[], object], *, repeat: int = 15, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_rois() -> None:
    from photutils.aperture import CircularAperture, aperture_photometry

    rng = np.random.default_rng(0)
    image = rng.random((SIZE, SIZE), dtype=np.float32)
    xy = rng.uniform(200, SIZE - 200, (N_ROIS, 2))
    aperture = CircularAperture(xy, RADIUS_PX)
    rois = [
        CircleRoi(center_row=y + 0.5, center_col=x + 0.5, radius=RADIUS_PX, label=str(i))
        for i, (x, y) in enumerate(xy)
    ]
    calibrated = image_from_array(image, units="p/s/cm²/sr", sensor_pixel_cm=0.01)
    ours = [m.signal_sum for m in quantify(calibrated, rois, method="exact")]
    theirs = np.asarray(aperture_photometry(image, aperture, method="exact")["aperture_sum"])
    max_rel = float(np.max(np.abs(np.asarray(ours) / theirs - 1)))
    t_ours = median_time(lambda: quantify(calibrated, rois, method="exact"))
    t_center = median_time(lambda: quantify(calibrated, rois, method="center"))
    t_phot = median_time(lambda: aperture_photometry(image, aperture, method="exact"), repeat=7)
    # where the time goes: the closed-form boundary weights alone, and the cost of touching
    # every box pixel once (one float64 sum per ROI; quantify needs Σ w·L, Σ w·L², min, max)
    from imaging.geometry import _ellipse_runs
    from imaging.quantify import _stats_all

    radii = np.full(N_ROIS, RADIUS_PX)
    n_rows = int(2 * RADIUS_PX) + 2
    t_geometry = median_time(
        lambda: _ellipse_runs(xy[:, 1], xy[:, 0], radii, radii, n_rows=n_rows, method="exact")
    )
    # geometry + statistics, without building the result objects
    t_stats = median_time(lambda: _stats_all(calibrated, rois, "exact"))
    half = int(RADIUS_PX) + 1
    boxes = [image[int(y) - half : int(y) + half, int(x) - half : int(x) + half] for x, y in xy]
    t_floor = median_time(lambda: [box.sum(dtype=np.float64) for box in boxes])
    singles = [CircularAperture(p, RADIUS_PX) for p in xy]
    t_phot_each = median_time(
        lambda: [aperture_photometry(image, a, method="exact") for a in singles], repeat=7
    )
    print(f"[1] {N_ROIS} circular ROIs r={RADIUS_PX:g} px on {SIZE}² float32")
    print(f"    photutils aperture_photometry exact : {t_phot * 1e3:8.2f} ms")
    print(
        f"    photutils, one call per ROI (shapes/radii differ in practice): "
        f"{t_phot_each * 1e3:8.2f} ms"
    )
    print(f"    imaging quantify exact              : {t_ours * 1e3:8.2f} ms")
    print(f"      of which exact boundary weights   : {t_geometry * 1e3:8.2f} ms")
    print(
        f"      of which sums/min/max over pixels : {(t_stats - t_geometry) * 1e3:8.2f} ms"
        "  (row-run statistics alone minus the line above)"
    )
    print(
        f"      of which results, flags (Python)  : {(t_ours - t_stats) * 1e3:8.2f} ms"
        "  (quantify minus row-run statistics alone)"
    )
    print(
        f"      one float64 sum of each ROI box   : {t_floor * 1e3:8.2f} ms  (numpy floor, 1 pass)"
    )
    print(f"    imaging quantify center             : {t_center * 1e3:8.2f} ms")
    print(
        f"    speed-up exact vs photutils exact   : {t_phot / t_ours:8.1f}×"
        "  (regression floor ≥ 1.5×)"
    )
    print(f"    speed-up vs one photutils call/ROI  : {t_phot_each / t_ours:8.1f}×")
    print(
        f"    speed-up center vs photutils exact  : {t_phot / t_center:8.1f}×"
        "  (regression floor ≥ 2.5×)"
    )
    print(f"    max relative difference of sums     : {max_rel:.2e}  (goal ≤ 1e-9)")


def bench_pipeline() -> None:
    from scipy import ndimage

    with tempfile.TemporaryDirectory() as tmp:
        mice, _ = default_hotel()
        sources = tuple(
            SyntheticSource(
                center_row_cm=22.4 * (0.3 + 0.4 * (i // 5)),
                center_col_cm=22.4 * (0.1 + 0.2 * (i % 5)),
                total_flux_ps=1e9 * (i + 1),
                sigma_cm=0.25,
            )
            for i in range(N_ROIS)
        )
        truth = write_synthetic_click(
            tmp,
            mice=mice,
            sources=sources,
            binning=1,
            sensor_pixels=SIZE,
            f_number=1,
            cosmic_rays=50,
            noise=True,
            photograph_binning=8,
        )
        click = read_ivis_click(tmp)
    counts = click.luminescent.data
    camera = click.camera
    assert camera is not None
    s = click.settings
    ff = camera.flat_field_for(s.fov_cm, s.f_number)
    c_ccd = camera.c_ccd_for(s.fov_cm, s.f_number)
    assert ff is not None and c_ccd is not None
    rois = truth.source_rois

    def pipeline() -> object:
        image = calibrate_counts(
            counts,
            exposure_s=s.exposure_s,
            binning=s.binning,
            c_ccd=c_ccd,
            bias_counts=s.read_bias_level or 0.0,
            flat_field=ff,
            sensor_pixel_cm=click.sensor_pixel_cm,
            saturation_counts=camera.saturation_counts,
        )
        return quantify(image, rois)

    # Correctness of what is timed
    results = pipeline()
    errors = [
        m.total_flux_ps / src.total_flux_ps - 1 for m, src in zip(results, sources, strict=True)
    ]
    as_float = counts.astype(np.float32)
    t_sum = median_time(lambda: np.sum(as_float), repeat=31)
    t_pipe = median_time(pipeline)
    t_median = median_time(lambda: ndimage.median_filter(as_float, size=3), repeat=3, warmup=1)
    print(f"[2] calibration + cosmic removal + {N_ROIS}-ROI quantification, {SIZE}² uint16 counts")
    print(f"    numpy sum (float32, floor)          : {t_sum * 1e3:8.2f} ms")
    print(
        f"    full pipeline (flat field cached)   : {t_pipe * 1e3:8.2f} ms"
        f"   ratio {t_pipe / t_sum:6.1f}×  (goal ≤ 10×)"
    )
    print(
        f"    naive 3×3 median_filter alone       : {t_median * 1e3:8.2f} ms"
        f"   ratio {t_median / t_sum:6.1f}×  (context)"
    )
    print(
        f"    flux recovery, worst of {N_ROIS}          : {max(abs(e) for e in errors) * 100:.2f} %"
    )

    from imaging.calibration import _flat_field_factor

    _flat_field_factor.cache_clear()
    start = time.perf_counter()
    pipeline()
    t_cold = time.perf_counter() - start
    print(
        f"    first acquisition of a geometry (builds the flat-field map): {t_cold * 1e3:.2f} ms"
        f"   ratio {t_cold / t_sum:6.1f}×"
    )
    _flat_field_factor.cache_clear()
    tracemalloc.start()
    pipeline()
    _, peak_cold = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    pipeline()
    _, peak_warm = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    unit = SIZE * SIZE * 4
    print("[3] peak extra memory (tracemalloc) / float32 image size")
    print(f"    first acquisition (builds flat-field map) : {peak_cold / unit:5.2f}×  (goal ≤ 4×)")
    print(f"    next acquisitions (map cached)            : {peak_warm / unit:5.2f}×")


REFERENCE_CLICK = (
    Path(__file__).resolve().parents[2] / "shared/reference-data/ivis/DG20220105114235"
)
# Total flux [p/s] Living Image printed on the reference click's overlay
LIVING_IMAGE_TOTAL_FLUX_PS = (2.370e5, 9.330e6, 7.892e6, 4.445e5, 7.398e4)


def bench_fidelity() -> None:
    """Primary (Living Image's corrected image) vs raw-count calibration on the reference."""
    from imaging import corrected_image, quantify_click, rois_from_click

    print("[4] calibration fidelity, reference click DG20220105114235 (240², 5 ROIs)")
    if not REFERENCE_CLICK.is_dir():
        print(f"    skipped: {REFERENCE_CLICK} not found")
        return
    click = read_ivis_click(REFERENCE_CLICK)
    rois = rois_from_click(click)
    result = quantify_click(click, rois)
    for m, c, li in zip(
        result.measurements, result.comparisons, LIVING_IMAGE_TOTAL_FLUX_PS, strict=True
    ):
        raw = c.raw_total_flux_ps
        flag = "calibration_disagrees" if c.disagrees else ""
        print(
            f"    {m.label}: primary {(m.total_flux_ps / li - 1) * 100:+6.2f} %   raw counts "
            f"{(raw / li - 1) * 100:+6.2f} % vs Living Image   dark-equivalent "
            f"{c.dark_equivalent_counts:+6.2f} counts/px   " + flag
        )
    t_primary = median_time(lambda: quantify(corrected_image(click), rois))
    t_checked = median_time(lambda: quantify_click(click, rois))
    print(f"    primary only (corrected image + ROIs): {t_primary * 1e3:8.2f} ms")
    print(
        f"    quantify_click (+ raw cross-check)   : {t_checked * 1e3:8.2f} ms"
        f"   ratio {t_checked / t_primary:5.1f}×"
    )


def main() -> None:
    print(f"imaging bench — numpy {np.__version__}, python {sys.version.split()[0]}")
    bench_rois()
    bench_pipeline()
    bench_fidelity()


if __name__ == "__main__":
    main()
