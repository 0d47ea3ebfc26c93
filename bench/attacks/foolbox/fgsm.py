"""Foolbox LinfFastGradientAttack (FGSM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import FixedEpsilonAttack
from bench.attacks.foolbox._base import FoolboxAttack


@register_attack(
    "foolbox.fgsm",
    info=AttackInfo(
        "Foolbox LinfFastGradientAttack (FGSM), one signed-gradient step of size eps",
        reference="Goodfellow, Shlens & Szegedy, ICLR 2015",
        algorithm="fgsm",
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxFGSM(FoolboxAttack, FixedEpsilonAttack):
    """FGSM through Foolbox, without random start."""

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.LinfFastGradientAttack(random_start=False)
