"""ART DeepFool (its L2 algorithm), minimum norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from bench.attacks import AttackInfo, register_attack
from bench.attacks.art._base import BATCH_SIZE, ArtAttack
from bench.attacks.base import MinimumNormAttack
from bench.core.registry import at_least, at_most


@register_attack(
    "art.deepfool",
    info=AttackInfo(
        "ART DeepFool (its L2 algorithm), minimum norm: at most steps linearised steps, final overshoot",
        reference="Moosavi-Dezfooli, Fawzi & Frossard, CVPR 2016",
        algorithm="deepfool",
        matched=("overshoot", "steps"),
    ),
)
@dataclass(frozen=True, kw_only=True)
class ArtDeepFool(ArtAttack, MinimumNormAttack):
    """DeepFool through ART; ART implements the L2 variant, so this is an L2 minimum-norm attack.

    Defaults are tuned for cost against one ART PGD run (``python -m bench costs``): ART computes
    the gradient of every class at each step and applies the overshoot only at the end, so samples
    that land on the boundary keep the whole batch iterating to the last step. ``overshoot`` is
    ART's ``epsilon`` (1e-6 there; 0.02 as in the paper and Foolbox). Strengthen with more
    ``steps`` (ART: 100); on detectors with saturated layers more steps may change nothing
    (docs/design.md, Attacks).
    """

    norm = "l2"
    overshoot: Annotated[float, at_least(0.0)] = 0.02
    steps: Annotated[int, at_least(1), at_most(10_000)] = 5

    def run_unbounded(self, handle: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        from art.attacks.evasion import DeepFool

        # DeepFool attacks the predicted class; the harness only passes correctly classified samples
        attack = DeepFool(handle, max_iter=self.steps, epsilon=self.overshoot, batch_size=BATCH_SIZE, verbose=False)
        return np.asarray(attack.generate(x=x))
