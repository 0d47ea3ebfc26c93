"""Which held-out test patches a cell attacks (and its probes examine)."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bench.inputs.data import Dataset


def attacked_subset(dataset: Dataset, n: int, seed: int) -> np.ndarray:
    """Indices of the attacked test patches: a seeded sample of n (all if fewer), sorted."""
    total = len(dataset.y["test"])
    if n >= total:
        return np.arange(total)
    rng = np.random.default_rng([seed, zlib.crc32(b"test-subset")])
    return np.sort(rng.choice(total, n, replace=False))
