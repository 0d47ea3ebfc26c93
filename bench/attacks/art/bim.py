"""ART BasicIterativeMethod (BIM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.art._base import BATCH_SIZE, ArtAttack
from bench.attacks.base import FixedEpsilonAttack
from bench.core.registry import at_least, at_most, greater_than


@register_attack(
    "art.bim",
    info=AttackInfo(
        "ART BasicIterativeMethod (BIM), Linf, steps signed-gradient steps of rel_stepsize * eps from the clean image",
        reference="Kurakin, Goodfellow & Bengio, ICLR 2017 workshop",
        algorithm="bim",
        matched=("rel_stepsize", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtBIM(ArtAttack, FixedEpsilonAttack):
    """BIM (iterative FGSM, PGD without random start) through ART."""

    rel_stepsize: Annotated[float, greater_than(0.0)] = 0.25
    steps: Annotated[int, at_least(1), at_most(10_000)] = 10

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import BasicIterativeMethod

        attack = BasicIterativeMethod(
            handle,
            eps=eps,
            eps_step=self.rel_stepsize * eps,
            max_iter=self.steps,
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return np.asarray(attack.generate(x=x, y=y))
