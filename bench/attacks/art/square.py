"""ART SquareAttack, Linf, score-based."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.art._base import BATCH_SIZE, ArtAttack
from bench.attacks.base import FixedEpsilonAttack
from bench.core.registry import at_least, at_most


def square_iterations(queries: int) -> int:
    """Iterations of one ART SquareAttack restart that fit ``queries`` model queries per sample.

    ART's Linf loop queries each sample 3 times per iteration (the robustness check of the whole
    batch, the current and the candidate loss) and 3 times before it (the same for the initial
    stripes): at most 3 + 3 * max_iter queries.
    """
    return (queries - 3) // 3


@register_attack(
    "art.square",
    info=AttackInfo(
        "ART SquareAttack, Linf, score-based, one restart with at most queries model queries per sample",
        reference="Andriushchenko, Croce, Flammarion & Hein, ECCV 2020",
        algorithm="square",
        matched=("queries",),
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtSquare(ArtAttack, FixedEpsilonAttack):
    """Square Attack through ART: random square updates kept when the margin loss drops.

    One restart with as many iterations as the query budget allows: ART spends three queries per
    sample per iteration, so ``queries`` = 300 runs 99 iterations. Strengthen with more queries
    (the paper uses up to 10,000).
    """

    threat = "score"
    queries: Annotated[int, at_least(6), at_most(100_000)] = 300

    def query_budget(self) -> int:
        return 3 + 3 * square_iterations(self.queries)

    def run(self, handle: Any, x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
        from art.attacks.evasion import SquareAttack

        attack = SquareAttack(
            handle,
            norm=np.inf,
            max_iter=square_iterations(self.queries),
            eps=eps,
            nb_restarts=1,
            batch_size=BATCH_SIZE,
            verbose=False,
        )
        return np.asarray(attack.generate(x=x, y=y))
