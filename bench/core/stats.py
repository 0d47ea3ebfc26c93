"""Confidence intervals for the rates in every table."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd


@functools.cache
def _z(confidence: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(0.5 + 0.5 * confidence))


def _binom_cdf(k: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    """``scipy.stats.binom.cdf(k, n, p)`` for whole k in [0, n] (the ufunc it calls)."""
    from scipy.special import _ufuncs

    if not hasattr(_ufuncs, "_binom_cdf"):  # another SciPy: the public function
        from scipy.stats import binom

        return np.asarray(binom.cdf(k, n, p))
    return np.asarray(_ufuncs._binom_cdf(np.floor(k), n, p))


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaN for n = 0).

    SciPy's ``binomtest(k, n).proportion_ci(method="wilson")`` operation for operation (Newcombe
    1998; tests/test_tables.py checks it bit for bit): without building a test object per call,
    which made the intervals of the ensemble rows most of a warm rerun's table assembly.
    """
    k, n = int(successes), int(n)
    if n == 0:
        return (float("nan"), float("nan"))
    z = _z(confidence)
    p = k / n
    denom = 2 * (n + z**2)
    center = (2 * n * p + z**2) / denom
    q = 1 - p
    delta = z / denom * math.sqrt(4 * n * p * q + z**2)
    return (0.0 if k == 0 else float(center - delta), 1.0 if k == n else float(center + delta))


def rate(flags: np.ndarray) -> tuple[float, float, float]:
    """Mean of a boolean array with its 95% Wilson interval."""
    n = int(flags.size)
    k = int(np.count_nonzero(flags))
    low, high = wilson(k, n)
    return (k / n if n else float("nan"), low, high)


def wilson_arrays(successes: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wilson` for arrays of counts at once (NaN where n = 0)."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (k + z * z / 2) / (n + z * z)
        half = z * np.sqrt(n) / (n + z * z) * np.sqrt(p * (1 - p) + z * z / (4 * n))
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    bad = ~(n > 0)
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def success_rate_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the 95% Wilson interval of ``attack_success_rate`` (the flipped share of the
    clean-correct samples), recovered exactly from the counts behind n, clean and robust accuracy."""
    n = table["n"].to_numpy(dtype=np.float64)
    correct = np.rint(table["clean_accuracy"].to_numpy(dtype=np.float64) * n)
    robust = np.rint(table["robust_accuracy"].to_numpy(dtype=np.float64) * n)
    low, high = wilson_arrays(correct - robust, correct)
    return table.assign(attack_success_rate_low=low, attack_success_rate_high=high)


def mcnemar_p(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Two-sided p-values of McNemar's exact test for paired outcomes, element-wise: ``b`` and
    ``c`` count the discordant samples either way (1 where there are none).

    The binomial CDF is SciPy's ``binom.cdf`` without ``scipy.stats`` (whose import is about a
    second of a warm rerun): the same special function, bit for bit (tests/test_tables.py)."""
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    n = b + c
    p = 2.0 * _binom_cdf(np.minimum(b, c), n, 0.5)
    return np.asarray(np.where(n > 0, np.minimum(p, 1.0), 1.0))
