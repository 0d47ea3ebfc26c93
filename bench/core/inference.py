"""Running a detector on images: class predictions and the probability of the true class.

Each helper takes a keyword-only ``device``: the batches go there (the model must be there
already; ``None``: wherever the model is) and the results come back as numpy arrays on the CPU.
Predictions run under ``torch.inference_mode`` (no autograd bookkeeping at all).

:func:`evaluation_copy` is the detector as attacks and scoring run it: a copy with its
parameters frozen (an attack needs the gradient with respect to the input only; a weight
that requires a gradient makes every backward pass compute the weight's too) and its 4-D
weights channels-last (the layout in which the CPU convolution and pooling kernels of torch run
fastest; the same function, rounded differently in the last bits). ``python -m bench costs``
measures what each attack costs against the model evaluations it makes (docs/design.md, Costs).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np

from bench.core.devices import model_device

if TYPE_CHECKING:
    import torch
    from torch import nn

BATCH_SIZE = 256  # the attack libraries' batch: a larger one only raises the peak memory of a cell


def evaluation_copy(model: nn.Module, *, device: torch.device | None = None) -> nn.Module:
    """A copy of a detector for attacking and scoring: on ``device`` (``None``: where it is), in
    eval mode, every parameter frozen, 4-D parameters and buffers channels-last. The caller's
    model is not touched (a copy is cheap next to one attack; a model with a random generator,
    such as a randomised input transform, gets its own copy of the generator's state)."""
    import torch

    out: nn.Module = copy.deepcopy(model)
    if device is not None:
        out = out.to(device)
    out.eval().requires_grad_(False)
    return out.to(memory_format=torch.channels_last)  # type: ignore[call-overload,no-any-return]  # torch stubs lack it


def logits(
    model: nn.Module, x: np.ndarray, batch_size: int = BATCH_SIZE, *, device: torch.device | None = None
) -> np.ndarray:
    """The detector's logits (N x classes, float32) on float32 images in [0, 1] (N, C, H, W)."""
    import torch

    device = device if device is not None else model_device(model)
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)).to(device)
            out.append(model(batch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)


def predict(
    model: nn.Module, x: np.ndarray, batch_size: int = BATCH_SIZE, *, device: torch.device | None = None
) -> np.ndarray:
    """Class predictions of a detector on float32 images in [0, 1] (N, C, H, W)."""
    if not len(x):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(logits(model, x, batch_size, device=device).argmax(axis=1), dtype=np.int64)


def probabilities(
    model: nn.Module, images: np.ndarray, batch_size: int = BATCH_SIZE, *, device: torch.device | None = None
) -> np.ndarray:
    """Softmax class probabilities (N x classes, float64) of a detector on float32 images in [0, 1],
    or on uint8 images (divided by 255 one batch at a time)."""
    import torch

    device = device if device is not None else model_device(model)
    out = []
    with torch.inference_mode():
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
