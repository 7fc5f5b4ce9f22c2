"""Synthetic IVIS acquisitions with known truth (tests, benchmarks, demo).

Mice are shaded nude bodies on a dark stage in the photograph (their silhouettes are the
drawn ellipses); luciferase sources are 2-D Gaussians of known
total flux Φ [p/s] emitted into 4π sr, so the radiance is ``L = Φ / 4π · g(x, y)`` with
``g`` the Gaussian density [1/cm²] integrated exactly over each pixel (error functions).
Counts follow the inverse of :mod:`imaging.calibration`::

    counts = L · FF(r) · exposure_s · binning² / C_ccd + bias

The **synthetic camera** uses ``C_ccd(f) = 7.2e5 · f²`` p/s/cm²/sr per count/s at every FOV
(≈4× per f-stop, as real IVIS tables) and a mild flat-field polynomial; these constants are
made up for testing and written into the folder's ``Camera System Info`` like an instrument
would. The output is a complete Living Image folder (CRLF text, big-endian ``readbias.TIF``
to exercise both byte orders) that :func:`imaging.read_ivis_click` reads like a real one.

Why one long module: it is one generator — the scene (mice, sources), the physics above
(radiance, flat field, counts) and the writer of every file of a Living Image folder must
agree on the same constants, which a reader checks here in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from scipy.special import erf, expit

from .geometry import CircleRoi, EllipseRoi

__all__ = [
    "SYNTHETIC_C_CCD_F1",
    "SyntheticClick",
    "SyntheticMouse",
    "SyntheticSource",
    "default_hotel",
    "synthetic_c_ccd",
    "write_synthetic_click",
]

#: Synthetic C_ccd at f/1 [p/s/cm²/sr per count/s]; ×4 per f-stop.
SYNTHETIC_C_CCD_F1 = 7.2e5
_FF_K = (1.0, 0.0, -0.0015, 0.0, 0.0)
_FF_X0_CM, _FF_Y0_CM = 0.15, 0.3
_SHELVES = {"A": 4.0, "B": 6.6, "C": 13.2, "D": 22.4}
_READ_BIAS = 500.0
_DATA_MULTIPLIER = 10
_SATURATION = 61000


def synthetic_c_ccd(f_number: float) -> float:
    """Synthetic camera coefficient: ``7.2e5 · f²`` (≈ 4× per f-stop)."""
    return SYNTHETIC_C_CCD_F1 * f_number**2


@dataclass(frozen=True, kw_only=True)
class SyntheticSource:
    """A Gaussian light source; position [cm] from the field's top-left corner."""

    center_row_cm: float
    center_col_cm: float
    total_flux_ps: float
    sigma_cm: float = 0.25
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class SyntheticMouse:
    """A mouse body (ellipse, long axis along rows) on the photograph."""

    animal_number: str
    center_row_cm: float
    center_col_cm: float
    length_cm: float = 8.0
    width_cm: float = 2.6


@dataclass(frozen=True, kw_only=True)
class SyntheticClick:
    """What was written, for checking recovery.

    ``source_rois`` are circles of radius ``4 σ`` around each source (sensor pixels,
    enclosing 99.97 % of the flux), also written as Living Image ROI lines.
    """

    path: Path
    sources: tuple[SyntheticSource, ...]
    mice: tuple[SyntheticMouse, ...]
    source_rois: tuple[CircleRoi, ...]
    body_rois: tuple[EllipseRoi, ...]
    binning: int
    f_number: float
    fov_cm: float
    exposure_s: float
    c_ccd: float
    sensor_pixels: int
    cosmic_positions: tuple[tuple[int, int], ...]


def default_hotel(
    fluxes_ps: tuple[float, ...] = (2.0e5, 1.0e7, 8.0e6, 5.0e5, 1.0e5), *, fov_cm: float = 22.4
) -> tuple[tuple[SyntheticMouse, ...], tuple[SyntheticSource, ...]]:
    """Five mice side by side (a "hotel" image), one spine source each."""
    n = len(fluxes_ps)
    mice, sources = [], []
    for i, flux in enumerate(fluxes_ps):
        col = fov_cm * (i + 0.5) / n
        mouse = SyntheticMouse(
            animal_number=str(3466 + i),
            center_row_cm=fov_cm / 2,
            center_col_cm=col,
            length_cm=min(8.0, 0.7 * fov_cm),
            width_cm=min(2.6, 0.6 * fov_cm / n),
        )
        mice.append(mouse)
        sources.append(
            SyntheticSource(
                center_row_cm=fov_cm / 2 - 0.15 * mouse.length_cm,
                center_col_cm=col,
                total_flux_ps=flux,
                sigma_cm=min(0.25, 0.06 * fov_cm / n),
                label=f"{mouse.animal_number} spine",
            )
        )
    return tuple(mice), tuple(sources)


