"""TRADES (Zhang et al. 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from bench.core.registry import at_least, at_most, greater_than
from defenses import Defense, DefenseInfo, register_defense
from defenses._adversary import craft

if TYPE_CHECKING:
    import torch
    from torch import nn


class Trades(Defense):
    """CE(clean) + beta * KL(p(clean) || p(adversarial)), the adversary maximising the KL (Zhang et al.)."""

    def __init__(self, beta: float, eps_255: float, steps: int) -> None:
        self.beta, self.eps, self.steps = beta, eps_255 / 255.0, steps

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch
        from torch.nn import functional as F

        was_training = model.training
        model.eval()
        with torch.no_grad():
            p_clean = F.softmax(model(x), dim=1)
        model.train(was_training)

        def objective(logits: torch.Tensor) -> torch.Tensor:
            return F.kl_div(F.log_softmax(logits, dim=1), p_clean, reduction="sum")

        step = 2.5 * self.eps / self.steps
        x_adv = craft(model, x, objective, eps=self.eps, steps=self.steps, step_size=step, start="gaussian")
        logits = model(x)  # two passes of n: cheaper on CPU than one of 2n (docs/design.md)
        robust = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
        return F.cross_entropy(logits, y) + self.beta * robust


@register_defense(
    "trades",
    info=DefenseInfo(
        "TRADES: CE(clean) + beta * KL(p(clean) || p(adversarial)), the adversary maximising the KL with "
        "steps of 2.5 * eps / steps from a small Gaussian start; eps in 8-bit units",
        reference="Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, ICML 2019",
    ),
)
def trades(
    *,
    beta: Annotated[float, at_least(0.0)] = 6.0,
    eps: Annotated[float, greater_than(0.0)] = 1.0,
    steps: Annotated[int, at_least(1), at_most(1_000)] = 2,
) -> Defense:
    """TRADES with 2 inner steps by default (its paper used 10 on GPUs; docs/design.md gives the cost)."""
    return Trades(beta, eps, steps)
