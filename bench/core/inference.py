"""Running a detector on images: class predictions and the probability of the true class.

Each helper takes a keyword-only ``device``: the batches go there (the model must be there
already; ``None``: wherever the model is) and the results come back as numpy arrays on the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.core.devices import model_device

if TYPE_CHECKING:
    import torch
    from torch import nn

BATCH_SIZE = 512


def predict(
    model: nn.Module, x: np.ndarray, batch_size: int = BATCH_SIZE, *, device: torch.device | None = None
) -> np.ndarray:
    """Class predictions of a detector on float32 images in [0, 1] (N, C, H, W)."""
    import torch

    device = device if device is not None else model_device(model)
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)).to(device)
            out.append(model(batch).argmax(dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def probabilities(
    model: nn.Module, images: np.ndarray, batch_size: int = BATCH_SIZE, *, device: torch.device | None = None
) -> np.ndarray:
    """Softmax class probabilities (N x classes, float64) of a detector on float32 images in [0, 1],
    or on uint8 images (divided by 255 one batch at a time)."""
    import torch

    device = device if device is not None else model_device(model)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            batch = images[i : i + batch_size]
            if batch.dtype == np.uint8:
                batch = batch.astype(np.float32) / np.float32(255.0)
            logits = model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device))
            out.append(torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, 1))


def true_class_probability(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = BATCH_SIZE,
    *,
    device: torch.device | None = None,
) -> np.ndarray:
    """The detector's softmax probability of each image's true class."""
    if not len(x):
        return np.zeros(0)
    return np.asarray(probabilities(model, x, batch_size, device=device)[np.arange(len(x)), y])