def _pixel_integrals(edges_cm: np.ndarray, center: float, sigma: float) -> np.ndarray:
    cdf = 0.5 * (1.0 + erf((edges_cm - center) / (sigma * math.sqrt(2.0))))
    return np.diff(cdf)


def _radiance(sources, n_pix: int, pix_cm: float) -> np.ndarray:
    edges = np.arange(n_pix + 1) * pix_cm
    radiance = np.zeros((n_pix, n_pix))
    for s in sources:
        gy = _pixel_integrals(edges, s.center_row_cm, s.sigma_cm)
        gx = _pixel_integrals(edges, s.center_col_cm, s.sigma_cm)
        # fraction of the source per pixel / pixel area = mean density [1/cm²]
        radiance += s.total_flux_ps / (4 * math.pi) * np.outer(gy, gx) / pix_cm**2
    return radiance


def _flat_field(n_pix: int, pix_cm: float) -> np.ndarray:
    x = (np.arange(n_pix) + 0.5 - n_pix / 2) * pix_cm - _FF_X0_CM
    y = (np.arange(n_pix) + 0.5 - n_pix / 2) * pix_cm + _FF_Y0_CM
    r = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)
    k0, k1, k2, k3, k4 = _FF_K
    return np.clip(k0 + r * (k1 + r * (k2 + r * (k3 + r * k4))), 0.5, 2.0)


def _photograph(mice, n_pix: int, pix_cm: float, rng: np.random.Generator) -> np.ndarray:
    """A grey photograph of nude mice lying prone on the IVIS's dark stage.

    Each body keeps exactly its ellipse as silhouette (what :func:`imaging.find_animals` must
    recover), shaded like a dome with a faint spine ridge and a skin texture; ears and a
    tapering tail are drawn dimmer than any body pixel so segmentation ignores them, and the
    stage is dark with a little vignetting and noise, as on the instrument.
    """
    centres = (np.arange(n_pix) + 0.5) * pix_cm
    rows, cols = centres[:, None], centres[None, :]
    field_cm = n_pix * pix_cm
    r2 = ((rows - field_cm / 2) ** 2 + (cols - field_cm / 2) ** 2) / (field_cm / 2) ** 2
    image = 220.0 + 80.0 * (1.0 - 0.5 * r2)  # dark stage, slightly vignetted
    body_level = 2600.0
    texture = _smooth_noise(rng, (n_pix, n_pix), max(1.0, 0.08 / pix_cm))
    for m in mice:
        half_len, half_width = m.length_cm / 2, m.width_cm / 2
        u = (rows - m.center_row_cm) / half_len  # −1 = head (top), +1 = tail end
        v = (cols - m.center_col_cm) / half_width
        d = np.sqrt(u**2 + v**2)
        inside = expit((1.0 - d) * 25.0)  # the silhouette's soft edge
        dome = 0.62 + 0.38 * np.sqrt(np.clip(1.0 - d**2, 0.0, 1.0))
        ridge = 0.06 * np.exp(-(v**2) / 0.02) * (np.abs(u) < 0.8)
        image += body_level * inside * (dome + ridge + 0.05 * texture)
        # ears at the head end, a tail from the rear end: below the body's darkest level
        faint = 0.3 * body_level
        for side in (-1.0, 1.0):
            ear = ((u + 0.78) / 0.09) ** 2 + ((v - 0.85 * side) / 0.28) ** 2
            image += faint * (1.0 - inside) * expit((1.0 - np.sqrt(ear)) * 12.0)
        along = (rows - (m.center_row_cm + half_len)) / (0.9 * m.length_cm)  # 0 → 1
        tail_half_width = 0.12 * (1.0 - 0.6 * np.clip(along, 0.0, 1.0))
        tail = (along > -0.02) & (along < 1.0) & (np.abs(cols - m.center_col_cm) < tail_half_width)
        image += 0.25 * body_level * tail * (1.0 - inside)
    image += rng.normal(0.0, 15.0, image.shape)
    return np.clip(np.rint(image), 0, 65535).astype(np.uint16)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-SD spatially correlated noise (a skin texture)."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), sigma_px)
    sd = float(noise.std())
    return noise / sd if sd > 0 else noise


