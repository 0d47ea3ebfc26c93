"""Defences: the training objectives really are what they claim."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from defenses import DEFENSES, create_defense
from detectors import create_detector


def _batch() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = create_detector("srm", in_channels=1, num_classes=2).train()
    return model, torch.rand(16, 1, 64, 64), torch.randint(2, (16,))


@pytest.mark.parametrize("name", DEFENSES.names())
def test_every_defense_gives_a_differentiable_scalar_loss(name: str) -> None:
    model, x, y = _batch()
    loss = create_defense(name).loss(model, x, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_none_is_cross_entropy() -> None:
    model, x, y = _batch()
    assert torch.allclose(create_defense("none").loss(model, x, y), F.cross_entropy(model(x), y))


def test_grad_penalty_adds_lambda_times_input_gradient_norm() -> None:
    model, x, y = _batch()
    xg = x.clone().requires_grad_(True)
    per_sample = F.cross_entropy(model(xg), y, reduction="none")
    (grad,) = torch.autograd.grad(per_sample.sum(), xg)
    expected = per_sample.mean() + 0.5 * grad.flatten(1).norm(dim=1).mean()
    got = create_defense("grad-penalty[lambda=0.5]").loss(model, x, y)
    assert torch.allclose(got, expected, rtol=1e-5)
    assert got > per_sample.mean()


def test_grad_penalty_back_propagates_through_the_gradient() -> None:
    """Double back-propagation: the penalty term changes the parameter gradients."""
    grads = []
    for lam in (0.0, 1.0):
        model, x, y = _batch()
        create_defense(f"grad-penalty[lambda={lam}]").loss(model, x, y).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert not torch.allclose(grads[0], grads[1])
