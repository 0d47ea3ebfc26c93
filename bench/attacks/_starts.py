"""Starting points of the decision-based attacks: the nearest image of the batch labelled differently."""

from __future__ import annotations

import numpy as np


def nearest_other(x: np.ndarray, y: np.ndarray, pred: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """For each sample, the index of the nearest (L2) image of the batch predicted as another class, or -1."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    sq = (flat * flat).sum(axis=1)
    out = np.full(len(x), -1)
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        dist = sq[rows, None] + sq[None, :] - 2.0 * flat[rows] @ flat.T
        dist[pred[None, :] == y[rows, None]] = np.inf
        best = dist.argmin(axis=1)
        out[rows] = np.where(np.isfinite(dist[np.arange(len(best)), best]), best, -1)
    return out
