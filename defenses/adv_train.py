"""Fused adversarial training: the seed paper's second defence (FGSM) and Madry's PGD training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from bench.core.registry import at_least, at_most, greater_than
from defenses import Defense, DefenseInfo, register_defense
from defenses._adversary import craft, gradient_norm, input_gradient
from defenses._references import ZHAO2018

if TYPE_CHECKING:
    import torch
    from torch import nn

AttackName = Literal["fgsm", "pgd"]


class AdversarialTraining(Defense):
    """mix * CE(clean) + (1 - mix) * CE(adversarial) on a fused batch (+ optional gradient penalty).

    ``attack="fgsm"``: one signed-gradient step of size eps along the clean loss's input gradient
    from the training forward pass itself (train-mode batch norm, as in Goodfellow et al.), no
    random start: one backward through the retained clean graph instead of a separate crafting
    pass. ``attack="pgd"``: uniform random start and ``steps`` steps of 2.5 * eps / steps, crafted
    in evaluation mode (Madry et al.). With ``lam > 0`` the clean half also carries the
    input-gradient penalty (``grad-penalty+adv-train``), whose gradient FGSM reuses. Clean and
    adversarial images go through the model as two batches of n, not one of 2n (cheaper on CPU,
    docs/design.md), so batch norm normalises each half with its own statistics.
    """

    def __init__(
        self, attack: str, eps_255: float, steps: int, mix: float, lam: float = 0.0, squared: bool = False
    ) -> None:
        self.attack, self.eps, self.steps, self.mix = attack, eps_255 / 255.0, steps, mix
        self.lam, self.squared = lam, squared

    def _clean_and_adversarial(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per-sample clean loss (training mode), the adversarial images, the penalty (None if lam == 0)."""
        from torch.nn import functional as F

        if self.attack == "pgd":

            def objective(logits: torch.Tensor) -> torch.Tensor:
                return F.cross_entropy(logits, y, reduction="sum")

            step = 2.5 * self.eps / self.steps
            x_adv = craft(model, x, objective, eps=self.eps, steps=self.steps, step_size=step, start="uniform")
        x = x.detach().requires_grad_(self.attack == "fgsm" or self.lam > 0)
        clean = F.cross_entropy(model(x), y, reduction="none")
        grad = input_gradient(clean, x, create_graph=self.lam > 0) if x.requires_grad else None
        if self.attack == "fgsm":
            assert grad is not None
            x_adv = (x.detach() + self.eps * grad.detach().sign()).clamp(0.0, 1.0)
        penalty = gradient_norm(grad, self.squared) if self.lam > 0 and grad is not None else None
        return clean, x_adv, penalty

    def adversarial(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The adversarial half of the fused batch the training step would use (detached)."""
        return self._clean_and_adversarial(model, x, y)[1].detach()

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional as F

        clean, x_adv, penalty = self._clean_and_adversarial(model, x, y)
        total = self.mix * clean.mean() + (1 - self.mix) * F.cross_entropy(model(x_adv), y)
        return total if penalty is None else total + self.lam * penalty


def one_step_fgsm(params: dict[str, Any]) -> str | None:
    """The registry check of the entries with an ``attack`` parameter: FGSM takes one step."""
    if params["attack"] == "fgsm" and params["steps"] != 1:
        return f"attack=fgsm takes one step, not steps={params['steps']}; use attack=pgd for several steps"
    return None


@register_defense(
    "adv-train",
    info=DefenseInfo(
        "fused adversarial training: mix * CE(clean) + (1 - mix) * CE(adversarial), adversarial images crafted "
        "on the fly against the current model (FGSM, or PGD with random start); eps in 8-bit units",
        reference=f"{ZHAO2018} (fused training); Goodfellow et al., ICLR 2015 (FGSM); Madry et al., ICLR 2018 (PGD)",
    ),
    check=one_step_fgsm,
)
def adv_train(
    *,
    attack: AttackName = "fgsm",
    eps: Annotated[float, greater_than(0.0)] = 1.0,
    steps: Annotated[int, at_least(1), at_most(1_000)] = 1,
    mix: Annotated[float, at_least(0.0), at_most(1.0)] = 0.5,
) -> Defense:
    """The seed paper's second defence (FGSM) and Madry's PGD training (``attack=pgd,steps=k``)."""
    return AdversarialTraining(attack, eps, steps, mix)
