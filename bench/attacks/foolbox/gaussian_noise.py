"""Foolbox L2AdditiveGaussianNoiseAttack: a non-adversarial control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import FixedEpsilonAttack
from bench.attacks.foolbox._base import FoolboxAttack


@register_attack(
    "foolbox.gaussian-noise",
    info=AttackInfo(
        "Foolbox L2AdditiveGaussianNoiseAttack: a control, one Gaussian noise draw of L2 norm eps (non-adversarial)",
        reference="Rauber, Brendel & Bethge, Foolbox (ICML 2017 workshop)",
        algorithm="gaussian-noise",
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxGaussianNoise(FoolboxAttack, FixedEpsilonAttack):
    """Random Gaussian noise at the same L2 budget as the attacks: how much is the detector hurt by mere noise?

    One Gaussian draw scaled to L2 norm eps (then clipped).
    """

    norm = "l2"
    threat = "control"

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.L2AdditiveGaussianNoiseAttack()
