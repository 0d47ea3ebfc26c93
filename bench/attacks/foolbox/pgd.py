"""Foolbox projected gradient descent, Linf and L2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import FixedEpsilonAttack
from bench.attacks.foolbox._base import FoolboxAttack
from bench.core.registry import at_least, at_most, greater_than


@register_attack(
    "foolbox.pgd",
    info=AttackInfo(
        "Foolbox LinfProjectedGradientDescentAttack, random start, step = rel_stepsize * eps",
        reference="Madry et al., ICLR 2018",
        algorithm="pgd",
        matched=("random_start", "rel_stepsize", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxPGD(FoolboxAttack, FixedEpsilonAttack):
    """Linf PGD through Foolbox."""

    random_start: bool = True
    rel_stepsize: Annotated[float, greater_than(0.0)] = 0.25
    steps: Annotated[int, at_least(1), at_most(10_000)] = 10

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.LinfProjectedGradientDescentAttack(
            rel_stepsize=self.rel_stepsize, steps=self.steps, random_start=self.random_start
        )


@register_attack(
    "foolbox.pgd-l2",
    info=AttackInfo(
        "Foolbox L2ProjectedGradientDescentAttack, random start, step = rel_stepsize * eps",
        reference="Madry et al., ICLR 2018",
        algorithm="pgd",
        matched=("random_start", "rel_stepsize", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxPGDL2(FoolboxPGD):
    """L2 PGD through Foolbox."""

    norm = "l2"

    def make(self) -> Any:
        import foolbox

        return foolbox.attacks.L2ProjectedGradientDescentAttack(
            rel_stepsize=self.rel_stepsize, steps=self.steps, random_start=self.random_start
        )
