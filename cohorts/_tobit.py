"""Left-censored (Tobit) linear mixed model: values below the detection limit are data.

A value below its detection limit says only that the signal was at most the limit. Raising
it to the limit, to half the smallest detected value or dropping it biases the growth
rates (early points of a slow arm are censored more often than those of a fast one). The
likelihood-based alternative (Beal 2001, J Pharmacokinet Pharmacodyn 28:481, "M3"; Thiebaut
& Jacqmin-Gadda 2004, Comput Methods Programs Biomed 74:255; Vaida & Liu 2009, J Comput
Graph Stat 18:797) uses each censored point through the probability of lying below the
limit.

Model, for animal i of arm g at day t (y on the analysis scale, e.g. log10 p/s)::

    y_it = b0 + b_g + (b_day + b_g:day) t + u0_i + u1_i t + e_it,
    u_i = (u0_i, u1_i) ~ N(0, G),   e_it ~ N(0, sigma^2)

An observed point contributes the normal density phi((y - mu)/sigma)/sigma, a point below
its limit c (observed value < c; it enters as y = c) the normal CDF Phi((c - mu)/sigma),
with mu = x'beta + z'u. The marginal likelihood of animal i integrates over u_i::

    L_i = int prod_t f_it(u) N(u; 0, G) du

by adaptive Gauss-Hermite quadrature (Pinheiro & Bates 1995, J Comput Graph Stat 4:12;
Liu & Pierce 1994, Biometrika 81:624): with u = L v (G = L L'), the mode v_i of the log
integrand h_i(v) is found by Newton's method (h_i is concave: log Phi is), and the
integral is |A_i| sum_k w_k exp(h_i(v_i + A_i z_k)) / phi(z_k) on a product grid of
``quadrature_points`` nodes per dimension (A_i A_i' = (-h_i''(v_i))^-1; 1 node = Laplace).
For an animal with no censored point the integrand is Gaussian and the rule is exact.

Parameters (beta, log sigma, Cholesky factor of G with log diagonal) are estimated by
maximum likelihood (L-BFGS-B, then Newton steps on finite-difference derivatives);
standard errors come from the observed information: the inverse of the central-difference
Hessian of -log L at the optimum, its beta block.

Inference on a contrast l'beta: Wald, se = sqrt(l' V l). With random effects, t with
df = animals - arms (the between-animal containment df, as SAS ``DDFM=CONTAIN`` for an
effect that varies between animals: the arms' slopes); without random effects z (normal),
as R ``survreg``. With ``random_effects="none"`` the model is the Tobit regression of R
``survival::survreg(Surv(y, event, type="left") ~ arm * day, dist="gaussian")``.

No installed library fits it: statsmodels' MixedLM and lme4/nlme (via R) have no censored
response, statsmodels has no Tobit; R packages that do (lmec, ARpLMEC, censReg for
panel data) are not installed here.

Why one long module: the likelihood, its adaptive quadrature, the optimiser and the
inference on the fitted model are one estimator documented above step by step; the result
types are what :func:`fit_censored_growth_model` returns, and the detection-limit helpers
(:func:`censored_points`, :func:`substitute_censored`) prepare its input and its
substitution comparators from the same limits.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ._common import Effect, _f, scale_label
from ._data import (
    Adjustment,
    Cohort,
    Exclusion,
    Observation,
    _AsDict,
    prepare,
    require_animals,
    transform_values,
)
from ._errors import InsufficientDataError, InvalidInputError
from ._mixed import FixedEffect, GrowthRate

__all__ = [
    "CENSORED_METHODS",
    "CensoredCount",
    "CensoredGrowthModelResult",
    "Substitution",
    "censored_points",
    "fit_censored_growth_model",
    "substitute_censored",
]

DetectionLimits = float | Mapping[tuple[str, float], float | None] | None
"""A detection limit in the values' unit (e.g. p/s): one for every point, or per
``(animal, day)``; None (or a missing key) means no limit known for that point."""

CENSORED_METHODS: dict[str, str] = {
    "tobit": "left-censored (Tobit, M3) mixed model: each point below its detection limit "
    "enters the likelihood as P(y < limit)",
    "half_min": "substitution: each point below its detection limit set to half the smallest "
    "detected value at the site (min/2)",
    "half_limit": "substitution: each point below its detection limit set to half its limit",
    "limit": "substitution: each point below its detection limit raised to its limit (floor)",
    "drop": "points below their detection limit dropped",
}
"""How points below their detection limit are handled, in words (``method`` keys)."""

_STRUCTURE_COLS: dict[str, tuple[int, ...]] = {
    "intercept_slope": (0, 1),
    "intercept": (0,),
    "none": (),
}
_SINGULAR_TOL = 1e-3  # relative Cholesky diagonal of G (lme4's isSingular uses 1e-4)


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class CensoredCount(_AsDict):
    """Per arm: ``n_points`` values (animal-days) and ``n_censored`` of them below their
    detection limit."""

    arm: str
    n_points: int
    n_censored: int


@dataclass(frozen=True, slots=True)
class CensoredGrowthModelResult(_AsDict):
    """The left-censored linear mixed model y ~ day x arm (see :mod:`cohorts._tobit`).

    - ``method``: ``tobit`` (maximum likelihood, censored points by the normal CDF at
      their limit, "M3"); ``censoring`` says it in words.
    - ``fixed_effects``: ``Intercept``, ``day``, ``arm[<g>]``, ``arm[<g>]:day``, each with
      its Wald test: se from the observed information; ``df`` = animals - arms with
      random effects (t), None without (z).
    - ``growth_rates``: per arm, control first; ``difference`` = b_arm:day, the slope
      difference from the control arm, with its 95 % CI and p (see :class:`GrowthRate`).
    - ``n_censored``: per arm, points and points below their limit.
    - ``re_intercept_variance``, ``re_slope_variance``, ``re_correlation``,
      ``residual_variance``: G and sigma^2 (ML estimates).
    - ``log_likelihood``: the maximised marginal log-likelihood (for ``none``, that of
      R survreg's ``loglik``); ``aic`` = -2 logLik + 2 k.
    - ``random_effects``: the structure reported; ``random_effects_requested`` the one asked
      for; ``reductions``: a singular fit (a relative Cholesky diagonal of G below 1e-3: a
      variance ~0 or a correlation of -/+1, where the information matrix is singular) of
      ``intercept_slope`` is refitted with ``intercept``, one of ``intercept`` with ``none``.
    - ``quadrature_points``: Gauss-Hermite nodes per random-effect dimension.
    - ``converged``: the optimiser stopped at a point where the score is ~0 (relative
      1e-4) and the observed information is positive definite (``hessian_ok``).
    """

    control: str
    arms: tuple[str, ...]
    site: str
    scale: str
    method: str
    censoring: str
    inference: str
    random_effects_requested: str
    random_effects: str
    reductions: tuple[str, ...]
    quadrature_points: int
    n_animals: tuple[tuple[str, int], ...]
    n_observations: int
    n_censored: tuple[CensoredCount, ...]
    fixed_effects: tuple[FixedEffect, ...]
    growth_rates: tuple[GrowthRate, ...]
    re_intercept_variance: float | None
    re_slope_variance: float | None
    re_correlation: float | None
    residual_variance: float
    log_likelihood: float
    aic: float
    converged: bool
    hessian_ok: bool
    optimizer: str
    warnings: tuple[str, ...]
    exclusions: tuple[Exclusion, ...]
    adjustments: tuple[Adjustment, ...]

    def fixed_effect(self, name: str) -> FixedEffect:
        """The fixed effect called ``name`` (KeyError if absent)."""
        for fe in self.fixed_effects:
            if fe.name == name:
                return fe
        raise KeyError(name)


@dataclass(frozen=True)
class Substitution:
    """A cohort with its censored points substituted (or dropped) by ``method``: the
    ``cohort`` to analyse, each change as an :class:`Adjustment` (``substituted``) or
    :class:`Exclusion`, and the per-arm counts."""

    cohort: Cohort
    method: str
    description: str
    n_censored: tuple[CensoredCount, ...]
    adjustments: tuple[Adjustment, ...]
    exclusions: tuple[Exclusion, ...]


# -------------------------------------------------------------------------- preparation


def _limit_of(limits: DetectionLimits, animal: str, day: float) -> float:
    if limits is None:
        return math.nan
    if isinstance(limits, Mapping):
        v = limits.get((animal, float(day)))
        return math.nan if v is None else float(v)
    return float(limits)


def _check_limits(limits: DetectionLimits) -> None:
    values = (
        [] if limits is None else list(limits.values()) if isinstance(limits, Mapping) else [limits]
    )
    for v in values:
        if v is not None and not (math.isfinite(float(v)) and float(v) > 0):
            raise InvalidInputError(
                f"a detection limit must be a positive finite number, got {v!r}"
            )


def censored_points(
    cohort: Cohort,
    *,
    arms: Sequence[str],
    site: str = "whole_body",
    detection_limits: DetectionLimits,
    exclude_flags: Collection[str] | None = None,
) -> tuple[pd.DataFrame, list[Exclusion], list[Adjustment]]:
    """One value per animal per day (duplicates averaged, as :func:`summarize`) with its
    detection limit and whether it lies below it.

    Returns a frame with columns ``animal, arm, day, value, limit, censored`` (``limit``
    NaN where none is known; ``censored`` = value < limit) plus the exclusions and
    adjustments of the preparation.
    """
    _check_limits(detection_limits)
    prep = prepare(
        cohort, arms=arms, site=site, scale="linear", floor=None, exclude_flags=exclude_flags
    )
    df = prep.frame[["animal", "arm", "day", "value"]].copy()
    lim = np.array(
        [_limit_of(detection_limits, a, d) for a, d in zip(df["animal"], df["day"], strict=True)],
        dtype=np.float64,
    )
    df["limit"] = lim
    df["censored"] = np.isfinite(lim) & (df["value"].to_numpy() < lim)
    return df, prep.exclusions, prep.adjustments


def _counts(df: pd.DataFrame, arms: Sequence[str]) -> tuple[CensoredCount, ...]:
    return tuple(
        CensoredCount(a, int((df["arm"] == a).sum()), int(df.loc[df["arm"] == a, "censored"].sum()))
        for a in arms
    )


def substitute_censored(
    cohort: Cohort,
    *,
    detection_limits: DetectionLimits,
    method: Literal["half_min", "half_limit", "limit", "drop"],
    site: str = "whole_body",
    exclude_flags: Collection[str] | None = None,
) -> Substitution:
    """The conventional handling of values below the detection limit, for comparison and
    for analyses with no censored version: ``half_min`` (each set to half the smallest
    detected value at the site, "min/2"), ``half_limit`` (limit/2), ``limit`` (raised to
    the limit) or ``drop``. Duplicate images of a day are averaged first; the returned
    cohort holds one value per animal-day of ``site``, the other sites unchanged."""
    if method not in ("half_min", "half_limit", "limit", "drop"):
        raise InvalidInputError(
            f"method must be half_min, half_limit, limit or drop, got {method!r}"
        )
    arms = cohort.arms
    df, excl, adj = censored_points(
        cohort, arms=arms, site=site, detection_limits=detection_limits, exclude_flags=exclude_flags
    )
    cens = df["censored"].to_numpy()
    detected = df.loc[~cens, "value"].to_numpy()
    detected = detected[detected > 0]
    if method == "half_min":
        if detected.size == 0:
            raise InsufficientDataError(
                f"no value at site {site!r} is above its detection limit: min/2 is undefined"
            )
        new = np.where(cens, detected.min() / 2, df["value"])
    elif method == "half_limit":
        new = np.where(cens, df["limit"] / 2, df["value"])
    else:
        new = np.where(cens, df["limit"], df["value"])
    study = {o.animal: o.study for o in cohort.observations}
    obs = [o for o in cohort.observations if o.site != site]
    adjustments, exclusions = list(adj), list(excl)
    for r, v, c in zip(df.itertuples(index=False), new, cens, strict=True):
        if c:
            where = (r.animal, r.arm, site, float(r.day))
            if method == "drop":
                exclusions.append(Exclusion(*where, f"below detection limit {r.limit:g}"))
                continue
            adjustments.append(
                Adjustment(
                    *where,
                    "substituted",
                    f"value {r.value:g} below detection limit {r.limit:g} set to {v:g} ({method})",
                )
            )
        obs.append(
            Observation(r.animal, r.arm, float(r.day), float(v), site=site, study=study[r.animal])
        )
    return Substitution(
        Cohort.from_records(obs, ends=cohort.ends),
        method,
        CENSORED_METHODS[method],
        _counts(df, arms),
        tuple(adjustments),
        tuple(exclusions),
    )


# ------------------------------------------------------------------------------ the fit


class _TobitLik:
    """The marginal log-likelihood of the censored model. Animals are padded to a common
    length and parameter vectors stacked in a batch, so the per-animal Newton steps, the
    quadrature and the finite-difference derivatives run as a few array operations."""

    def __init__(
        self,
        y: np.ndarray,
        x: np.ndarray,
        t: np.ndarray,
        cens: np.ndarray,
        groups: np.ndarray,
        cols: tuple[int, ...],
        n_nodes: int,
    ):
        _, codes = np.unique(groups, return_inverse=True)
        m = int(codes.max()) + 1
        counts = np.bincount(codes, minlength=m)
        pos = np.zeros(len(y), dtype=np.intp)
        for g in range(m):
            pos[codes == g] = np.arange(counts[g])
        shape = (m, int(counts.max()))
        self.m, self.p, self.q = m, x.shape[1], len(cols)
        valid = np.zeros(shape, dtype=bool)
        valid[codes, pos] = True
        self.y = np.zeros(shape)
        self.y[codes, pos] = y
        c = np.zeros(shape, dtype=bool)
        c[codes, pos] = cens
        self.obs, self.cmask = valid & ~c, valid & c
        self.x = np.zeros((*shape, self.p))
        self.x[codes, pos] = x
        self.z = np.zeros((*shape, self.q))
        self.z[codes, pos] = np.column_stack([np.ones(len(t)), t])[:, list(cols)]
        self.n_nodes = n_nodes
        self.rows = np.flatnonzero(self.cmask.any(1))  # animals with a censored point
        if self.q:
            z1, w1 = np.polynomial.hermite_e.hermegauss(n_nodes)
            grids = np.meshgrid(*([z1] * self.q), indexing="ij")
            self.nodes = np.stack([g.ravel() for g in grids], axis=1)  # K x q
            wgrids = np.meshgrid(*([np.log(w1 / w1.sum())] * self.q), indexing="ij")
            # log w_k - log phi(z_k), so that sum_k exp(.) exp(h) integrates exp(h)
            self.node_const = (
                sum(w.ravel() for w in wgrids)
                + 0.5 * (self.nodes**2).sum(1)
                + 0.5 * self.q * math.log(2 * math.pi)
            )
        self.mode = np.zeros((m, self.q))

    def unpack(self, par: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """beta (B x p), sigma (B), Lambda (B x q x q) of a batch of parameter vectors."""
        par = np.atleast_2d(par)
        lam = np.zeros((len(par), self.q, self.q))
        if self.q:
            rows, cols = np.tril_indices(self.q)
            lam[:, rows, cols] = par[:, self.p + 1 :]
            d = np.arange(self.q)
            lam[:, d, d] = np.exp(lam[:, d, d])
        return par[:, : self.p], np.exp(par[:, self.p]), lam

    def _terms(
        self, mu: np.ndarray, sigma: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """log f, d log f / d mu, d2 log f / d mu2 per point (B x m x n; 0 where padded)."""
        s = sigma[:, None, None]
        r = (self.y - mu) / s
        logf = np.where(self.obs, -0.5 * r**2 - np.log(s) - _LOG_SQRT_2PI, 0.0)
        d1 = np.where(self.obs, r / s, 0.0)
        d2 = np.where(self.obs, -1.0 / s**2, 0.0)
        if self.rows.size:
            cens = np.broadcast_to(self.cmask, r.shape)
            rc = r[cens]
            sc = np.broadcast_to(s, r.shape)[cens]
            lc = special.log_ndtr(rc)
            lam = np.exp(-0.5 * rc**2 - _LOG_SQRT_2PI - lc)  # phi / Phi, inverse Mills
            logf[cens] = lc
            d1[cens] = -lam / sc
            d2[cens] = -lam * (rc + lam) / sc**2
        return logf, d1, d2

    def loglik(self, par: np.ndarray) -> np.ndarray:
        """Log-likelihood of each parameter vector of the batch ``par`` (B x k)."""
        beta, sigma, lam = self.unpack(np.asarray(par, dtype=np.float64))
        eta = beta @ self.x.reshape(-1, self.p).T  # B x (m n)
        eta = eta.reshape(len(beta), *self.y.shape)
        if not self.q:
            return self._terms(eta, sigma)[0].sum((1, 2))
        w = self.z[None] @ lam[:, None]  # B x m x n x q: d mu / d v
        wt = w.swapaxes(-1, -2)
        eye = np.eye(self.q)

        def h(vv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lf, d1, d2 = self._terms(eta + (w @ vv[..., None])[..., 0], sigma)
            val = lf.sum(2) - 0.5 * (vv**2).sum(2)
            grad = (wt @ d1[..., None])[..., 0] - vv
            neg_hess = eye - (wt * d2[..., None, :]) @ w
            return val, grad, neg_hess

        v = np.broadcast_to(self.mode, (len(beta), self.m, self.q)).copy()
        val, grad, nh = h(v)
        for _ in range(100):  # Newton on the concave log integrand, halving if it fails
            step = np.linalg.solve(nh, grad[..., None])[..., 0]
            frac = np.ones(val.shape)
            for _ in range(40):
                trial = v + frac[..., None] * step
                tval, tgrad, tnh = h(trial)
                worse = ~(tval >= val - 1e-12 * np.abs(val))
                if not worse.any():
                    break
                frac = np.where(worse, frac / 2, frac)
            v, val, grad, nh = trial, tval, tgrad, tnh
            if np.max(np.abs(frac[..., None] * step)) < 1e-9:
                break
        if np.all(np.isfinite(v[0])):
            self.mode = v[0]
        a = np.linalg.cholesky(np.linalg.inv(nh))  # B x m x q x q, A A' = (-h'')^-1
        logdet_a = np.log(np.diagonal(a, axis1=2, axis2=3)).sum(2)
        ll = val + logdet_a  # exact where the integrand is Gaussian (no censored point)
        rows = self.rows
        if rows.size and self.n_nodes > 1:
            vk = v[:, rows, None, :] + self.nodes @ a[:, rows].swapaxes(-1, -2)  # B m K q
            mu = eta[:, rows, None, :] + vk @ wt[:, rows]  # B x m x K x n
            s = sigma[:, None, None, None]
            r = (self.y[rows][:, None, :] - mu) / s
            lf = np.where(self.obs[rows][:, None, :], -0.5 * r**2 - np.log(s) - _LOG_SQRT_2PI, 0.0)
            cens = np.broadcast_to(self.cmask[rows][:, None, :], r.shape)
            lf[cens] = special.log_ndtr(r[cens])
            hk = lf.sum(3) - 0.5 * (vk**2).sum(3) - self.q * _LOG_SQRT_2PI
            ll[:, rows] = logdet_a[:, rows] + special.logsumexp(hk + self.node_const, axis=2)
        return ll.sum(1)


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _start(y: np.ndarray, x: np.ndarray, t: np.ndarray, groups: np.ndarray, q: int) -> np.ndarray:
    """Starting values: least squares for beta and sigma (censored points at their limit),
    G from the spread of per-animal least-squares lines through the residuals."""
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    resid = y - x @ beta
    s2 = max(float(np.mean(resid**2)), 1e-6)
    par = [*beta, 0.5 * math.log(s2)]
    if q:
        coefs = []
        for g in np.unique(groups):
            sel = groups == g
            z = np.column_stack([np.ones(sel.sum()), t[sel]])[:, :q]
            if sel.sum() > q:
                coefs.append(np.linalg.lstsq(z, resid[sel], rcond=None)[0])
        spread = np.atleast_2d(np.cov(np.array(coefs).T)) if len(coefs) > 2 else np.eye(q) * s2
        g0 = spread + np.eye(q) * 0.01 * np.maximum(np.diag(spread), s2 * 1e-4)
        lam = np.linalg.cholesky(g0)
        d = np.diag_indices(q)
        lam[d] = np.log(lam[d])
        par.extend(lam[np.tril_indices(q)])
    return np.array(par, dtype=np.float64)


@dataclass(frozen=True)
class _Fit:
    par: np.ndarray
    cov: np.ndarray  # of par, inverse observed information
    loglik: float
    converged: bool
    hessian_ok: bool
    optimizer: str


class _Objective:
    """-log L with central-difference gradient and Hessian, each one batched call."""

    def __init__(self, lik: _TobitLik):
        self.lik = lik

    def values(self, pars: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            try:
                v = -self.lik.loglik(pars)
            except np.linalg.LinAlgError:
                return np.full(len(pars), np.inf)
        return np.where(np.isfinite(v), v, 1e300)

    def value_and_grad(self, x: np.ndarray, h: np.ndarray) -> tuple[float, np.ndarray]:
        e = np.diag(h)
        f = self.values(np.vstack([x, x + e, x - e]))
        k = len(x)
        return float(f[0]), (f[1 : k + 1] - f[k + 1 :]) / (2 * h)

    def hessian(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        k = len(x)
        e = np.diag(h)
        ii, jj = np.tril_indices(k, -1)
        pts = [x[None], x + e, x - e]
        pts += [x + e[ii] + e[jj], x + e[ii] - e[jj], x - e[ii] + e[jj], x - e[ii] - e[jj]]
        f = self.values(np.vstack(pts))
        f0, fp, fm = f[0], f[1 : k + 1], f[k + 1 : 2 * k + 1]
        n = len(ii)
        pp, pm, mp, mm = (f[2 * k + 1 + i * n : 2 * k + 1 + (i + 1) * n] for i in range(4))
        hess = np.diag((fp - 2 * f0 + fm) / h**2)
        hess[ii, jj] = hess[jj, ii] = (pp - pm - mp + mm) / (4 * h[ii] * h[jj])
        return hess


def _fit(lik: _TobitLik, start: np.ndarray) -> _Fit:
    obj = _Objective(lik)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return obj.value_and_grad(x, 1e-6 * np.maximum(1.0, np.abs(x)))

    res = optimize.minimize(
        fun,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-8, "maxcor": 20},
    )
    x = np.asarray(res.x, dtype=np.float64)
    steps = 1e-4 * np.maximum(1.0, np.abs(x))
    hess = obj.hessian(x, steps)
    best, grad = fun(x)
    # Newton steps remove the quasi-Newton optimiser's last digits of slack
    for _ in range(10):
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        val, g_new = fun(x - step)
        if not val <= best + 1e-12:
            break
        x, best, grad = x - step, val, g_new
        if np.max(np.abs(step)) < 1e-10:
            break
    hess = obj.hessian(x, steps)
    try:
        np.linalg.cholesky(hess)
        cov, hess_ok = np.linalg.inv(hess), True
    except np.linalg.LinAlgError:
        cov, hess_ok = np.linalg.pinv(hess), False
    # the score is ~0 on the scale of the parameters' standard errors
    score_ok = bool(np.all(np.abs(grad) * np.sqrt(np.abs(np.diag(cov))) < 1e-4))
    return _Fit(x, cov, -best, score_ok and hess_ok, hess_ok, f"L-BFGS-B + Newton ({res.nit} it)")


def fit_censored_growth_model(
    cohort: Cohort,
    *,
    control: str,
    treated: Sequence[str] | None = None,
    detection_limits: DetectionLimits,
    site: str = "whole_body",
    scale: Literal["log10", "ln", "linear"] = "log10",
    exclude_flags: Collection[str] | None = None,
    random_effects: Literal["intercept_slope", "intercept", "none"] = "intercept_slope",
    quadrature_points: int = 7,
) -> CensoredGrowthModelResult:
    """Fit y ~ day * arm with a random intercept and slope per animal, points below their
    detection limit treated as left-censored there; compare growth rates.

    Parameters
    ----------
    cohort : Cohort
    control : str
        Reference arm.
    treated : sequence of str, optional
        Treated arms (default: every other arm).
    detection_limits : float or mapping (animal, day) -> float, or None
        Detection limit in the values' unit (p/s for total flux): a value below it is
        censored at it, whatever its measured value (which may be <= 0 after background
        subtraction). None: no point is censored (the model is then the ML linear mixed
        model of :func:`fit_growth_model` with ``method="ml"``).
    site, exclude_flags
        As for :func:`summarize`.
    scale : {"log10", "ln", "linear"}
        Scale of y and of the limits after transformation.
    random_effects : {"intercept_slope", "intercept", "none"}
        Correlated random intercept and slope per animal (default), intercept only, or none
        (Tobit regression, R ``survreg(..., dist="gaussian")``).
    quadrature_points : int
        Adaptive Gauss-Hermite nodes per random-effect dimension (1 = Laplace).

    Returns
    -------
    CensoredGrowthModelResult
    """
    if random_effects not in _STRUCTURE_COLS:
        raise InvalidInputError(
            "random_effects must be 'intercept_slope', 'intercept' or 'none', got "
            f"{random_effects!r}"
        )
    if scale not in ("log10", "ln", "linear"):
        raise InvalidInputError(f"scale must be log10, ln or linear, got {scale!r}")
    if not (isinstance(quadrature_points, int) and 1 <= quadrature_points <= 30):
        raise InvalidInputError("quadrature_points must be an integer from 1 to 30")
    treated_arms = (
        tuple(a for a in cohort.arms if a != control) if treated is None else tuple(treated)
    )
    if not treated_arms:
        raise InvalidInputError(f"no treated arm to compare with control {control!r}")
    arms = (control, *treated_arms)
    df, excl, adj = censored_points(
        cohort, arms=arms, site=site, detection_limits=detection_limits, exclude_flags=exclude_flags
    )
    cens = df["censored"].to_numpy()
    raw = np.where(cens, df["limit"], df["value"])
    if scale != "linear" and (raw <= 0).any():
        r = df[raw <= 0].iloc[0]
        raise InvalidInputError(
            f"animal {r['animal']!r} (arm {r['arm']!r}) at site {site!r} on day {r['day']:g} "
            f"has value {r['value']:g} <= 0 and no detection limit: give the limit of that "
            "measurement"
        )
    y = transform_values(raw, scale)
    for a in arms:
        require_animals(df, a, f"the censored mixed model at site {site!r}")
    day = df["day"].to_numpy(dtype=np.float64)
    cols, names = [np.ones(len(df)), day], ["Intercept", "day"]
    for a in treated_arms:
        ind = (df["arm"] == a).to_numpy(dtype=np.float64)
        cols += [ind, ind * day]
        names += [f"arm[{a}]", f"arm[{a}]:day"]
    exog = np.column_stack(cols)
    if len(df) - int(cens.sum()) <= exog.shape[1] + 1:
        raise InsufficientDataError(
            f"{len(df) - int(cens.sum())} detected values at site {site!r} are too few for "
            f"{exog.shape[1] + 1} parameters"
        )
    groups = df["animal"].to_numpy()
    structure: str = random_effects
    reductions: list[str] = []
    while True:
        q = len(_STRUCTURE_COLS[structure])
        lik = _TobitLik(
            y, exog, day, cens, groups, _STRUCTURE_COLS[structure], quadrature_points if q else 1
        )
        fit = _fit(lik, _start(y, exog, day, groups, q))
        _, sig, lams = lik.unpack(fit.par)
        sigma, lam = float(sig[0]), lams[0]
        # singular: a relative Cholesky diagonal ~0 (a variance 0 or a correlation of -/+1),
        # where the information is singular too; reduced as fit_growth_model does
        singular = q > 0 and (np.min(np.diag(lam)) / sigma < _SINGULAR_TOL or not fit.hessian_ok)
        if not singular:
            break
        target = "intercept" if structure == "intercept_slope" else "none"
        reductions.append(
            f"singular fit of {structure} random effects (a variance ~0 or a correlation of "
            f"-/+1): refitted with {target}"
        )
        structure = target
    n_par = exog.shape[1] + 1 + q * (q + 1) // 2

    p = exog.shape[1]
    cov_beta = fit.cov[:p, :p]
    beta = fit.par[:p]
    n_animals = int(df["animal"].nunique())
    dfree = float(n_animals - len(arms)) if q else None
    crit = stats.t.ppf(0.975, dfree) if dfree is not None else stats.norm.ppf(0.975)

    def wald(lv: np.ndarray) -> tuple[float, float | None, float | None, float | None]:
        est = float(lv @ beta)
        var = float(lv @ cov_beta @ lv)
        if not var > 0:
            return est, None, None, None
        se = math.sqrt(var)
        stat = est / se
        pv = 2 * (stats.t.sf(abs(stat), dfree) if dfree is not None else stats.norm.sf(abs(stat)))
        return est, se, stat, float(pv)

    fixed = []
    for i, nm in enumerate(names):
        est, se, stat, pv = wald(np.eye(p)[i])
        lo = est - crit * se if se is not None else None
        hi = est + crit * se if se is not None else None
        fixed.append(FixedEffect(nm, est, se, dfree, stat, pv, _f(lo), _f(hi)))

    label = scale_label(scale)
    n_per_arm = tuple((a, int(df.loc[df["arm"] == a, "animal"].nunique())) for a in arms)
    rates = []
    for a, n in n_per_arm:
        lv = np.zeros(p)
        lv[names.index("day")] = 1.0
        diff: Effect | None = None
        d_se = d_t = d_p = None
        if a != control:
            j = names.index(f"arm[{a}]:day")
            lv[j] = 1.0
            est, d_se, d_t, d_p = wald(np.eye(p)[j])
            half = crit * d_se if d_se is not None else None
            diff = Effect(
                f"difference in growth rate ({label} per day, {a} - {control})",
                est,
                _f(est - half) if half is not None else None,
                _f(est + half) if half is not None else None,
            )
        est, r_se, _, _ = wald(lv)
        half = crit * r_se if r_se is not None else None
        rate = Effect(
            f"growth rate ({label} per day)",
            est,
            _f(est - half) if half is not None else None,
            _f(est + half) if half is not None else None,
        )
        dbl = None
        if scale in ("log10", "ln") and est > 0:
            dbl = (math.log10(2) if scale == "log10" else math.log(2)) / est
        rates.append(
            GrowthRate(a, n, rate, _f(r_se), dfree, diff, _f(d_se), dfree, _f(d_t), _f(d_p), dbl)
        )

    g = lam @ lam.T
    int_var = slope_var = corr = None
    if structure == "intercept_slope":
        int_var, slope_var = float(g[0, 0]), float(g[1, 1])
        corr = float(g[0, 1] / math.sqrt(g[0, 0] * g[1, 1]))
    elif structure == "intercept":
        int_var = float(g[0, 0])
    warnings = list(reductions)
    if not fit.hessian_ok:
        warnings.append(
            "the observed information is not positive definite at the reported optimum: "
            "standard errors are unreliable"
        )
    elif not fit.converged:
        warnings.append("the optimiser did not reach a stationary point: do not trust the numbers")
    counts = _counts(df, arms)
    if not cens.any():
        warnings.append("no point is below its detection limit: this is the ML linear mixed model")
    inference = (
        f"Wald t, df = animals - arms = {dfree:g} (between-animal containment)"
        if dfree is not None
        else "Wald z (normal), as R survreg"
    )
    return CensoredGrowthModelResult(
        control=control,
        arms=arms,
        site=site,
        scale=scale,
        method="tobit",
        censoring=CENSORED_METHODS["tobit"],
        inference=inference,
        random_effects_requested=random_effects,
        random_effects=structure,
        reductions=tuple(reductions),
        quadrature_points=quadrature_points if q else 0,
        n_animals=n_per_arm,
        n_observations=len(df),
        n_censored=counts,
        fixed_effects=tuple(fixed),
        growth_rates=tuple(rates),
        re_intercept_variance=int_var,
        re_slope_variance=slope_var,
        re_correlation=corr,
        residual_variance=float(sigma**2),
        log_likelihood=float(fit.loglik),
        aic=-2.0 * float(fit.loglik) + 2.0 * n_par,
        converged=fit.converged,
        hessian_ok=fit.hessian_ok,
        optimizer=fit.optimizer,
        warnings=tuple(warnings),
        exclusions=tuple(excl),
        adjustments=tuple(adj),
    )
