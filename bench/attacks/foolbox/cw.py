"""Foolbox L2CarliniWagnerAttack, minimum norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import MinimumNormAttack
from bench.attacks.foolbox._base import FoolboxAttack
from bench.core.registry import at_least, at_most, greater_than


@register_attack(
    "foolbox.cw-l2",
    info=AttackInfo(
        "Foolbox L2CarliniWagnerAttack, minimum norm: binary_steps searches over the constant from "
        "initial_const, steps Adam steps of stepsize each",
        reference="Carlini & Wagner, IEEE S&P 2017",
        algorithm="cw",
        matched=("binary_steps", "initial_const", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxCarliniL2(FoolboxAttack, MinimumNormAttack):
    """Carlini & Wagner L2 through Foolbox (Adam in tanh space, binary search over the constant).

    Defaults are tuned for cost against one ART PGD run (``python -m bench costs``): 10 Adam steps,
    one gradient pass each, at a fixed constant 0.1 (Foolbox starts its binary search at 0.001,
    which needs many binary-search steps to grow). Adam moves every pixel by about ``stepsize``
    (in tanh space) per step whatever the size of the gradient, so with few steps the step size
    sets both the reach and the resolution of the norms found; Foolbox's 0.01 is needed on
    detectors with saturated layers (docs/design.md, Attacks). The small constant keeps the
    squared-norm term in play. ``abort_early`` (Foolbox: True) stops a binary-search step when the
    loss summed over the whole batch has not fallen since the last check, for every sample at
    once; off by default so that every sample gets its steps. Strengthen with binary_steps 5-9,
    steps 100-10,000 (Foolbox's defaults are 9 x 10,000).
    """

    norm = "l2"
    abort_early: bool = False
    binary_steps: Annotated[int, at_least(1), at_most(100)] = 1
    initial_const: Annotated[float, greater_than(0.0)] = 0.1
    stepsize: Annotated[float, greater_than(0.0)] = 0.01
    steps: Annotated[int, at_least(1), at_most(10_000)] = 10

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.L2CarliniWagnerAttack(
            binary_search_steps=self.binary_steps,
            steps=self.steps,
            stepsize=self.stepsize,
            initial_const=self.initial_const,
            abort_early=self.abort_early,
        )

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # Foolbox returns an all-black image where it found nothing (its best_advs start at zeros),
        # which the detector may well put in another class: an "adversarial example" the attack
        # never found. Return the clean image there instead (tanh-space iterates never reach 0 exactly).
        adv = super().run_unbounded(handle, x, y)
        never = np.asarray(~adv.reshape(len(adv), -1).any(axis=1) & x.reshape(len(x), -1).any(axis=1))
        return np.where(never[:, None, None, None], x, adv)
