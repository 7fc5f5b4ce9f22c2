"""A linear mixed model with per-animal random effects: (RE)ML fit and small-sample tests.

Model, for the n_i observations of animal i::

    y_i = X_i beta + Z_i b_i + e_i,   b_i ~ N(0, G),   e_i ~ N(0, sigma^2 I)

with Z_i columns taken from [1, t] (random intercept and/or slope) and G unstructured,
diagonal or scalar. This is the class of models lme4 fits with ``(1 + t | animal)``,
``(1 + t || animal)``, ``(1 | animal)`` and ``(0 + t | animal)``.

Fit (Bates, Maechler, Bolker & Walker 2015, J Stat Softw 67(1), section 3): G = sigma^2
Lambda Lambda' with Lambda lower triangular; the profiled REML criterion

    d(theta) = log|H| + log|X' H^-1 X| + (n - p) (1 + log(2 pi sigma_hat^2)),
    H = I + Z Lambda Lambda' Z',   sigma_hat^2 = r' H^-1 r / (n - p)

(ML: log|H| + n (1 + log(2 pi r' H^-1 r / n))) is minimised over theta = the entries of
Lambda, with Lambda's diagonal >= 0 (lme4's parameterisation and bounds), from several
starting points; the best optimum is polished by Newton steps on the variance parameters
when it is interior. The fit is singular when a diagonal entry of Lambda is below 1e-4
(lme4 ``isSingular(tol = 1e-4)``).

Small-sample inference on a linear contrast l' beta, with V = sum_r phi_r V_r linear in
the variance parameters phi (the entries of G and sigma^2), Sigma_i the covariance of
y_i, P = V^-1 - V^-1 X Phi X' V^-1 and Phi = (X' V^-1 X)^-1 (the model-based
covariance of beta_hat):

- Kenward & Roger (1997, Biometrics 53:983), as pbkrtest ``vcovAdj`` / ``Lb_ddf``
  (Halekoh & Hojsgaard 2014, J Stat Softw 59(9)) and lmerTest ``ddf = "Kenward-Roger"``:
  the adjusted covariance Phi_A = Phi + 2 Phi U Phi, U = sum_rs W_rs (Q_rs - P_r Phi P_s),
  P_r = -X' V^-1 V_r V^-1 X, Q_rs = X' V^-1 V_r V^-1 V_s V^-1 X, W = 2 I_E^-1 with the
  expected REML information I_E,rs = tr(P V_r P V_s) / 2 (written as pbkrtest does);
  SE = sqrt(l' Phi_A l), t = l' beta / SE, and the df of KR's F approximation for q = 1.
- Satterthwaite (1946), as lmerTest (Kuznetsova, Brockhoff & Christensen 2017, J Stat
  Softw 82(13)): SE = sqrt(l' Phi l), df = 2 (l' Phi l)^2 / (g' A g), g_r = d(l' Phi l) /
  d phi_r = -l' Phi P_r Phi l, A = 2 H^-1 with H the Hessian of the (RE)ML deviance in
  phi (observed information; lmerTest differentiates numerically in (theta, sigma), the
  df being invariant to the parameterisation at an interior optimum).

Why one long module: it is one algorithm — the profiled criterion, the optimiser
with its restarts and the variance-parameter algebra (``_Parts``) that both the Newton
polish and the KR / Satterthwaite tests use — sharing private state (``_Groups``,
``_Parts``) that no other module should see; the formulas above are its table of contents.
The growth-model API built on it is :mod:`cohorts._mixed`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import optimize, stats

__all__ = ["STRUCTURES", "Contrast", "LmmFit", "fit_lmm"]

STRUCTURES: dict[str, tuple[tuple[int, ...], bool]] = {
    # name: (columns of [1, t] in Z, correlated)
    "intercept_slope": ((0, 1), True),
    "intercept_slope_uncorrelated": ((0, 1), False),
    "intercept": ((0,), False),
    "slope": ((1,), False),
    "none": ((), False),
}
"""Random-effects structures: lme4 ``(1 + t | animal)``, ``(1 + t || animal)``,
``(1 | animal)``, ``(0 + t | animal)`` and none (ordinary least squares)."""

SINGULAR_TOL = 1e-4  # lme4 isSingular() default


@dataclass(frozen=True)
class Attempt:
    """One optimiser run: ``optimizer`` and its start, the criterion it reached."""

    optimizer: str
    deviance: float | None
    success: bool
    message: str


@dataclass(frozen=True)
class Contrast:
    """A linear contrast l' beta with its small-sample test."""

    estimate: float
    se: float
    df: float
    t: float
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class LmmFit:
    """A fitted model (see the module docstring for the definitions)."""

    structure: str
    reml: bool
    beta: np.ndarray
    cov_beta: np.ndarray  # Phi, model-based
    g: np.ndarray  # q x q random-effects covariance, absolute scale
    sigma2: float
    theta: np.ndarray  # lme4's theta (relative Cholesky factor entries)
    deviance: float  # REML criterion (reml) or -2 log-likelihood (ML)
    singular: bool
    converged: bool
    hessian_ok: bool
    attempts: tuple[Attempt, ...]
    optimizer: str
    _parts: _Parts = field(repr=False)

    @property
    def log_likelihood(self) -> float:
        return -0.5 * self.deviance

    @property
    def n_variance_parameters(self) -> int:
        return len(self._parts.vr_index)

    def contrast(
        self, l_vec: Sequence[float] | np.ndarray, *, df_method: str = "kenward-roger"
    ) -> Contrast:
        """Test l' beta = 0 with ``df_method`` ``kenward-roger`` or ``satterthwaite``."""
        lv = np.asarray(l_vec, dtype=np.float64)
        est = float(lv @ self.beta)
        if df_method == "kenward-roger":
            var, df = self._parts.kenward_roger(lv)
        elif df_method == "satterthwaite":
            var, df = self._parts.satterthwaite(lv)
        else:
            raise ValueError(f"unknown df_method {df_method!r}")
        se = math.sqrt(var) if var > 0 else math.nan
        t = est / se
        p = float(2 * stats.t.sf(abs(t), df))
        half = float(stats.t.ppf(0.975, df)) * se
        return Contrast(est, se, float(df), t, p, est - half, est + half)


