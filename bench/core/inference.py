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


def probabilities(model: nn.Module, images: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Softmax class probabilities (N x classes, float64) of a detector on float32 images in [0, 1],
    or on uint8 images (divided by 255 one batch at a time)."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            batch = images[i : i + batch_size]
            if batch.dtype == np.uint8:
                batch = batch.astype(np.float32) / np.float32(255.0)
            logits = model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            out.append(torch.softmax(logits, dim=1).numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, 1))


def true_class_probability(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The detector's softmax probability of each image's true class."""
    if not len(x):
        return np.zeros(0)
    return np.asarray(probabilities(model, x, batch_size)[np.arange(len(x)), y])