def write_synthetic_click(
    directory: str | Path,
    *,
    mice: tuple[SyntheticMouse, ...] | None = None,
    sources: tuple[SyntheticSource, ...] | None = None,
    binning: int = 8,
    f_number: float = 1.0,
    fov_cm: float = 22.4,
    exposure_s: float | None = None,
    sensor_pixels: int = 1920,
    photograph_binning: int = 4,
    target_peak_counts: float = 30000.0,
    saturate: bool = False,
    noise: bool = False,
    cosmic_rays: int = 0,
    dark_counts: float | None = None,
    seed: int = 0,
    click_number: str = "SYN20260101120000",
) -> SyntheticClick:
    """Write a complete synthetic Living Image folder into ``directory``.

    Parameters
    ----------
    directory : path
        Created if needed; files are overwritten.
    mice, sources
        Defaults: :func:`default_hotel` (five mice, one spine source each).
    binning, f_number, fov_cm
        Camera settings; ``sensor_pixels`` must be divisible by ``binning`` and
        ``photograph_binning``.
    exposure_s : float, optional
        Default: auto-exposure so that the brightest pixel reaches ``target_peak_counts``
        above bias (like the instrument's auto-exposure).
    saturate : bool
        Expose 3× longer than auto-exposure so the brightest source saturates (clipped at
        65535 counts; ``CCD Saturation Level`` is 61000).
    noise : bool
        Poisson shot noise plus 3-count read noise.
    cosmic_rays : int
        Number of cosmic-ray hits (single pixels, 2 000–20 000 counts) at random places.
    dark_counts : float, optional
        Uniform dark charge added to the exposure and written as ``background.TIF``
        (``(bias + dark) × Data Multiplier``, same exposure).
    seed : int

    Returns
    -------
    SyntheticClick

    Raises
    ------
    ValueError
        ``sensor_pixels`` not divisible by the binnings (a programming error).
    """
    if sensor_pixels % binning or sensor_pixels % photograph_binning:
        raise ValueError("sensor_pixels must be divisible by both binnings")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mice is None or sources is None:
        default_mice, default_sources = default_hotel(fov_cm=fov_cm)
        mice = default_mice if mice is None else mice
        sources = default_sources if sources is None else sources
    n_pix = sensor_pixels // binning
    sensor_cm = fov_cm / sensor_pixels
    pix_cm = sensor_cm * binning
    c_ccd = synthetic_c_ccd(f_number)
    radiance = _radiance(sources, n_pix, pix_cm)
    signal_per_s = radiance * _flat_field(n_pix, pix_cm) * binning**2 / c_ccd
    if exposure_s is None:
        peak = float(signal_per_s.max())
        exposure_s = float(np.clip(target_peak_counts / peak, 0.001, 600.0)) if peak > 0 else 60.0
        if saturate:
            exposure_s *= 3.0
    net = signal_per_s * exposure_s
    if noise:
        net = rng.poisson(net).astype(np.float64) + rng.normal(0.0, 3.0, net.shape)
    cosmics: list[tuple[int, int]] = []
    for _ in range(cosmic_rays):
        r, c = (int(v) for v in rng.integers(1, n_pix - 1, 2))
        net[r, c] += rng.uniform(2000.0, 20000.0)
        cosmics.append((r, c))
    if dark_counts is not None:
        net = net + dark_counts
        dark_frame = np.full(
            (n_pix, n_pix), (_READ_BIAS + dark_counts) * _DATA_MULTIPLIER, dtype=np.float64
        )
        tifffile.imwrite(
            path / "background.TIF", np.clip(np.rint(dark_frame), 0, 65535).astype(np.uint16)
        )
    counts = np.clip(np.rint(net + _READ_BIAS), 0, 65535).astype(np.uint16)
    tifffile.imwrite(path / "luminescent.TIF", counts)
    bias_frame = np.full((n_pix, n_pix), _READ_BIAS * _DATA_MULTIPLIER, dtype=np.uint16)
    tifffile.imwrite(path / "readbias.TIF", bias_frame, byteorder=">")
    n_photo = sensor_pixels // photograph_binning
    photo = _photograph(mice, n_photo, sensor_cm * photograph_binning, rng)
    tifffile.imwrite(path / "photograph.TIF", photo)

    to_px = 1.0 / sensor_cm
    source_rois = tuple(
        CircleRoi(
            center_row=s.center_row_cm * to_px,
            center_col=s.center_col_cm * to_px,
            radius=4 * s.sigma_cm * to_px,
            label=s.label or f"source {i + 1}",
        )
        for i, s in enumerate(sources)
    )
    body_rois = tuple(
        EllipseRoi(
            center_row=m.center_row_cm * to_px,
            center_col=m.center_col_cm * to_px,
            semi_axis_col=m.width_cm / 2 * to_px,
            semi_axis_row=m.length_cm / 2 * to_px,
            label=m.animal_number,
        )
        for m in mice
    )
    _write_text(
        path,
        click_number,
        binning,
        photograph_binning,
        f_number,
        fov_cm,
        exposure_s,
        mice,
        source_rois,
        sensor_cm,
        dark=dark_counts is not None,
    )
    return SyntheticClick(
        path=path,
        sources=tuple(sources),
        mice=tuple(mice),
        source_rois=source_rois,
        body_rois=body_rois,
        binning=binning,
        f_number=f_number,
        fov_cm=fov_cm,
        exposure_s=exposure_s,
        c_ccd=c_ccd,
        sensor_pixels=sensor_pixels,
        cosmic_positions=tuple(cosmics),
    )


