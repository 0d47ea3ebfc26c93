"""Input-gradient norm penalty, the first defence of Zhao et al. (2018)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.registry import at_least
from defenses import Defense, DefenseInfo, register_defense

if TYPE_CHECKING:
    import torch
    from torch import nn


class GradientNormPenalty(Defense):
    """Cross entropy + lambda * mean over the batch of ||d CE_i / d x_i||_2 (double back-propagation).

    The per-sample gradient is taken of the summed per-sample losses, so each image's gradient
    is that of its own loss (up to the coupling that batch normalisation introduces in training
    mode). ``create_graph=True`` lets the optimiser differentiate through the gradient norm.
    """

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch
        from torch.nn import functional as F

        x = x.detach().requires_grad_(True)
        per_sample = F.cross_entropy(model(x), y, reduction="none")
        (grad,) = torch.autograd.grad(per_sample.sum(), x, create_graph=True)
        return per_sample.mean() + self.lam * grad.flatten(1).norm(dim=1).mean()


@register_defense(
    "grad-penalty",
    info=DefenseInfo(
        "cross entropy + lambda * 2-norm of the loss gradient w.r.t. the input image (double backprop)",
        reference="Zhao, Yang, Ni, Zhao & Wu, 'Security consideration for deep learning-based image "
        "forensics', IEICE Trans. Inf. & Syst. E101-D(12), 2018; Ross & Doshi-Velez, AAAI 2018",
    ),
)
def grad_penalty(*, lambda_: Annotated[float, at_least(0.0)] = 0.01) -> Defense:
    """The seed paper's gradient-norm regulariser."""
    return GradientNormPenalty(lambda_)