# ----------------------------------------------------------------------------- fitting


# scipy.optimize.minimize methods used by _optimise
_Method = Literal["COBYQA", "Powell", "Nelder-Mead"]

# Stacked Z_i'Z_i, Z_i'X_i, Z_i'y_i and the totals X'X, X'y, y'y (_Groups.moments)
_Moments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]


class _Groups:
    """Per-animal blocks of y, X and the full Z = [1, t]."""

    def __init__(self, y: np.ndarray, x: np.ndarray, zfull: np.ndarray, groups: np.ndarray):
        _, codes = np.unique(groups, return_inverse=True)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        self.idx = np.split(order, bounds)
        self.y, self.x, self.zfull = y, x, zfull
        self.n, self.p = x.shape

    def moments(self, cols: tuple[int, ...]) -> _Moments:
        """Stacked Z_i'Z_i, Z_i'X_i, Z_i'y_i and the totals X'X, X'y, y'y."""
        ztz, ztx, zty = [], [], []
        for ix in self.idx:
            z = self.zfull[np.ix_(ix, np.asarray(cols, dtype=np.intp))]
            ztz.append(z.T @ z)
            ztx.append(z.T @ self.x[ix])
            zty.append(z.T @ self.y[ix])
        return (
            np.array(ztz),
            np.array(ztx),
            np.array(zty),
            self.x.T @ self.x,
            self.x.T @ self.y,
            float(self.y @ self.y),
        )


def _lambda(theta: np.ndarray, q: int, correlated: bool) -> np.ndarray:
    lam = np.zeros((q, q))
    if correlated:
        lam[np.tril_indices(q)] = theta  # row-wise: (0,0), (1,0), (1,1)
    else:
        lam[np.diag_indices(q)] = theta
    return lam


def _diag_positions(q: int, correlated: bool) -> list[int]:
    if not correlated:
        return list(range(q))
    rows, cols = np.tril_indices(q)
    return [k for k, (r, c) in enumerate(zip(rows, cols, strict=True)) if r == c]


