"""cohorts._common: the shared two-sample tests, against R."""

from __future__ import annotations

import math

import numpy as np
from numpy.testing import assert_allclose

from cohorts._common import welch


def test_welch_with_one_arm_all_equal_matches_r() -> None:
    # Every treated value at the floor: scipy warns of "precision loss" (its variance is
    # exactly 0); the test is still defined (df = n_C - 1), as R gives it.
    # R: r <- t.test(c(5,5,5,5), c(4.1,4.5,4.9,4.6,4.2))
    #    t = 3.7623582771747337, df = 4, p = 0.0197345377999593,
    #    95 % CI 0.1415051607651086 0.9384948392348914
    eff, test = welch(np.full(4, 5.0), np.array([4.1, 4.5, 4.9, 4.6, 4.2]), "log10 flux")
    assert_allclose(test.statistic, 3.7623582771747337, rtol=1e-12)
    assert_allclose(test.df, 4.0, rtol=1e-12)
    assert_allclose(test.p_value, 0.0197345377999593, rtol=1e-10)
    assert_allclose([eff.ci_low, eff.ci_high], [0.1415051607651086, 0.9384948392348914], rtol=1e-10)
    assert_allclose(eff.estimate, 5.0 - 4.46, rtol=1e-12)


def test_welch_with_both_arms_all_equal_is_undefined() -> None:
    # R: t.test(c(5,5,5), c(4,4,4)) stops with "data are essentially constant".
    eff, test = welch(np.full(3, 5.0), np.full(3, 4.0), "log10 flux")
    assert eff.estimate == 1.0 and eff.ci_low is None and eff.ci_high is None
    assert math.isnan(test.statistic) and math.isnan(test.p_value) and test.df is None


def test_warnings_recorded_on_two_threads_stay_each_with_its_own_block() -> None:
    """Two fits recording their warnings at once (two comparisons on two threads) each get
    their own warnings only, and the process's warning settings are as before afterwards."""
    import threading
    import time
    import warnings

    from cohorts._common import recorded_warnings

    before = (list(warnings.filters), warnings.showwarning)
    seen: dict[str, list[str]] = {}
    start = threading.Barrier(2)

    def fit(name: str) -> None:
        start.wait(10)
        with recorded_warnings() as caught:
            for _ in range(50):
                warnings.warn(f"from {name}", UserWarning, stacklevel=1)
                time.sleep(0.0005)  # the other thread runs meanwhile
        seen[name] = sorted({str(w.message) for w in caught})

    threads = [threading.Thread(target=fit, args=(name,)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == {"A": ["from A"], "B": ["from B"]}
    assert (list(warnings.filters), warnings.showwarning) == before
