"""ART CarliniL2Method, minimum norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.art._base import BATCH_SIZE, ArtAttack
from bench.attacks.base import MinimumNormAttack
from bench.core.registry import at_least, at_most, greater_than


@register_attack(
    "art.cw-l2",
    info=AttackInfo(
        "ART CarliniL2Method, minimum norm: binary_steps searches over the constant from initial_const, "
        "steps line-searched gradient steps each",
        reference="Carlini & Wagner, IEEE S&P 2017",
        algorithm="cw",
        matched=("binary_steps", "initial_const", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtCarliniL2(ArtAttack, MinimumNormAttack):
    """Carlini & Wagner L2 through ART (plain gradient steps in tanh space with a line search).

    Defaults are tuned for cost against one ART PGD run (``python -m bench costs``): each ART step
    costs two gradient passes per class in the batch plus a line search of up to 5 halvings and 5
    doublings (forward passes), so only 2 steps fit, with no binary search over the constant. ART
    takes plain (not normalised) gradient steps, so what matters is learning_rate *
    initial_const (ART's defaults give 1e-4). Strengthen with binary_steps 5-10 and steps 10-100
    (ART: 10 x 10); docs/design.md (Attacks) says where even that is not enough.
    """

    norm = "l2"
    binary_steps: Annotated[int, at_least(1), at_most(100)] = 1
    initial_const: Annotated[float, greater_than(0.0)] = 0.03
    learning_rate: Annotated[float, greater_than(0.0)] = 0.05
    steps: Annotated[int, at_least(1), at_most(10_000)] = 2

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        from art.attacks.evasion import CarliniL2Method

        attack = CarliniL2Method(
            handle,
            confidence=0.0,
            learning_rate=self.learning_rate,
            binary_search_steps=self.binary_steps,
            max_iter=self.steps,
            initial_const=self.initial_const,
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return np.asarray(attack.generate(x=x, y=y))  # samples it could not fool come back unchanged
