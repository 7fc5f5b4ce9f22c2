"""Turnbull's nonparametric maximum-likelihood estimate of S(t) from interval-censored times.

Each event time is known only to lie in an interval (left, right]; the estimate puts
probability mass on the innermost (Turnbull) intervals by self-consistency iterations.
Used per arm by :func:`cohorts.interval_censored_survival`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._data import _AsDict
from ._errors import InvalidInputError

__all__ = ["TurnbullCurve", "TurnbullInterval", "turnbull"]

_TURNBULL_TOL = 1e-12
_TURNBULL_MAX_ITER = 100_000


@dataclass(frozen=True, slots=True)
class TurnbullInterval(_AsDict):
    """One Turnbull (innermost) interval and the probability mass the NPMLE puts in it.

    The interval is (``left``, ``right``] (``[left, right]`` when ``closed_left``, an exact
    event); ``right`` None is infinity (mass beyond the last image: never positive).
    ``survival``: S(t) for t from ``right`` up to the next interval's ``left``. Inside an
    interval the NPMLE is not unique (only the mass in it is): plots show a box there.
    """

    left: float
    right: float | None
    closed_left: bool
    mass: float
    survival: float


@dataclass(frozen=True, slots=True)
class TurnbullCurve(_AsDict):
    """Turnbull's NPMLE of S(t) for one arm from interval-censored times.

    Self-consistency (EM) iterations (Turnbull 1976, J R Stat Soc B 38:290)
    p_j <- (1/n) sum_i a_ij p_j / sum_k a_ik p_k, where a_ij = 1 if Turnbull interval j lies
    in animal i's interval, until max |change| < 1e-12. ``log_likelihood``
    sum_i log sum_j a_ij p_j. ``kkt_max``: max_j (1/n) sum_i a_ij / sum_k a_ik p_k, which is
    1 at the NPMLE (Gentleman & Geyer 1994) — a check that the maximum was reached.
    As R ``survfit(Surv(left, right, type = "interval2") ~ 1)``, which reports S at the
    midpoint of each interval and stops its EM earlier (differences up to ~1e-4).
    No confidence band is given (no standard one exists for the NPMLE).
    """

    arm: str
    n: int
    n_events: int
    intervals: tuple[TurnbullInterval, ...]
    log_likelihood: float
    iterations: int
    converged: bool
    kkt_max: float
    median_interval: tuple[float, float | None] | None = None

    def survival_at(self, time: float) -> float | None:
        """S(time), None where ``time`` lies inside a Turnbull interval (not unique)."""
        s = 1.0
        for iv in self.intervals:
            right = math.inf if iv.right is None else iv.right
            inside = (iv.left <= time if iv.closed_left else iv.left < time) and time < right
            if inside and iv.mass > 0:
                return None
            if time >= right:
                s = iv.survival
        return s


def turnbull(
    left: Sequence[float] | np.ndarray,
    right: Sequence[float | None] | np.ndarray,
    *,
    arm: str = "",
) -> TurnbullCurve:
    """Turnbull NPMLE of the survival function (see :class:`TurnbullCurve`).

    Parameters
    ----------
    left, right : array of float, days
        Each event time lies in (left, right]; ``right`` inf / None / NaN: right-censored at
        ``left``; ``left == right``: an exact time.
    arm : str
        Label carried into the result.
    """
    lo = np.asarray(left, dtype=np.float64)
    hi = np.array([math.inf if r is None else float(r) for r in right], dtype=np.float64)
    hi = np.where(np.isnan(hi), math.inf, hi)
    if lo.shape != hi.shape or lo.ndim != 1 or lo.size == 0:
        raise InvalidInputError("left and right must be equal-length, non-empty 1-d sequences")
    if not np.isfinite(lo).all() or (hi < lo).any():
        raise InvalidInputError("every interval needs a finite left <= right")
    n = lo.size
    exact = lo == hi
    # Endpoint order at one value: closed lefts (exact times), then rights (inclusive), then
    # open lefts: so (a, v] and (v, b] are disjoint while [v, v] lies in (a, v].
    lkind = np.where(exact, 0, 2)
    ends = sorted(
        {(float(v), int(k), "L") for v, k in zip(lo, lkind, strict=True)}
        | {(float(v), 1, "R") for v in hi}
    )
    rank = {(v, k): i for i, (v, k, _) in enumerate(ends)}
    pairs = [
        (ends[i], ends[i + 1])
        for i in range(len(ends) - 1)
        if ends[i][2] == "L" and ends[i + 1][2] == "R"
    ]
    lr = np.array([rank[(float(v), int(k))] for v, k in zip(lo, lkind, strict=True)])
    rr = np.array([rank[(float(v), 1)] for v in hi])
    jl = np.array([rank[a[:2]] for a, _ in pairs])
    jr = np.array([rank[b[:2]] for _, b in pairs])
    a = ((lr[:, None] <= jl[None, :]) & (jr[None, :] <= rr[:, None])).astype(np.float64)
    p = np.full(len(pairs), 1.0 / len(pairs))
    converged = False
    it = 0
    while not converged and it < _TURNBULL_MAX_ITER:
        it += 1
        new = (a * p).T @ (1.0 / (a @ p)) / n
        converged = float(np.max(np.abs(new - p))) < _TURNBULL_TOL
        p = new
    surv = np.clip(1.0 - np.cumsum(p), 0.0, 1.0)
    surv[-1] = 0.0 if math.isinf(pairs[-1][1][0]) else surv[-1]
    intervals = tuple(
        TurnbullInterval(
            float(lv[0]),
            None if math.isinf(rv[0]) else float(rv[0]),
            lv[1] == 0,
            float(pj),
            float(sj),
        )
        for (lv, rv), pj, sj in zip(pairs, p, surv, strict=True)
    )
    kkt = float(np.max(a.T @ (1.0 / (a @ p)) / n))
    median = None
    for iv in intervals:
        if iv.survival <= 0.5:
            median = (iv.left, iv.right)
            break
    return TurnbullCurve(
        arm,
        n,
        int(np.isfinite(hi).sum()),
        intervals,
        float(np.sum(np.log(a @ p))),
        it,
        converged,
        kkt,
        median,
    )
