"""Scoring kept adversarial images on a model (a stage: its fingerprint is in every transfer-pair key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.core.inference import evaluation_copy, probabilities

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Scores:
    """A target model's predictions on a source cell's images (what is cached per pair)."""

    clean_pred: np.ndarray  # (N,)
    adv_pred: np.ndarray  # (E, N)
    clean_prob: np.ndarray  # (N,) probability of the true class
    adv_prob: np.ndarray  # (E, N)


def score_images(
    model: nn.Module, x: np.ndarray, adv: np.ndarray, label: np.ndarray, *, device: torch.device | None = None
) -> Scores:
    """Predictions and true-class probabilities of a model on uint8 clean (N) and adversarial
    (E x N) images. An adversarial image equal to its clean image, or to the previous epsilon's
    (a sweep keeps the example of a smaller ball), is not scored again. ``device``: where the
    model runs (``None``: the CPU, or wherever the model is). The images are scored on the
    model's evaluation copy, as a cell scores its own (``bench.core.inference.evaluation_copy``):
    an image a decision-based attack left on the boundary can flip with the last bits of the
    arithmetic."""
    model = evaluation_copy(model, device=device)  # as the cells judge: the same copy, the same rounding

    def forward(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = probabilities(model, images, device=device)
        return np.asarray(p.argmax(axis=1), dtype=np.int64), p

    def flat(a: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape[0], -1)

    model.eval()
    n = len(x)
    clean_pred, clean_p = forward(x)
    adv_pred = np.empty((len(adv), n), dtype=np.int64)
    adv_prob = np.empty((len(adv), n), dtype=np.float64)
    for k in range(len(adv)):
        same_clean = (flat(adv[k]) == flat(x)).all(axis=1)
        same_prev = (flat(adv[k]) == flat(adv[k - 1])).all(axis=1) & ~same_clean if k else np.zeros(n, dtype=bool)
        new = ~same_clean & ~same_prev
        adv_pred[k], adv_prob[k] = clean_pred, clean_p[np.arange(n), label]
        if k:
            adv_pred[k, same_prev], adv_prob[k, same_prev] = adv_pred[k - 1, same_prev], adv_prob[k - 1, same_prev]
        if new.any():
            pred, p = forward(np.ascontiguousarray(adv[k][new]))
            adv_pred[k, new], adv_prob[k, new] = pred, p[np.arange(len(pred)), label[new]]
    return Scores(clean_pred, adv_pred, clean_p[np.arange(n), label], adv_prob)
