"""The shape comparison of a minimum-norm attack's curve with a PGD sweep (bench/studies/costs.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench.attacks.base import AttackResult
from bench.studies.costs import SHAPE_TOLERANCE, shape_agreement

EPS = np.array([1, 2, 4, 8, 16]) / 255


def _result(min_norm: np.ndarray) -> AttackResult:
    n = len(min_norm)
    return AttackResult(
        epsilons=EPS,
        x=np.zeros((n, 1, 2, 2)),
        y=np.zeros(n, dtype=int),
        clean_pred=np.where(min_norm > 0, 0, 1),
        adv_pred=np.zeros((len(EPS), n), dtype=int),
        x_adv=np.zeros((len(EPS), n, 1, 2, 2)),
        seconds=np.zeros(len(EPS)),
        attacked=np.zeros(len(EPS), dtype=int),
        norm="linf",
        min_norm=min_norm,
    )


def _pgd_curve(true_norm: np.ndarray) -> np.ndarray:
    """The curve of an attack that finds every sample's true smallest norm."""
    return np.array([np.mean(true_norm > e) for e in EPS])


@pytest.mark.parametrize("factor", [1.0, 1.6, 0.6])
def test_norms_off_by_a_constant_factor_have_the_same_shape(factor: float) -> None:
    rng = np.random.default_rng(0)
    true_norm = rng.uniform(0.5, 20, 400) / 255
    scale, gap = shape_agreement(_result(true_norm * factor), _pgd_curve(true_norm))
    assert gap <= SHAPE_TOLERANCE
    assert scale == pytest.approx(factor, rel=0.1)  # the attack's norms are about this factor times the true ones


def test_a_plateau_is_not_the_same_shape() -> None:
    rng = np.random.default_rng(1)
    true_norm = rng.uniform(0.5, 6, 400) / 255  # PGD at 0 from 8/255 on
    stalled = np.where(np.arange(400) < 120, np.inf, true_norm)  # 30% never fooled: a plateau at 0.3
    _, gap = shape_agreement(_result(stalled), _pgd_curve(true_norm))
    assert gap > 0.25
    # misclassified-from-the-start samples (norm 0) count as not robust at every epsilon
    misclassified = np.where(np.arange(400) < 40, 0.0, true_norm)
    assert shape_agreement(_result(misclassified), _pgd_curve(misclassified))[1] == 0.0


def test_shape_agreement_needs_minimum_norms() -> None:
    result = dataclasses.replace(_result(np.ones(3)), min_norm=None)
    with pytest.raises(ValueError, match="minimum-norm"):
        shape_agreement(result, np.zeros(len(EPS)))
