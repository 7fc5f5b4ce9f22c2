"""One colour range for every image of a study, with one image in memory at a time.

``imaging.colour_range`` pools every image's pixels into one array, so a study of a few
hundred 2048² clicks would need tens of GB at once. This gives the same range (the same
order statistics, interpolated as ``numpy.percentile``) in two passes over the images:
the first counts the pixels in 2**20 bins of their float32 bit patterns (order-preserving
keys), the second keeps only the pixels of the bins that hold the wanted ranks (each bin
spans a relative width of 2**-11), from which the exact values are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np

_BITS = 20
_SHIFT = np.uint32(32 - _BITS)
_SIGN = np.uint32(1 << 31)


class NoPixels(ValueError):
    """No pixel the scale can draw (``log``: none positive; ``linear``: none finite)."""


def _drawn(radiance: np.ndarray, scale: str) -> np.ndarray:
    finite = np.asarray(radiance)[np.isfinite(radiance)]
    return finite[finite > 0] if scale == "log" else finite


def _bins(values: np.ndarray) -> np.ndarray:
    """Each value's bin: the top bits of its float32 pattern with the sign folded so that
    the bins ascend with the values (float32 rounding is monotone, so this holds for
    float64 values too)."""
    with np.errstate(over="ignore"):  # a float64 beyond float32's range: +/-inf, still in order
        bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    keys = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return (keys >> _SHIFT).astype(np.intp)


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's interpolation between neighbouring order statistics."""
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def study_colour_range(
    radiances: Callable[[], Iterable[np.ndarray]],
    *,
    scale: Literal["log", "linear"],
    percentile: float = 99.9,
    dynamic_range: float = 50.0,
) -> tuple[float, float]:
    """``imaging.colour_range`` of every image ``radiances()`` yields (called twice: one
    pass to count, one to read the values), never holding more than one image: log, from
    ``vmax / dynamic_range`` to ``vmax``, the ``percentile`` of the positive finite pixels
    pooled; linear, from their median to that percentile of the finite pixels.

    Raises ``NoPixels`` when no pixel can be drawn on that scale."""
    counts = np.zeros(1 << _BITS, dtype=np.int64)
    for radiance in radiances():
        counts += np.bincount(_bins(_drawn(radiance, scale)), minlength=counts.size)
    total = int(counts.sum())
    if total == 0:
        raise NoPixels(
            "no positive pixel in any image: a log scale cannot be drawn"
            if scale == "log"
            else "no finite pixel in any image"
        )
    wanted = [50.0, percentile] if scale == "linear" else [percentile]
    positions = [q / 100 * (total - 1) for q in wanted]
    ranks = {r for p in positions for r in (int(p), min(int(p) + 1, total - 1))}
    ends = np.cumsum(counts)
    bin_of = {r: int(np.searchsorted(ends, r, side="right")) for r in ranks}
    kept: dict[int, list[np.ndarray]] = {b: [] for b in bin_of.values()}
    chosen = np.fromiter(kept, dtype=np.intp)
    for radiance in radiances():
        values = _drawn(radiance, scale)
        bins = _bins(values)
        inside = np.isin(bins, chosen)
        for b in np.unique(bins[inside]):
            kept[int(b)].append(values[bins == b].astype(np.float64))
    ordered = {b: np.sort(np.concatenate(parts)) for b, parts in kept.items()}

    def at(rank: int) -> float:
        b = bin_of[rank]
        return float(ordered[b][rank - (ends[b] - counts[b])])

    def quantile(position: float) -> float:
        low = int(position)
        return _lerp(at(low), at(min(low + 1, total - 1)), position - low)

    if scale == "log":
        hi = quantile(positions[0])
        return hi / dynamic_range, hi
    lo, hi = (quantile(p) for p in positions)
    return lo, max(hi, lo + 1e-12)
