"""Confidence intervals for the rates in every table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaN for n = 0)."""
    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def rate(flags: np.ndarray) -> tuple[float, float, float]:
    """Mean of a boolean array with its 95% Wilson interval."""
    n = int(flags.size)
    k = int(np.count_nonzero(flags))
    low, high = wilson(k, n)
    return (k / n if n else float("nan"), low, high)


def wilson_arrays(successes: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wilson` for arrays of counts at once (NaN where n = 0)."""
    from scipy.stats import norm

    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = norm.ppf(0.5 + confidence / 2)
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
    ``c`` count the discordant samples either way (1 where there are none)."""
    from scipy.stats import binom

    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    n = b + c
    p = 2.0 * binom.cdf(np.minimum(b, c), n, 0.5)
    return np.asarray(np.where(n > 0, np.minimum(p, 1.0), 1.0))
