"""Running a detector on images: class predictions and the probability of the true class."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import nn

BATCH_SIZE = 512


def predict(model: nn.Module, x: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Class predictions of a detector on float32 images in [0, 1] (N, C, H, W)."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32))
            out.append(model(batch).argmax(dim=1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def true_class_probability(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The detector's softmax probability of each image's true class."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)))
            rows = torch.arange(len(logits))
            out.append(torch.softmax(logits, dim=1)[rows, torch.from_numpy(y[i : i + batch_size])])
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)
