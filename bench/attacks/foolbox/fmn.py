"""Foolbox Fast Minimum Norm attacks, Linf and L2."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any

from bench.attacks import AttackInfo, register_attack
from bench.attacks.base import MinimumNormAttack
from bench.attacks.foolbox._base import FoolboxAttack
from bench.core.registry import at_least, at_most, greater_than, less_than


@functools.cache
def _l2_fmn_fixed() -> type:
    """Foolbox 3.3.4's L2FMNAttack with its projection repaired (built lazily: Foolbox imports late).

    Its ``project`` scales x - x0 by min(1, norms / norms) with the norms of x, i.e. by 1: the L2 FMN
    attack never projects onto its adaptive epsilon ball and degenerates to normalised gradient steps
    that keep the first adversarial iterate. This projects x - x0 onto the ball of radius epsilon.
    """
    import eagerpy as ep
    from foolbox.attacks import L2FMNAttack
    from foolbox.devutils import atleast_kd, flatten

    class FixedL2FMNAttack(L2FMNAttack):
        def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:  # type: ignore[name-defined]
            delta = x - x0
            norms = ep.maximum(flatten(delta).norms.l2(axis=-1), 1e-12)
            factor = atleast_kd(ep.minimum(1, epsilon / norms), x.ndim)
            return x0 + delta * factor

    return FixedL2FMNAttack


@register_attack(
    "foolbox.fmn-linf",
    info=AttackInfo(
        "Foolbox LInfFMNAttack (fast minimum norm), minimum norm: steps steps from max_stepsize, "
        "epsilon rate gamma, cosine-annealed",
        reference="Pintor, Roli, Brendel & Biggio, NeurIPS 2021",
        algorithm="fmn",
        matched=("gamma", "max_stepsize", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxFMN(FoolboxAttack, MinimumNormAttack):
    """Linf FMN through Foolbox, unbounded, from the clean image.

    Defaults are tuned for cost: 10 gradient passes per sample (Foolbox's default is 100 steps).
    Strengthen with more ``steps``. ``gamma`` is FMN's epsilon update rate, cosine-annealed to
    0.001 over the steps; Foolbox's 0.05 suits its 100-1000 steps, but over 10 steps it shrinks
    epsilon by about 0.8x in all, so the attack ends near its first, far adversarial point
    (docs/design.md, Attacks, has the comparison and its command).
    """

    gamma: Annotated[float, greater_than(0.0), less_than(1.0)] = 0.9
    max_stepsize: Annotated[float, greater_than(0.0)] = 0.2
    steps: Annotated[int, at_least(1), at_most(10_000)] = 10

    def make(self) -> Any:
        import foolbox

        cls = foolbox.attacks.LInfFMNAttack if self.norm == "linf" else _l2_fmn_fixed()
        return cls(steps=self.steps, max_stepsize=self.max_stepsize, gamma=self.gamma)


@register_attack(
    "foolbox.fmn-l2",
    info=AttackInfo(
        "Foolbox L2FMNAttack (fast minimum norm, its L2 projection repaired), minimum norm: steps steps from "
        "max_stepsize, cosine-annealed",
        reference="Pintor, Roli, Brendel & Biggio, NeurIPS 2021",
        algorithm="fmn",
        matched=("gamma", "max_stepsize", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class FoolboxFMNL2(FoolboxFMN):
    """L2 FMN through Foolbox, with the projection onto the epsilon ball that Foolbox 3.3.4 omits.

    The same defaults logic as :class:`FoolboxFMN`, with ``gamma`` 0.5 and ``max_stepsize`` 0.3.
    """

    norm = "l2"
    gamma: Annotated[float, greater_than(0.0), less_than(1.0)] = 0.5
    max_stepsize: Annotated[float, greater_than(0.0)] = 0.3
