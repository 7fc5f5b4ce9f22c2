"""Randomisation of animals into arms balanced on baseline flux (and body weight).

Method (``rerandomisation``; Morgan & Rubin 2012, Ann Stat 40:1263, "Rerandomization to
improve covariate balance in experiments"):

1. Arm sizes: ``sizes`` or as equal as possible (the first arms listed get the extra
   animal). Within each stratum the arms get shares proportional to their sizes, rounded
   so that stratum and arm totals both hold (largest remaining share first, ties broken
   by the seeded generator): every stratum is spread over the arms as evenly as the
   numbers allow, by construction.
2. ``n_candidates`` allocations are drawn, each a uniformly random permutation of those
   arm labels within every stratum (complete randomisation within strata).
3. The imbalance of each candidate is the Mahalanobis statistic
   ``M = sum_j n_j (xbar_j - xbar)' S^-1 (xbar_j - xbar)`` over the covariates x (log10
   baseline flux, body weight), S their sample covariance over all animals (pseudo-inverse
   when singular). With two arms this is Morgan & Rubin's
   ``M = n p (1 - p) (xbar_T - xbar_C)' S^-1 (xbar_T - xbar_C)``; under plain
   randomisation M is approximately chi^2 with d (k - 1) degrees of freedom (mean
   d (k - 1)).
4. The ``acceptance`` fraction of candidates with the smallest M is kept and the
   allocation is drawn uniformly among them: the assignment stays random (so the usual
   randomisation-based analysis stays valid; Morgan & Rubin 2012) while the arms start
   balanced. ``method="permutation"`` skips 3-4 (one stratified random permutation, the
   unbalanced reference).

Everything comes from ``numpy.random.default_rng(seed)``; animals are handled in sorted
identifier order, so the same inputs and seed give the same allocation on any machine.

Why one long module: it is the one algorithm above (steps 1-4), the balance table
and tests reported with its allocation, and the result types; each part is only used here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from ._data import _AsDict
from ._errors import InvalidInputError

__all__ = [
    "ArmBalance",
    "BalanceTest",
    "Randomisation",
    "RandomisationUnit",
    "StratumCount",
    "UnitAssignment",
    "randomise",
]

RandomisationMethod = Literal["rerandomisation", "permutation"]
RANDOMISATION_METHODS: tuple[str, ...] = ("rerandomisation", "permutation")
MAX_CANDIDATES = 100_000


@dataclass(frozen=True, slots=True)
class RandomisationUnit(_AsDict):
    """One animal to allocate.

    ``baseline_flux`` in p/s (> 0; its log10 is the balancing covariate),
    ``body_weight_g`` in g (optional; used when every unit has one), ``stratum`` a label
    (e.g. sex) within which arms are filled evenly (None: one stratum).
    """

    animal: str
    baseline_flux: float
    body_weight_g: float | None = None
    stratum: str | None = None


@dataclass(frozen=True, slots=True)
class UnitAssignment(_AsDict):
    """The arm drawn for one animal, with its covariates (log10 p/s, g) and stratum."""

    animal: str
    arm: str
    stratum: str | None
    log10_baseline_flux: float
    body_weight_g: float | None


@dataclass(frozen=True, slots=True)
class ArmBalance(_AsDict):
    """Per arm: n, mean and SD (ddof 1; None for n < 2) of log10 baseline flux (log10 p/s)
    and of body weight (g; None when not used)."""

    arm: str
    n: int
    log10_baseline_mean: float
    log10_baseline_sd: float | None
    body_weight_mean_g: float | None
    body_weight_sd_g: float | None


@dataclass(frozen=True, slots=True)
class BalanceTest(_AsDict):
    """A test of equal arm distributions of one covariate: one-way ANOVA F
    (``scipy.stats.f_oneway``, as R ``oneway.test(var.equal = TRUE)``) or Kruskal–Wallis H
    (``scipy.stats.kruskal``, as R ``kruskal.test``). Descriptive only: after a random
    allocation any difference is chance by definition (CONSORT 2010 item 15), and
    rerandomisation makes p close to 1 on purpose. None where undefined (an arm with fewer
    than 2 animals, or no spread)."""

    covariate: str
    test: str
    statistic: float | None
    df: tuple[float, ...]
    p_value: float | None


@dataclass(frozen=True, slots=True)
class StratumCount(_AsDict):
    """Animals of one stratum in one arm."""

    stratum: str | None
    arm: str
    n: int


@dataclass(frozen=True, slots=True)
class Randomisation(_AsDict):
    """A reproducible allocation of animals into arms and the balance it achieved.

    - ``assignments``: one per animal, sorted by animal.
    - ``balance``: per arm (see :class:`ArmBalance`); ``strata``: animals per stratum and
      arm; ``tests``: ANOVA and Kruskal–Wallis per covariate (see :class:`BalanceTest`).
    - ``covariates``: the balancing covariates, ``log10_baseline_flux`` and, when given
      for every animal, ``body_weight_g``.
    - ``imbalance_m``: the Mahalanobis statistic M of the allocation (module docstring);
      ``expected_m_random`` = d (k - 1), its mean under plain randomisation;
      ``acceptance_threshold_m``: the largest M accepted; ``candidate_percentile``: the
      share of candidates with M <= ``imbalance_m`` (in %).
    - ``seed``, ``method``, ``n_candidates``, ``acceptance``: everything needed to draw
      the same allocation again.
    """

    method: str
    seed: int
    n_candidates: int
    acceptance: float
    n_accepted: int
    covariates: tuple[str, ...]
    arms: tuple[str, ...]
    assignments: tuple[UnitAssignment, ...]
    balance: tuple[ArmBalance, ...]
    strata: tuple[StratumCount, ...]
    tests: tuple[BalanceTest, ...]
    imbalance_m: float
    expected_m_random: float
    acceptance_threshold_m: float
    candidate_percentile: float


def arm_sizes(n: int, arms: Sequence[str], sizes: Mapping[str, int] | None) -> dict[str, int]:
    """Animals per arm: ``sizes`` checked, or n split as evenly as possible (the first arms
    listed get the extra animal)."""
    k = len(arms)
    if sizes is None:
        return {a: n // k + (1 if j < n % k else 0) for j, a in enumerate(arms)}
    unknown = sorted(set(sizes) - set(arms))
    if unknown:
        raise InvalidInputError(f"sizes names arm(s) not randomised into: {', '.join(unknown)}")
    out = {a: int(sizes.get(a, 0)) for a in arms}
    if any(v < 1 for v in out.values()):
        raise InvalidInputError(f"every arm needs at least one animal; sizes are {out}")
    if sum(out.values()) != n:
        raise InvalidInputError(
            f"sizes add up to {sum(out.values())} animals but {n} are randomised"
        )
    return out


def _stratum_quotas(
    stratum_n: Mapping[str | None, int], totals: Mapping[str, int], rng: np.random.Generator
) -> dict[str | None, dict[str, int]]:
    """Per stratum and arm counts with both margins exact, each the floor or the ceiling of
    its proportional share n_s n_j / n (controlled rounding: the strata's leftover animals
    go one per arm to arms with a fractional share, found as a maximum flow by augmenting
    paths, arms visited in seeded random order; the proportional shares themselves are a
    fractional solution, so an integral one exists)."""
    n = sum(stratum_n.values())
    arms = list(totals)
    order = sorted(stratum_n, key=_stratum_key)
    quotas = {s: {a: (stratum_n[s] * totals[a]) // n for a in arms} for s in order}
    allowed = {s: [a for a in arms if (stratum_n[s] * totals[a]) % n] for s in order}
    deficit = {a: totals[a] - sum(q[a] for q in quotas.values()) for a in arms}
    extra: dict[str | None, set[str]] = {s: set() for s in order}
    owner: dict[str, list[str | None]] = {a: [] for a in arms}

    def augment(s: str | None, seen: set[str]) -> bool:
        for j in rng.permutation(len(allowed[s])):
            a = allowed[s][j]
            if a in extra[s] or a in seen:
                continue
            seen.add(a)
            if len(owner[a]) < deficit[a]:
                extra[s].add(a)
                owner[a].append(s)
                return True
            for other in list(owner[a]):
                if augment(other, seen):
                    owner[a].remove(other)
                    extra[other].discard(a)
                    extra[s].add(a)
                    owner[a].append(s)
                    return True
        return False

    for s in order:
        for _ in range(stratum_n[s] - sum(quotas[s].values())):
            if not augment(s, set()):  # cannot happen (see docstring); never silently wrong
                raise InvalidInputError("internal error: no balanced stratum allocation found")
    for s in order:
        for a in extra[s]:
            quotas[s][a] += 1
    return quotas


def _stratum_key(s: str | None) -> tuple[int, str]:
    return (0, "") if s is None else (1, s)


def _whitened(x: np.ndarray) -> np.ndarray:
    """Centred covariates times S^-1/2 (pseudo-inverse): Mahalanobis becomes Euclidean."""
    centred = x - x.mean(axis=0)
    if x.shape[0] < 2:
        return np.zeros_like(centred)
    cov = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    w, v = np.linalg.eigh(cov)
    tol = max(w.max(initial=0.0), 0.0) * 1e-12
    inv_sqrt = np.where(w > tol, 1.0 / np.sqrt(np.where(w > tol, w, 1.0)), 0.0)
    return np.asarray(centred @ v * inv_sqrt, dtype=np.float64)


def imbalance(labels: np.ndarray, z: np.ndarray, k: int) -> np.ndarray:
    """M for each row of ``labels`` (candidates x animals, arm indices) given whitened
    covariates ``z`` (animals x d): sum_j (sum_{i in j} z_i)^2 / n_j."""
    labels = np.atleast_2d(labels)
    m = np.zeros(labels.shape[0], dtype=np.float64)
    for j in range(k):
        member = (labels == j).astype(np.float64)
        nj = member.sum(axis=1)
        sums = member @ z
        m += np.divide((sums**2).sum(axis=1), nj, out=np.zeros_like(nj), where=nj > 0)
    return m


def randomise(
    units: Sequence[RandomisationUnit],
    arms: Sequence[str],
    *,
    seed: int,
    sizes: Mapping[str, int] | None = None,
    method: RandomisationMethod = "rerandomisation",
    n_candidates: int = 2000,
    acceptance: float = 0.01,
) -> Randomisation:
    """Allocate animals to arms, stratified and balanced on log10 baseline flux.

    Parameters
    ----------
    units : sequence of RandomisationUnit
        The animals; identifiers unique, ``baseline_flux`` > 0 p/s.
    arms : sequence of str
        At least two distinct arm names.
    seed : int
        Seed of ``numpy.random.default_rng``; the same inputs and seed give the same
        allocation.
    sizes : mapping arm -> int, optional
        Animals per arm (sum = number of units); default as even as possible.
    method : {"rerandomisation", "permutation"}
        See the module docstring.
    n_candidates : int
        Random allocations drawn (rerandomisation), 1 to 100 000.
    acceptance : float
        Share of candidates (best M first) among which the allocation is drawn, in (0, 1].

    Returns
    -------
    Randomisation
    """
    arms = tuple(arms)
    if len(arms) < 2 or len(set(arms)) != len(arms):
        raise InvalidInputError(f"randomise into at least two distinct arms; got {list(arms)}")
    if method not in RANDOMISATION_METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(RANDOMISATION_METHODS)}")
    if not 1 <= n_candidates <= MAX_CANDIDATES:
        raise InvalidInputError(f"n_candidates must be 1 to {MAX_CANDIDATES}, got {n_candidates}")
    if not 0 < acceptance <= 1:
        raise InvalidInputError(f"acceptance must be in (0, 1], got {acceptance}")
    if seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed}")
    ordered = sorted(units, key=lambda u: u.animal)
    names = [u.animal for u in ordered]
    if len(set(names)) != len(names):
        dup = sorted({a for a in names if names.count(a) > 1})
        raise InvalidInputError(f"animal(s) listed twice: {', '.join(dup)}")
    if len(ordered) < len(arms):
        raise InvalidInputError(
            f"{len(ordered)} animal(s) cannot fill {len(arms)} arms (one animal per arm at least)"
        )
    for u in ordered:
        if not (math.isfinite(u.baseline_flux) and u.baseline_flux > 0):
            raise InvalidInputError(
                f"animal {u.animal!r} has baseline flux {u.baseline_flux!r}; it must be a "
                "positive number of p/s (raise values below the detection limit to it first)"
            )
        if u.body_weight_g is not None and not (
            math.isfinite(u.body_weight_g) and u.body_weight_g > 0
        ):
            raise InvalidInputError(
                f"animal {u.animal!r} has body weight {u.body_weight_g!r} g; it must be > 0"
            )
    weights = [u.body_weight_g for u in ordered]
    use_weight = all(w is not None for w in weights)
    if not use_weight and any(w is not None for w in weights):
        missing = [u.animal for u in ordered if u.body_weight_g is None]
        raise InvalidInputError(
            "body weight is given for some animals but not for "
            f"{', '.join(missing[:10])}: give it for every animal or for none"
        )
    log_flux = np.log10(np.array([u.baseline_flux for u in ordered], dtype=np.float64))
    covariates = (
        ("log10_baseline_flux", "body_weight_g") if use_weight else ("log10_baseline_flux",)
    )
    x = log_flux[:, None]
    if use_weight:
        x = np.column_stack([log_flux, np.array(weights, dtype=np.float64)])

    rng = np.random.default_rng(seed)
    totals = arm_sizes(len(ordered), arms, sizes)
    strata: dict[str | None, list[int]] = {}
    for i, u in enumerate(ordered):
        strata.setdefault(u.stratum, []).append(i)
    quotas = _stratum_quotas({s: len(ix) for s, ix in strata.items()}, totals, rng)
    n_draw = n_candidates if method == "rerandomisation" else 1
    labels = np.empty((n_draw, len(ordered)), dtype=np.intp)
    for s in sorted(strata, key=_stratum_key):
        ix = np.array(strata[s], dtype=np.intp)
        base = np.repeat(np.arange(len(arms)), [quotas[s][a] for a in arms])
        labels[:, ix] = rng.permuted(np.tile(base, (n_draw, 1)), axis=1)
    z = _whitened(x)
    m = imbalance(labels, z, len(arms))
    n_accept = max(1, math.ceil(acceptance * n_draw)) if method == "rerandomisation" else 1
    accepted = np.argsort(m, kind="stable")[:n_accept]
    chosen = int(accepted[rng.integers(n_accept)])
    alloc = labels[chosen]

    assignments = tuple(
        UnitAssignment(u.animal, arms[alloc[i]], u.stratum, float(log_flux[i]), u.body_weight_g)
        for i, u in enumerate(ordered)
    )
    return Randomisation(
        method=method,
        seed=seed,
        n_candidates=n_draw,
        acceptance=acceptance if method == "rerandomisation" else 1.0,
        n_accepted=n_accept,
        covariates=covariates,
        arms=arms,
        assignments=assignments,
        balance=_balance(alloc, log_flux, weights if use_weight else None, arms),
        strata=tuple(
            StratumCount(s, a, int(np.sum(alloc[strata[s]] == j)))
            for s in sorted(strata, key=_stratum_key)
            for j, a in enumerate(arms)
        ),
        tests=_tests(alloc, x, covariates, len(arms)),
        imbalance_m=float(m[chosen]),
        expected_m_random=float(x.shape[1] * (len(arms) - 1)),
        acceptance_threshold_m=float(m[accepted].max()),
        candidate_percentile=float(100.0 * np.mean(m <= m[chosen])),
    )


def _sd(v: np.ndarray) -> float | None:
    return float(np.std(v, ddof=1)) if v.size >= 2 else None


def _balance(
    alloc: np.ndarray, log_flux: np.ndarray, weights: list[float | None] | None, arms: Sequence[str]
) -> tuple[ArmBalance, ...]:
    w = np.array(weights, dtype=np.float64) if weights is not None else None
    out = []
    for j, a in enumerate(arms):
        sel = alloc == j
        out.append(
            ArmBalance(
                a,
                int(sel.sum()),
                float(log_flux[sel].mean()),
                _sd(log_flux[sel]),
                float(w[sel].mean()) if w is not None else None,
                _sd(w[sel]) if w is not None else None,
            )
        )
    return tuple(out)


def _tests(
    alloc: np.ndarray, x: np.ndarray, covariates: Sequence[str], k: int
) -> tuple[BalanceTest, ...]:
    out = []
    n = alloc.size
    for c, name in enumerate(covariates):
        groups = [x[alloc == j, c] for j in range(k)]
        defined = all(g.size >= 2 for g in groups) and np.ptp(x[:, c]) > 0
        within = defined and any(np.ptp(g) > 0 for g in groups)
        f = stats.f_oneway(*groups) if within else None
        h = stats.kruskal(*groups) if defined else None
        out.append(
            BalanceTest(
                name,
                "one-way ANOVA F",
                float(f.statistic) if f is not None else None,
                (float(k - 1), float(n - k)),
                float(f.pvalue) if f is not None else None,
            )
        )
        out.append(
            BalanceTest(
                name,
                "Kruskal-Wallis H",
                float(h.statistic) if h is not None else None,
                (float(k - 1),),
                float(h.pvalue) if h is not None else None,
            )
        )
    return tuple(out)