def _profiled(
    theta: np.ndarray, mom: _Moments, q: int, correlated: bool, reml: bool, n: int, p: int
) -> tuple[float, np.ndarray | None, float | None]:
    """Profiled deviance at theta, with beta_hat and sigma_hat^2."""
    ztz, ztx, zty, xtx, xty, yty = mom
    if q:
        lam = _lambda(np.asarray(theta, dtype=np.float64), q, correlated)
        m = np.eye(q) + np.einsum("ji,gjk,kl->gil", lam, ztz, lam)
        a = np.einsum("ji,gjk->gik", lam, ztx)  # Lambda' Z'X
        b = np.einsum("ji,gj->gi", lam, zty)
        sign, logdet_m = np.linalg.slogdet(m)
        if np.any(sign <= 0):
            return math.inf, None, None
        minv_a = np.linalg.solve(m, a)
        minv_b = np.linalg.solve(m, b[..., None])[..., 0]
        xhx = xtx - np.einsum("gji,gjk->ik", a, minv_a)
        xhy = xty - np.einsum("gji,gj->i", a, minv_b)
        yhy = yty - float(np.einsum("gj,gj->", b, minv_b))
        logdet_h = float(logdet_m.sum())
    else:
        xhx, xhy, yhy, logdet_h = xtx, xty, yty, 0.0
    try:
        chol = np.linalg.cholesky(xhx)
    except np.linalg.LinAlgError:
        return math.inf, None, None
    beta = np.linalg.solve(xhx, xhy)
    rss = yhy - float(beta @ xhy)
    dof = n - p if reml else n
    if rss <= 0:
        return math.inf, None, None
    s2 = rss / dof
    dev = logdet_h + dof * (1.0 + math.log(2 * math.pi * s2))
    if reml:
        dev += 2.0 * float(np.log(np.diag(chol)).sum())
    return dev, beta, s2


def _optimise(
    mom: _Moments, q: int, correlated: bool, reml: bool, n: int, p: int
) -> tuple[tuple[float, np.ndarray, str] | None, tuple[Attempt, ...]]:
    """Minimise the profiled criterion; returns (criterion, theta, label) and the runs.

    The criterion depends on each diagonal entry of Lambda through its square, so a
    diagonal entry at its bound 0 is a stationary point even where the criterion falls
    away from it: a gradient method that reaches the bound stops there (L-BFGS-B does so
    from lme4's own start on the prostate data, 5 units above the optimum). Hence:
    derivative-free trust-region COBYQA (Powell's successor of lme4's default BOBYQA)
    and bounded Powell from lme4's start, Nelder-Mead without bounds from there (it
    does not stop on a bound it cannot see; signs are folded afterwards), then, if a
    diagonal entry is 0 at the best point, COBYQA from points with that entry moved off
    0. The lowest criterion wins; an interior optimum is then polished by Newton steps.
    """
    diag = _diag_positions(q, correlated)
    k = q * (q + 1) // 2 if correlated else q
    lower = np.array([0.0 if i in diag else -np.inf for i in range(k)])
    bounds = optimize.Bounds(lower, np.full(k, np.inf))

    def f(th: np.ndarray) -> float:
        return _profiled(th, mom, q, correlated, reml, n, p)[0]

    def fold(th: np.ndarray) -> np.ndarray:
        th = np.array(th, dtype=np.float64)
        if correlated:  # a column of Lambda and its sign flip give the same G
            for col, i in enumerate(diag):
                if th[i] < 0:
                    _, cols = np.tril_indices(q)
                    th[cols == col] *= -1
        else:
            th = np.abs(th)
        return th

    lme4_start = np.array([1.0 if i in diag else 0.0 for i in range(k)])
    runs: list[tuple[_Method, np.ndarray, str, dict]] = [
        ("COBYQA", lme4_start, "COBYQA", {"bounds": bounds, "options": _COBYQA}),
        ("Powell", lme4_start, "Powell", {"bounds": bounds, "options": _POWELL}),
        ("Nelder-Mead", lme4_start, "Nelder-Mead (no bounds)", {"options": _NM}),
    ]
    attempts: list[Attempt] = []
    best: tuple[float, np.ndarray, str] | None = None

    def run(method: _Method, th0: np.ndarray, name: str, kw: dict) -> None:
        nonlocal best
        label = f"{name} from theta=({', '.join(f'{v:.3g}' for v in th0)})"
        with np.errstate(all="ignore"):
            try:
                r = optimize.minimize(f, th0, method=method, **kw)
            except (ValueError, np.linalg.LinAlgError) as exc:
                attempts.append(Attempt(label, None, False, f"{type(exc).__name__}: {exc}"))
                return
        x = fold(r.x)
        raw = f(x)
        dev = float(raw) if np.isfinite(raw) else None
        attempts.append(Attempt(label, dev, bool(r.success), str(r.message)))
        if dev is not None and (best is None or dev < best[0]):
            best = (dev, x, label)

    for method, th0, name, kw in runs:
        run(method, th0, name, kw)
    if best is None:
        return None, tuple(attempts)
    zero = [i for i in diag if best[1][i] < SINGULAR_TOL]
    for away in (0.5, 0.05) if zero else ():
        th0 = best[1].copy()
        th0[zero] = away
        run("COBYQA", th0, "COBYQA off the boundary", {"bounds": bounds, "options": _COBYQA})
    return best, tuple(attempts)


