"""Both of the seed paper's defences at once: fused adversarial training and the gradient-norm penalty."""

from __future__ import annotations

from typing import Annotated

from bench.core.registry import at_least, at_most, greater_than
from defenses import Defense, DefenseInfo, register_defense
from defenses._references import ZHAO2018
from defenses.adv_train import AdversarialTraining, AttackName, one_step_fgsm


@register_defense(
    "grad-penalty+adv-train",
    info=DefenseInfo(
        "both of the seed paper's defences at once: fused adversarial training + lambda * input-gradient norm "
        "of the clean images' loss",
        reference=ZHAO2018,
    ),
    check=one_step_fgsm,
)
def grad_penalty_adv_train(
    *,
    lambda_: Annotated[float, at_least(0.0)] = 0.01,
    squared: bool = False,
    attack: AttackName = "fgsm",
    eps: Annotated[float, greater_than(0.0)] = 1.0,
    steps: Annotated[int, at_least(1), at_most(1_000)] = 1,
    mix: Annotated[float, at_least(0.0), at_most(1.0)] = 0.5,
) -> Defense:
    """Gradient-norm penalty and fused adversarial training combined (FGSM reuses the penalty's gradient)."""
    return AdversarialTraining(attack, eps, steps, mix, lam=lambda_, squared=squared)
