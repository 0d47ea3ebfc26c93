"""Confidence intervals for the rates in every table."""

from __future__ import annotations

import numpy as np
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
