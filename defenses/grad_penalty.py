"""The seed paper's first defence: a penalty on the 2-norm of the loss gradient w.r.t. the input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least
from defenses import Defense, DefenseInfo, register_defense
from defenses._adversary import gradient_norm, input_gradient
from defenses._references import ZHAO2018

if TYPE_CHECKING:
    import torch
    from torch import nn


class GradientNormPenalty(Defense):
    """Cross entropy + lambda * ||d CE / d x||_2 (or squared): double back-propagation."""

    def __init__(self, lam: float, squared: bool) -> None:
        self.lam, self.squared = lam, squared

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional as F

        x = x.detach().requires_grad_(True)
        per_sample = F.cross_entropy(model(x), y, reduction="none")
        penalty = gradient_norm(input_gradient(per_sample, x, create_graph=True), self.squared)
        return per_sample.mean() + self.lam * penalty


@register_defense(
    "grad-penalty",
    info=DefenseInfo(
        "cross entropy + lambda * 2-norm (squared: its square) of the loss gradient w.r.t. the input image "
        "(double back-propagation)",
        reference=f"{ZHAO2018}; Ross & Doshi-Velez, AAAI 2018",
    ),
)
def grad_penalty(*, lambda_: Annotated[float, at_least(0.0)] = 0.01, squared: bool = False) -> Defense:
    """The seed paper's gradient-norm regulariser."""
    return GradientNormPenalty(lambda_, squared)