def _write_text(
    path: Path,
    click_number: str,
    binning: int,
    photo_binning: int,
    f_number: float,
    fov_cm: float,
    exposure_s: float,
    mice: tuple[SyntheticMouse, ...],
    rois: tuple[CircleRoi, ...],
    sensor_cm: float,
    *,
    dark: bool = False,
) -> None:
    animals = ", ".join(m.animal_number for m in mice)
    shelves = dict(_SHELVES)
    if not any(abs(v - fov_cm) < 1e-9 for v in shelves.values()):
        shelves["E"] = fov_cm
    f_numbers = sorted({1.0, 2.0, 4.0, 8.0, float(f_number)})
    camera = [
        "*** Camera System Info:\t",
        "#\tSYNTHETIC camera written by imaging.synthetic (constants are made up)",
        "Camera System ID:\tSYNTHETIC",
        f"CCD Saturation Level:\t{_SATURATION}",
    ]
    for shelf, fov in shelves.items():
        camera.append(f"Shelf Position {shelf} FOV:\t{fov:g}")
    for f in f_numbers:
        for fov in shelves.values():
            camera.append(f"Coef C-ccd at FOV {fov:g}, f{f:g}:\t{synthetic_c_ccd(f):.6E}")
    for shelf in shelves:
        for f in f_numbers:
            coefs = ",".join(f"{v:.6f}" for v in (*_FF_K, _FF_X0_CM, _FF_Y0_CM))
            camera.append(f"Shelf Position {shelf} FF5 f/{f:g} Coefs:\t{coefs}")
    camera.append("C-ccd Calibration units:\tp/sec/cm2/sr")
    click = [
        f"*** ClickNumber:\t{click_number}",
        "ClickInfoType:\tRawData",
        "Living Image Version:\tsynthetic (osteolux imaging)",
        "",
        "*** User Label Name Set:\tLiving Image Universal",
        "User:\tsynthetic",
        f"Animal Number:\t{animals}",
        "View:\tDorsal",
        "Time Point:\tday 0",
        "",
        "*** photographic image:\tphotograph.TIF",
        f"Binning Factor:\t{photo_binning}",
        "Image Units:\tcounts",
        "f Number:\t8",
        f"Field of View:\t{fov_cm:g}",
        "Exposure Time Sec:\t0.2",
        "",
        "*** readbias image:\treadbias.TIF",
        f"Data Multiplier:\t{_DATA_MULTIPLIER}",
        f"Binning Factor:\t{binning}",
        "Background Exposure (Seconds):\t0.0",
        "",
        *(
            [
                "*** darkcharge image:\tbackground.TIF",
                f"Data Multiplier:\t{_DATA_MULTIPLIER}",
                f"Read Bias Level:\t{_READ_BIAS:g}",
                f"Binning Factor:\t{binning}",
                f"Background Exposure (Seconds):\t{exposure_s:.9g}",
                "",
            ]
            if dark
            else []
        ),
        "*** luminescent image:\tluminescent.TIF",
        "Image Units:\tcounts",
        f"Binning Factor:\t{binning}",
        f"Luminescent Exposure (Seconds):\t{exposure_s:.9g}",
        "Luminescent Exposure Units:\tsec",
        f"f Number:\t{f_number:g}",
        f"Field of View:\t{fov_cm:g}",
        f"Read Bias Level:\t{_READ_BIAS:g}",
        "Emission filter:\tOpen",
        "Excitation filter:\tBlock",
        "Cosmic Corrected:\t0",
        "",
        *camera,
        "",
    ]
    (path / "ClickInfo.txt").write_bytes("\r\n".join(click).encode("cp1252"))
    roi_lines = [
        f"ROI {i + 1}:\tROI Type=Measurement;Bkg ROI=_none_;Shape=Circle;"
        f"Xc={r.center_col:.12g};Yc={r.center_row:.12g};Width={2 * r.radius:.12g};"
        f"Height={2 * r.radius:.12g};Angle=0.0000;Label={r.label};cm per pixel={sensor_cm:.12f};"
        for i, r in enumerate(rois)
    ]
    analyzed = [
        f"*** ClickNumber:\t{click_number}",
        "ClickInfoType:\tSingleClickAnalysis",
        "",
        "*** User Label Name Set:\tLiving Image Universal",
        f"Animal Number:\t{animals}",
        "View:\tDorsal",
        "",
        "*** ROIs:\t",
        *roi_lines,
        "",
    ]
    (path / "AnalyzedClickInfo.txt").write_bytes("\r\n".join(analyzed).encode("cp1252"))
