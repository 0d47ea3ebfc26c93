"""What the adversarial training defences share: the input gradient, its norm and the on-the-fly attack.

Budgets ``eps`` are in [0, 1] units here (the entries take them in 8-bit units). Multi-step
adversaries (PGD, TRADES) craft with the model in evaluation mode (batch-norm running statistics,
as in the reference TRADES implementation) and without touching the parameters' gradients.
Random starts draw from torch's global generator, which the trainer seeds: training stays
deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn


def input_gradient(per_sample_loss: torch.Tensor, x: torch.Tensor, *, create_graph: bool) -> torch.Tensor:
    """d loss_i / d x_i for every image: the gradient of the summed losses (up to batch-norm coupling).

    ``x`` must require grad and ``per_sample_loss`` be computed from it. ``create_graph=True``
    keeps the result differentiable (double back-propagation); otherwise the graph is retained
    for the training step's own backward pass.
    """
    import torch

    (grad,) = torch.autograd.grad(per_sample_loss.sum(), x, create_graph=create_graph, retain_graph=True)
    return grad


def gradient_norm(grad: torch.Tensor, squared: bool) -> torch.Tensor:
    """Batch mean of ||grad_i||_2 (or its square)."""
    grad = grad.flatten(1)
    return grad.pow(2).sum(dim=1).mean() if squared else grad.norm(dim=1).mean()


def craft(
    model: nn.Module,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    *,
    eps: float,
    steps: int,
    step_size: float,
    start: Literal["none", "uniform", "gaussian"],
) -> torch.Tensor:
    """Linf sign-gradient ascent on ``objective(logits)`` from x within eps (in [0, 1] units), in [0, 1].

    ``start``: "none" (FGSM), "uniform" in the ball (Madry's PGD), "gaussian" with std 0.001
    (TRADES). Returns a detached tensor; the model's mode and parameter gradients are untouched.
    """
    import torch

    was_training = model.training
    model.eval()
    if start == "uniform":
        x_adv = x + torch.empty_like(x).uniform_(-eps, eps)
    elif start == "gaussian":
        x_adv = x + 0.001 * torch.randn_like(x)
    else:
        x_adv = x.clone()
    x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0).detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(model(x_adv)), x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0).detach()
    model.train(was_training)
    return x_adv
