"""Foolbox L2DeepFoolAttack, minimum norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import MinimumNormAttack
from bench.attacks.foolbox._base import FoolboxAttack
from bench.core.registry import at_least, at_most


@register_attack(
    "foolbox.deepfool-l2",
    info=AttackInfo(
        "Foolbox L2DeepFoolAttack, minimum norm: at most steps linearised steps with overshoot",
        reference="Moosavi-Dezfooli, Fawzi & Frossard, CVPR 2016",
        algorithm="deepfool",
        matched=("overshoot", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxDeepFoolL2(FoolboxAttack, MinimumNormAttack):
    """L2 DeepFool through Foolbox, unbounded.

    Defaults are tuned for cost against one ART PGD run (``python -m bench costs``): one gradient
    pass per step on a 2-class detector, and the batch stops as soon as every sample is fooled.
    Strengthen with more ``steps`` (Foolbox's default is 50); docs/design.md (Attacks) says where
    more steps change nothing.
    """

    norm = "l2"
    overshoot: Annotated[float, at_least(0.0)] = 0.02
    steps: Annotated[int, at_least(1), at_most(10_000)] = 8

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.L2DeepFoolAttack(steps=self.steps, overshoot=self.overshoot)