_COBYQA = {"final_tr_radius": 1e-9, "maxfev": 20000}
_POWELL = {"xtol": 1e-10, "ftol": 1e-15, "maxfev": 20000}
_NM = {"xatol": 1e-10, "fatol": 1e-14, "maxfev": 3000}


# -------------------------------------------------------------- variance-parameter algebra


class _Parts:
    """Everything at fixed variance parameters phi: Sigma_i^-1, Phi, beta, residuals and
    the derivative matrices of V, for the fit's polish and the df computations."""

    def __init__(
        self,
        grp: _Groups,
        cols: tuple[int, ...],
        correlated: bool,
        phi: np.ndarray,
        reml: bool,
    ):
        q = len(cols)
        self.grp, self.cols, self.q, self.reml = grp, cols, q, reml
        # phi layout: G entries (lower triangle row-wise if correlated, else the diagonal),
        # then sigma^2; e_mats[r] = dG / d phi_r (None for sigma^2)
        e_mats: list[np.ndarray] = []
        if correlated:
            for r, c in zip(*np.tril_indices(q), strict=True):
                e = np.zeros((q, q))
                e[r, c] = e[c, r] = 1.0
                e_mats.append(e)
        else:
            for i in range(q):
                e = np.zeros((q, q))
                e[i, i] = 1.0
                e_mats.append(e)
        self.vr_index: list[np.ndarray | None] = [*e_mats, None]
        self.phi = np.asarray(phi, dtype=np.float64)
        g = np.zeros((q, q))
        for val, e in zip(self.phi[:-1], e_mats, strict=True):
            g += val * e
        self.g, self.sigma2 = g, float(self.phi[-1])
        self._compute()

    def _blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for ix in self.grp.idx:
            z = self.grp.zfull[np.ix_(ix, np.asarray(self.cols, dtype=np.intp))]
            yield ix, z

    def _compute(self) -> None:
        grp, nr = self.grp, len(self.vr_index)
        p = grp.p
        s_list, vr_list = [], []
        xsx = np.zeros((p, p))
        xsy = np.zeros(p)
        logdet = 0.0
        for ix, z in self._blocks():
            sig = z @ self.g @ z.T + self.sigma2 * np.eye(len(ix))
            sign, ld = np.linalg.slogdet(sig)
            if sign <= 0:
                raise np.linalg.LinAlgError("covariance not positive definite")
            logdet += ld
            s = np.linalg.inv(sig)
            s_list.append(s)
            vr_list.append(
                [z @ e @ z.T if e is not None else np.eye(len(ix)) for e in self.vr_index]
            )
            xi = grp.x[ix]
            xsx += xi.T @ s @ xi
            xsy += xi.T @ s @ grp.y[ix]
        phi_mat = np.linalg.inv(xsx)
        beta = phi_mat @ xsy
        self.cov_beta, self.beta = phi_mat, beta
        self.logdet_v = logdet
        self.logdet_xsx = float(np.linalg.slogdet(xsx)[1])
        pr = np.zeros((nr, p, p))
        qrs = np.zeros((nr, nr, p, p))
        ktr = np.zeros((nr, nr))
        a = np.zeros((nr, p))
        b = np.zeros((nr, nr))
        tr_sv = np.zeros(nr)
        ypvpy = np.zeros(nr)
        rss = 0.0
        for (ix, _z), s, vrs in zip(self._blocks(), s_list, vr_list, strict=True):
            xi = grp.x[ix]
            ei = s @ (grp.y[ix] - xi @ beta)  # V^-1 r = P y
            rss += float((grp.y[ix] - xi @ beta) @ ei)
            sx = s @ xi
            h = [vr @ s for vr in vrs]  # V_r S
            hx = [hr @ xi for hr in h]  # V_r S X
            for r in range(nr):
                pr[r] -= sx.T @ hx[r]
                a[r] += sx.T @ (vrs[r] @ ei)
                ypvpy[r] += float(ei @ vrs[r] @ ei)  # y'P V_r P y
                tr_sv[r] += float(np.trace(h[r]))
                for t in range(r, nr):
                    qrs[r, t] += hx[r].T @ s @ hx[t]
                    ktr[r, t] += float(np.sum(h[r].T * h[t]))
                    b[r, t] += float(ei @ vrs[r] @ s @ vrs[t] @ ei)
        for r in range(nr):
            for t in range(r):
                qrs[r, t] = qrs[t, r].T
                ktr[r, t] = ktr[t, r]
                b[r, t] = b[t, r]
        self.pr, self.qrs, self.ktrace = pr, qrs, ktr
        self.rss = rss
        fpf = np.einsum("ij,rjk,kl,tli->rt", phi_mat, pr, phi_mat, pr)
        self.tr_pvpv = ktr - 2 * np.einsum("ij,rtji->rt", phi_mat, qrs) + fpf  # tr(P V_r P V_s)
        self.ypvpvpy = b - a @ phi_mat @ a.T
        self.tr_pv = tr_sv + np.einsum("ij,rji->r", phi_mat, pr)  # tr(P V_r)
        self.tr_sv = tr_sv
        self.ypvpy = ypvpy

    def deviance(self, reml: bool) -> float:
        n, p = self.grp.n, self.grp.p
        dof = n - p if reml else n
        dev = self.logdet_v + self.rss + dof * math.log(2 * math.pi)
        return dev + (self.logdet_xsx if reml else 0.0)

    def gradient(self, reml: bool) -> np.ndarray:
        """d deviance / d phi."""
        return (self.tr_pv if reml else self.tr_sv) - self.ypvpy

    def hessian(self, reml: bool) -> np.ndarray:
        """Observed Hessian of the deviance in phi (V is linear in phi)."""
        first = self.tr_pvpv if reml else self.ktrace
        return -first + 2 * self.ypvpvpy

    # ------------------------------------------------------------------ df methods

    def kenward_roger(self, lv: np.ndarray) -> tuple[float, float]:
        phi = self.cov_beta
        nr = len(self.vr_index)
        ie2 = self.tr_pvpv
        ev = np.linalg.eigvalsh(ie2)
        w = 2 * (np.linalg.inv(ie2) if np.min(np.abs(ev)) > 1e-10 else np.linalg.pinv(ie2))
        u = np.zeros_like(phi)
        for r in range(nr):
            for s in range(nr):
                u += w[r, s] * (self.qrs[r, s] - self.pr[r] @ phi @ self.pr[s])
        phi_a = phi + 2 * phi @ u @ phi
        lm = lv[None, :]
        var_adj = float((lm @ phi_a @ lm.T)[0, 0])
        # pbkrtest Lb_ddf: Theta = L' (L Phi L')^-1 L with the unadjusted Phi
        theta = lm.T @ lm / float((lm @ phi @ lm.T)[0, 0])
        a1 = a2 = 0.0
        tv = theta @ phi
        us = [tv @ self.pr[r] @ phi for r in range(nr)]
        for r in range(nr):
            for s in range(nr):
                a1 += w[r, s] * np.trace(us[r]) * np.trace(us[s])
                a2 += w[r, s] * float(np.sum(us[r] * us[s].T))
        q = 1
        b = (a1 + 6 * a2) / (2 * q)
        g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
        c1 = g / (3 * q + 2 * (1 - g))
        c2 = (q - g) / (3 * q + 2 * (1 - g))
        c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
        v0 = 1 + c1 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1 = 1 - c2 * b
        v2 = 1 - c3 * b
        rho = (1 / q) * ((1 - a2 / q) / v1) ** 2 * v0 / v2
        df = 4 + (q + 2) / (q * rho - 1)
        return var_adj, float(df)

    def satterthwaite(self, lv: np.ndarray) -> tuple[float, float]:
        phi = self.cov_beta
        var = float(lv @ phi @ lv)
        grad = np.array([-float(lv @ phi @ pr @ phi @ lv) for pr in self.pr])
        h = self.hessian(self.reml)
        vals, vecs = np.linalg.eigh(h)
        pos = vals > 1e-6
        h_inv = (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
        a = 2 * h_inv
        return var, float(2 * var**2 / (grad @ a @ grad))


def _theta_from(g: np.ndarray, sigma2: float, correlated: bool) -> np.ndarray:
    q = g.shape[0]
    if q == 0:
        return np.zeros(0)
    if correlated:
        lam = np.linalg.cholesky(g / sigma2)
        return lam[np.tril_indices(q)]
    return np.sqrt(np.diag(g) / sigma2)


def fit_lmm(
    y: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    groups: np.ndarray,
    *,
    structure: str,
    reml: bool = True,
) -> LmmFit | None:
    """Fit the model with random-effects ``structure`` (a key of :data:`STRUCTURES`).

    Returns None when no optimiser reaches a finite criterion.
    """
    cols, correlated = STRUCTURES[structure]
    q = len(cols)
    grp = _Groups(
        np.asarray(y, np.float64),
        np.asarray(x, np.float64),
        np.column_stack([np.ones(len(t)), np.asarray(t, np.float64)]),
        np.asarray(groups),
    )
    n, p = grp.n, grp.p
    mom = grp.moments(cols)
    if q:
        best, attempts = _optimise(mom, q, correlated, reml, n, p)
        if best is None:
            return None
        dev, theta, label = best
    else:
        theta, attempts, label = np.zeros(0), (), "closed form (least squares)"
        dev = _profiled(theta, mom, 0, False, reml, n, p)[0]
    diag = _diag_positions(q, correlated)
    singular = bool(any(theta[i] < SINGULAR_TOL for i in diag))
    _, _, s2 = _profiled(theta, mom, q, correlated, reml, n, p)
    assert s2 is not None  # the optimum's criterion is finite, so sigma^2 was estimated
    lam = _lambda(theta, q, correlated) if q else np.zeros((0, 0))
    g = s2 * lam @ lam.T
    parts = _Parts(grp, cols, correlated, np.concatenate([_g_params(g, correlated), [s2]]), reml)
    converged = True
    if not singular:
        # Newton steps on phi: at an interior optimum the score is ~0 already; this removes
        # the optimiser's last digits of slack so the df computed from derivatives are exact
        for _ in range(20):
            grad = parts.gradient(reml)
            hess = parts.hessian(reml)
            try:
                step = np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                break
            try:
                trial = _Parts(grp, cols, correlated, parts.phi - step, reml)
                ok = _valid(trial.g) and trial.sigma2 > 0
            except np.linalg.LinAlgError:
                ok = False
            if not ok or trial.deviance(reml) > parts.deviance(reml) + 1e-10:
                break
            parts = trial
            if np.max(np.abs(step) / np.maximum(np.abs(parts.phi), 1e-12)) < 1e-12:
                break
        theta = _theta_from(parts.g, parts.sigma2, correlated)
        hess = parts.hessian(reml)
        hessian_ok = bool(np.all(np.linalg.eigvalsh(hess) > 0))
        gnorm = np.max(np.abs(parts.gradient(reml)) * np.maximum(np.abs(parts.phi), 1e-8))
        converged = bool(gnorm < 1e-4)
    else:
        hessian_ok = False
    return LmmFit(
        structure=structure,
        reml=reml,
        beta=parts.beta,
        cov_beta=parts.cov_beta,
        g=parts.g,
        sigma2=parts.sigma2,
        theta=theta,
        deviance=float(parts.deviance(reml)) if not singular else float(dev),
        singular=singular,
        converged=converged,
        hessian_ok=hessian_ok,
        attempts=tuple(attempts),
        optimizer=label,
        _parts=parts,
    )


def _g_params(g: np.ndarray, correlated: bool) -> np.ndarray:
    q = g.shape[0]
    if correlated:
        return g[np.tril_indices(q)]
    return np.diag(g).copy()


def _valid(g: np.ndarray) -> bool:
    if g.shape[0] == 0:
        return True
    return bool(np.all(np.linalg.eigvalsh(g) >= 0))
