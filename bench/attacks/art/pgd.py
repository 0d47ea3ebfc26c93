"""ART ProjectedGradientDescent, Linf and L2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.art._base import BATCH_SIZE, ArtAttack, art_norm
from bench.attacks.base import FixedEpsilonAttack
from bench.core.registry import at_least, at_most, greater_than


@register_attack(
    "art.pgd",
    info=AttackInfo(
        "ART ProjectedGradientDescent, Linf, random start, step = rel_stepsize * eps",
        reference="Madry et al., ICLR 2018",
        algorithm="pgd",
        matched=("random_start", "rel_stepsize", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtPGD(ArtAttack, FixedEpsilonAttack):
    """PGD through ART in the class's norm, ``steps`` steps of ``rel_stepsize`` times epsilon."""

    random_start: bool = True
    rel_stepsize: Annotated[float, greater_than(0.0)] = 0.25
    steps: Annotated[int, at_least(1), at_most(10_000)] = 10

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import ProjectedGradientDescent

        attack = ProjectedGradientDescent(
            handle,
            norm=art_norm(self.norm),
            eps=eps,
            eps_step=self.rel_stepsize * eps,
            max_iter=self.steps,
            num_random_init=int(self.random_start),
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return np.asarray(attack.generate(x=x, y=y))


@register_attack(
    "art.pgd-l2",
    info=AttackInfo(
        "ART ProjectedGradientDescent, L2, random start, step = rel_stepsize * eps",
        reference="Madry et al., ICLR 2018",
        algorithm="pgd",
        matched=("random_start", "rel_stepsize", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtPGDL2(ArtPGD):
    """L2 PGD through ART."""

    norm = "l2"
